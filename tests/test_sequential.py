"""Sequential: forward/backward, parameters, modes, state dicts, backward rules, slicing."""
import numpy as np
import pytest

from minicnn import Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU, Sequential, models
from minicnn.backend import as_numpy, device_of


def small(seed=0):
    return Sequential([Conv2D(1, 2, 3, seed=seed), ReLU(), MaxPool2D(2), Flatten(),
                       Dense(8, 3, seed=seed + 1), Dropout(0.5, seed=seed + 2)],
                      input_shape=(1, 6, 6))


def test_forward_backward_chain_layers_in_order(backend, device, rng):
    model = small().to(device)
    x = backend.asarray(rng.standard_normal((2, 1, 6, 6)).astype(np.float32))
    manual = x
    model.eval()
    for layer in model:
        manual = layer.forward(manual)
    y = model.forward(x)
    np.testing.assert_array_equal(as_numpy(y), as_numpy(manual))
    g = backend.ones(y.shape, dtype=np.float32)
    grad_x = model.backward(g)
    manual_g = g
    for layer in reversed(model.layers):
        manual_g = layer.backward(manual_g)
    np.testing.assert_array_equal(as_numpy(grad_x), as_numpy(manual_g))
    assert grad_x.shape == x.shape


def test_parameters_are_in_layer_order():
    model = small()
    names = [n for n, _ in model.named_parameters()]
    assert names == ["0.weight", "0.bias", "4.weight", "4.bias"]
    assert model.parameters()[0] is model[0].weight and model.parameters()[3] is model[4].bias


def test_train_and_eval_switch_every_layer(backend, device, rng):
    model = small().to(device)
    x = backend.asarray(rng.standard_normal((4, 1, 6, 6)).astype(np.float32))
    assert all(m.training for m in model.modules())
    model.eval()
    assert not any(m.training for m in model.modules())
    a, b = model.forward(x), model.forward(x)
    np.testing.assert_array_equal(as_numpy(a), as_numpy(b))        # dropout is the identity
    np.testing.assert_array_equal(as_numpy(model[:5].forward(x)), as_numpy(a))
    model.train()
    assert all(m.training for m in model.modules())


def test_lenet_state_dict_keys_and_shapes():
    state = models.lenet().state_dict()
    assert {k: v.shape for k, v in state.items()} == {
        "0.weight": (32, 1, 5, 5), "0.bias": (32,), "3.weight": (64, 32, 5, 5), "3.bias": (64,),
        "7.weight": (1024, 3136), "7.bias": (1024,), "10.weight": (10, 1024), "10.bias": (10,)}


def test_state_dict_round_trip(backend, device, rng):
    source, target = small(seed=0), small(seed=10).to(device)
    state = source.state_dict()
    state["0.weight"][...] += 0               # a copy: editing it leaves the model alone
    target.load_state_dict(state)
    x = rng.standard_normal((2, 1, 6, 6)).astype(np.float32)
    source.eval(), target.eval()
    # the same weights; on another device other kernels add in another order (float32)
    np.testing.assert_allclose(as_numpy(target.forward(backend.asarray(x))), source.forward(x),
                               rtol=0 if device == "cpu" else 1e-5, atol=0 if device == "cpu"
                               else 1e-6)
    assert all(type(p.value) is type(backend.zeros(1)) for p in target.parameters())


def test_state_dict_is_a_copy():
    model = small()
    state = model.state_dict()
    state["0.bias"][...] = 123.0
    assert not np.any(as_numpy(model[0].bias.value) == 123.0)


def test_load_state_dict_names_missing_unexpected_and_mismatched_keys():
    model = small()
    state = model.state_dict()
    with pytest.raises(KeyError, match=r"key '4.bias' \(shape \(3,\)\) is missing"):
        model.load_state_dict({k: v for k, v in state.items() if k != "4.bias"})
    with pytest.raises(KeyError, match="unexpected key '9.weight'"):
        model.load_state_dict({**state, "9.weight": np.zeros(1)})
    with pytest.raises(ValueError, match=r"shape mismatch for '4.weight': the state has "
                                         r"\(3, 9\), the model expects \(3, 8\)"):
        model.load_state_dict({**state, "4.weight": np.zeros((3, 9))})


def test_slicing_shares_layers(backend, device, rng):
    model = small().to(device)
    head = model[:3]
    assert isinstance(head, Sequential) and len(head) == 3
    assert head[0] is model[0] and head.input_shape == (1, 6, 6)
    x = backend.asarray(rng.standard_normal((1, 1, 6, 6)).astype(np.float32))
    assert head.forward(x).shape == (1, 2, 2, 2)
    assert model[3:].input_shape is None
    assert isinstance(model[-1], Dropout)


def test_non_layer_items_are_rejected():
    with pytest.raises(TypeError, match="Sequential item 1 is not a Layer"):
        Sequential([ReLU(), "relu"])


def test_freeze_keeps_gradients_at_zero(rng):
    model = small()
    model[0].freeze()
    model.forward(rng.standard_normal((2, 1, 6, 6)).astype(np.float32))
    model.backward(np.ones((2, 3), np.float32))
    assert not np.any(model[0].weight.grad) and np.any(model[4].weight.grad)
    model[0].unfreeze()
    assert model[0].weight.requires_grad


# -- where the model lives: derived from its parameters, never stored ---------------


class _FakeCupy:
    """Just enough of CuPy for moving parameters: its arrays are a NumPy subclass,
    so ``device_of`` and ``to_device`` take the GPU path on a CPU-only machine."""

    class ndarray(np.ndarray):
        pass

    def asarray(self, x):
        return np.array(x).view(self.ndarray)

    def asnumpy(self, x):
        return np.array(x)

    class cuda:
        class runtime:
            @staticmethod
            def getDeviceCount():
                return 1


@pytest.fixture(params=["fake", "real"])
def gpu(request, monkeypatch):
    """The device name 'gpu', backed by a fake CuPy or, where there is one, the real GPU."""
    from minicnn import backend as backend_module
    if request.param == "fake":
        monkeypatch.setattr(backend_module, "_cupy", _FakeCupy())
    elif backend_module.gpu_unavailable_reason() is not None:
        pytest.skip(f"GPU backend: {backend_module.gpu_unavailable_reason()}")
    return "gpu"


def test_device_follows_the_parameters(gpu):
    model = small()
    assert model.device == "cpu" and model[0].device == "cpu"
    model.to(gpu)
    assert model.device == "gpu" and model[:3].device == "gpu"
    model[0].to("cpu")              # a layer moved on its own: the model no longer agrees
    with pytest.raises(ValueError, match=r"'0.weight' on 'cpu'.*'4.weight' on 'gpu'.*\.to\("):
        model.device
    model.to("cpu")
    assert model.device == "cpu"


def test_a_layer_moved_alone_is_seen_by_the_model(gpu):
    model = Sequential([Dense(3, 2, seed=0)])
    model[0].to(gpu)
    assert model.device == "gpu"


def test_load_state_dict_puts_weights_where_the_parameters_are(gpu):
    model = small()
    model.layers[0].to(gpu)
    model.layers[4].to(gpu)
    model.load_state_dict(small(seed=3).state_dict())
    assert {device_of(p.value) for p in model.parameters()} == {"gpu"}
    assert model.device == "gpu"


def test_a_model_without_parameters_runs_where_its_input_is(backend):
    model = Sequential([ReLU(), Flatten()])
    assert model.device is None
    y = model.forward(backend.ones((2, 3, 4), dtype=np.float32))
    assert type(y) is type(backend.ones(1)) and y.shape == (2, 12)


@pytest.mark.parametrize("impl", ["fast", "textbook", "reference"])
def test_backward_without_the_input_gradient_gives_the_same_weight_gradients(backend, device,
                                                                              impl):
    """Training needs no dL/dimages: the first conv skips it, its weight gradients unchanged."""
    rng = np.random.default_rng(0)

    def build():
        return Sequential([Conv2D(2, 3, 3, padding=1, seed=1, impl=impl), ReLU(), Flatten(),
                           Dense(3 * 5 * 5, 4, seed=2)]).astype("float64").to(device)
    x = backend.asarray(rng.standard_normal((3, 2, 5, 5)))
    g = backend.asarray(rng.standard_normal((3, 4)))
    full, weights_only = build(), build()
    full.forward(x)
    weights_only.forward(x)
    assert full.backward(g) is not None
    assert weights_only.backward(g, input_grad=False) is None
    for a, b in zip(full.parameters(), weights_only.parameters()):
        np.testing.assert_array_equal(as_numpy(a.grad), as_numpy(b.grad))


def test_one_layer_object_in_two_places_is_refused():
    """Found by trying: ``Sequential([Dense, relu, Dense, relu])`` with one ReLU object
    trained with wrong gradients (the first place's backward used the mask the second
    place's forward left), silently; gradcheck caught it, training would not."""
    from minicnn.layers import Concat
    relu, dense = ReLU(), Dense(4, 4)
    with pytest.raises(ValueError) as info:
        Sequential([Dense(4, 4), relu, Dense(4, 4), relu])
    assert str(info.value) == (
        "Sequential: layer 3 is the ReLU object of layer 1 again: a layer keeps what its "
        "backward needs from its own last forward, so each place needs its own layer "
        "(another ReLU(...)); to share weights, share the Parameter objects")
    with pytest.raises(ValueError, match=r"layer 2 is the Dense object of layer 0 again"):
        Sequential([dense, ReLU(), dense])
    with pytest.raises(ValueError, match=r"layer 1\.0 is the Dense object of layer 0\.0 again"):
        Sequential([Sequential([dense]), Sequential([dense])])
    with pytest.raises(ValueError, match=r"Concat: layer 1 is the Dense object of layer 0"):
        Concat([dense, dense])
    Sequential([Dense(4, 4), ReLU(), Dense(4, 4), ReLU()])       # distinct objects: fine


def test_a_parameter_shared_by_two_layers_is_trained_once_per_step():
    """Found by trying: ``parameters()`` listed a shared weight twice, so an optimizer
    stepped it twice (SGD: twice the step; Adam: two moment estimates for one array).
    As ``torch.nn.Module.parameters``, each Parameter is listed once; the state dict
    keeps both names."""
    from minicnn import SGD
    a, b = Dense(4, 4, seed=0), Dense(4, 4, seed=1)
    b.weight = a.weight
    model = Sequential([a, ReLU(), b]).astype("float64")
    assert len(model.parameters()) == 3 and list(model.state_dict()) == [
        "0.weight", "0.bias", "2.weight", "2.bias"]
    x = np.random.default_rng(0).standard_normal((5, 4))
    before = a.weight.value.copy()
    optimizer = SGD(model.parameters(), lr=0.1)
    optimizer.zero_grad()
    model.backward(model.forward(x))                  # both places add into the one grad
    grad = a.weight.grad.copy()
    optimizer.step()
    np.testing.assert_allclose(a.weight.value, before - 0.1 * grad, rtol=1e-12)
