"""Concat (parallel branches) and Inception: forward, gradients, names, saving, GoogLeNet's size."""
import numpy as np
import pytest

from minicnn import (Conv2D, Dense, Flatten, MaxPool2D, ReLU, Sequential, load_model, models,
                     save_model)
from minicnn.backend import as_numpy
from minicnn.gradcheck import check_layer
from minicnn.layers import Concat, Inception


def distinct(rng, shape):
    """Distinct values 0.1 apart (no max-pool ties), centred on 0."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) * 0.1


def three_branches(impl="fast"):
    """1x1 conv | 3x3 conv padded | 3x3/1 max pool padded -> 1x1 conv: 2 + 3 + 1 channels."""
    return Concat([
        Conv2D(3, 2, 1, seed=1, impl=impl),
        Sequential([Conv2D(3, 3, 3, padding=1, seed=2, impl=impl)]),
        Sequential([MaxPool2D(3, stride=1, padding=1, impl=impl), Conv2D(3, 1, 1, seed=3, impl=impl)]),
    ])


def test_forward_stacks_the_branch_outputs_on_channels(backend, device, rng):
    layer = three_branches().to(device)
    x = backend.asarray(rng.standard_normal((2, 3, 5, 4)).astype(np.float32))
    y = layer.forward(x)
    assert y.shape == (2, 6, 5, 4) and layer.output_shape((3, 5, 4)) == (6, 5, 4)
    parts = [as_numpy(b.forward(x)) for b in layer.branches]
    np.testing.assert_array_equal(as_numpy(y), np.concatenate(parts, axis=1))


def test_backward_sums_the_branch_input_gradients(backend, device, rng):
    """Two identity branches (empty Sequentials): grad_x is the sum of both channel halves."""
    layer = Concat([Sequential([]), Sequential([])])
    x = backend.asarray(rng.standard_normal((2, 3, 4, 4)))
    assert layer.forward(x).shape == (2, 6, 4, 4)
    g = backend.asarray(rng.standard_normal((2, 6, 4, 4)))
    np.testing.assert_allclose(as_numpy(layer.backward(g)), as_numpy(g[:, :3] + g[:, 3:]))


@pytest.mark.parametrize("impl", ["fast", "textbook", "reference"])
def test_concat_gradients(backend, device, rng, impl):
    layer = three_branches(impl).astype("float64").to(device)
    results = check_layer(layer, backend.asarray(distinct(rng, (2, 3, 5, 4))))
    assert set(results) == {"input", "0.weight", "0.bias", "1.0.weight", "1.0.bias",
                            "2.1.weight", "2.1.bias"}


def test_inception_module_gradients(backend, device, rng):
    block = models.inception(3, 2, 2, 3, 1, 2, 2, seed=0).astype("float64").to(device)
    assert block.output_shape((3, 5, 5)) == (2 + 3 + 2 + 2, 5, 5)
    results = check_layer(block, backend.asarray(distinct(rng, (2, 3, 5, 5))))
    assert len(results) == 1 + 2 * 6          # the input and six convs' weight and bias


def test_fast_equals_reference(backend, device, rng):
    fast, ref = three_branches("fast"), three_branches("reference")
    for layer in (fast, ref):
        layer.astype("float64").to(device)
    x = backend.asarray(distinct(rng, (2, 3, 6, 5)))
    g = backend.asarray(rng.standard_normal((2, 6, 6, 5)))
    np.testing.assert_allclose(as_numpy(fast.forward(x)), as_numpy(ref.forward(x)), atol=1e-12)
    np.testing.assert_allclose(as_numpy(fast.backward(g)), as_numpy(ref.backward(g)), atol=1e-12)
    for (name, p), (_, q) in zip(fast.named_parameters(), ref.named_parameters()):
        np.testing.assert_allclose(as_numpy(p.grad), as_numpy(q.grad), atol=1e-12, err_msg=name)


def test_branches_must_agree_in_size(rng):
    layer = Concat([Conv2D(1, 2, 3), Conv2D(1, 2, 3, padding=1)])
    with pytest.raises(ValueError, match="spatial"):
        layer.output_shape((1, 6, 6))
    with pytest.raises(ValueError, match="spatial"):
        layer.forward(rng.standard_normal((1, 1, 6, 6)))
    with pytest.raises(TypeError, match="branch 1 is not a Layer"):
        Concat([ReLU(), "relu"])


def small_inception_net():
    return Sequential([Conv2D(1, 4, 3, padding=1, seed=0), ReLU(),
                       models.inception(4, 2, 2, 3, 1, 2, 2, seed=1),
                       MaxPool2D(2), Flatten(), Dense(9 * 3 * 3, 5, seed=2)],
                      input_shape=(1, 6, 6))


def test_parameter_names_follow_pytorch_and_save_load_round_trips(tmp_path, rng):
    model = small_inception_net()
    names = [n for n, _ in model.named_parameters()]
    assert names[:4] == ["0.weight", "0.bias", "2.0.0.weight", "2.0.0.bias"]
    assert "2.1.2.weight" in names and "2.3.1.weight" in names   # 3x3 after reduce; pool proj
    x = rng.standard_normal((3, 1, 6, 6)).astype(np.float32)
    save_model(model, tmp_path / "m.npz")
    again = load_model(tmp_path / "m.npz")
    assert isinstance(again[2], Inception) and len(again[2].branches) == 4
    np.testing.assert_array_equal(again.forward(x), model.forward(x))


def test_freeze_reaches_every_branch():
    block = models.inception(4, 2, 2, 3, 1, 2, 2).freeze()
    assert block.parameters() and not any(p.requires_grad for p in block.parameters())


def test_summary_has_one_row_per_inception_with_nested_counts():
    s = small_inception_net().summary()
    name, shape, weights, biases = s.rows[2][1:5]
    assert (name, shape) == ("Inception", (9, 6, 6))
    # 1x1 4->2; 1x1 4->2, 3x3 2->3; 1x1 4->1, 5x5 1->2; 1x1 4->2
    assert weights == 8 + 8 + 54 + 4 + 50 + 8 and biases == 2 + 2 + 3 + 1 + 2 + 2
    assert s.rows[2][5] == 36 * weights          # every weight used once per output position


def test_googlenet_size_and_cost():
    """Counted here from Table 1's widths: 7.0 M parameters and 1.58 G MACs. The paper's
    own columns add up to 6.8 M and 1.5 G; they differ mostly in conv1, which the paper lists
    as 2.7 K parameters / 34 M ops where 7x7x3x64 gives 9.4 K / 118 M."""
    def conv(c_in, c_out, k, hw):
        return c_in * c_out * k * k + c_out, c_in * c_out * k * k * hw * hw

    parts = [conv(3, 64, 7, 112), conv(64, 64, 1, 56), conv(64, 192, 3, 56)]
    c_in = 192
    for name, (c1, r3, c3, r5, c5, pp) in models.GOOGLENET_MODULES.items():
        hw = {"3": 28, "4": 14, "5": 7}[name[0]]
        parts += [conv(c_in, c1, 1, hw), conv(c_in, r3, 1, hw), conv(r3, c3, 3, hw),
                  conv(c_in, r5, 1, hw), conv(r5, c5, 5, hw), conv(c_in, pp, 1, hw)]
        c_in = c1 + c3 + c5 + pp
    parts.append((1024 * 1000 + 1000, 1024 * 1000))
    params, macs = map(sum, zip(*parts))
    s = models.googlenet().summary()
    assert (s.params, s.macs) == (params, macs) == (6_998_552, 1_582_671_872)
    assert abs(s.params / 6.8e6 - 1) < 0.05 and abs(s.macs / 1.5e9 - 1) < 0.06
    assert [r[2] for r in s.rows if r[1] == "Inception"][-1] == (1024, 7, 7)
    assert sum(r[1] == "Inception" for r in s.rows) == 9 and s.rows[-1][2] == (1000,)
    # beside AlexNet (counted in docs/studies.md): ~9x fewer parameters, more MACs
    a = models.alexnet().summary()
    assert (a.params, a.macs) == (62_378_344, 1_135_256_096)
    assert a.params > 8 * s.params and s.macs > a.macs

