"""Gradient checks that cannot be fooled (issue 24): each blind spot of ``check_layer`` gets a
deliberately broken layer that must fail, beside a correct one that passes, in both modes
(every index, and one random direction)."""
import numpy as np
import pytest

from minicnn import Dropout, Layer, Parameter, ReLU, Sequential
from minicnn.backend import as_numpy
from minicnn.gradcheck import GradientCheckError, check_gradient, check_layer

MODES = pytest.mark.parametrize("directional", [False, True], ids=["every-index", "directional"])


class Scale(Layer):
    """``y = x * w``, ``x (N, D)``, ``w (D,)``; keeps ``x``. The correct layer."""
    param_names = ("weight",)

    def __init__(self, d=4):
        super().__init__()
        self.weight = Parameter(np.linspace(0.5, 1.5, d))

    def forward(self, x):
        self.x = x
        return x * self.weight.value

    def weight_grad(self, g):
        return (g * self.x).sum(axis=0)

    def backward(self, g):
        self.weight.accumulate(self.weight_grad(g))
        return g * self.weight.value


class ScalesTheGradientInPlace(Scale):
    """Wrong by a factor 2, which it writes into the gradient it was given: the check's
    own target moved with it."""
    def backward(self, g):
        g *= 2
        return super().backward(g)


class AssignsTheGradient(Scale):
    """``grad = dW`` instead of ``grad += dW``: right only when grad starts at zero."""
    def backward(self, g):
        self.weight.grad[...] = self.weight_grad(g)
        return g * self.weight.value


class ReplacesTheGradient(Scale):
    def backward(self, g):
        self.weight.grad = self.weight_grad(g)
        return g * self.weight.value


class ReusesABuffer(Scale):
    """Right values, written into the same array at every call."""
    def backward(self, g):
        self.weight.accumulate(self.weight_grad(g))
        if not hasattr(self, "buffer"):
            self.buffer = g * 0
        self.buffer[...] = g * self.weight.value
        return self.buffer


class Float32Gradient(Scale):
    def backward(self, g):
        return super().backward(g).astype(np.float32)


class Float32ParameterGradient(Scale):
    def backward(self, g):
        self.weight.grad = (self.weight.grad + self.weight_grad(g)).astype(np.float32)
        return g * self.weight.value


class GradientOnTheCPU(Scale):
    def backward(self, g):
        return as_numpy(super().backward(g))


class WritesTheGradientIntoItsInput(Layer):
    """``y = x``; backward writes ``g`` into the input it kept and returns it: the right
    values, and the caller's input is gone."""
    def forward(self, x):
        self.x = x
        return x * 1.0

    def backward(self, g):
        self.x[...] = g
        return self.x


class AbsInPlace(Layer):
    """``y = |x|``, computed in the caller's array."""
    def forward(self, x):
        abs_x = get_xp(x).abs(x, out=x)
        self.x = abs_x
        return abs_x * 1.0

    def backward(self, g):
        return g * get_xp(g).sign(self.x)


class DeadReLU(ReLU):
    """A backward that is always zero."""
    def backward(self, g):
        return g * 0


class Matrix(Layer):
    """``y = x @ W``, ``W (D_in, D_out)`` stored Fortran-ordered or as the first columns
    of a wider array (a view that ``reshape(-1)`` copies)."""
    param_names = ("weight",)

    def __init__(self, layout, computes_weight_grad=True):
        super().__init__()
        self.layout, self.computes_weight_grad = layout, computes_weight_grad
        self.weight = Parameter(np.linspace(-1, 1, 12).reshape(3, 4))

    def lay_out(self, xp):
        w = self.weight.value
        if self.layout == "fortran":
            w = xp.asfortranarray(w)
        else:
            wide = xp.zeros((w.shape[0], 2 * w.shape[1]))
            wide[:, :w.shape[1]] = w
            w = wide[:, :w.shape[1]]
        self.weight.value, self.weight.grad = w, xp.zeros_like(w)
        assert not w.flags.c_contiguous
        return self

    def forward(self, x):
        self.x = x
        return x @ self.weight.value

    def backward(self, g):
        if self.computes_weight_grad:
            self.weight.accumulate(self.x.T @ g)
        return g @ self.weight.value.T


def get_xp(x):
    import minicnn.backend
    return minicnn.backend.get_array_module(x)


def on(layer, device):
    return layer.astype("float64").to(device)


def inputs(backend, rng, shape=(3, 4)):
    x = rng.standard_normal(shape)
    return backend.asarray(x + np.sign(x) * 0.1)          # off ReLU's kink


def fails(layer, x, directional, match):
    with pytest.raises(GradientCheckError, match=match):
        check_layer(layer, x, directional=directional)


# -- the correct layers pass ---------------------------------------------------------------

@MODES
def test_the_correct_layers_pass(backend, device, rng, directional):
    x = inputs(backend, rng)
    assert set(check_layer(on(Scale(), device), x, directional=directional)) == {"input",
                                                                                 "weight"}
    check_layer(on(Dropout(0.5), device).eval(), x, directional=directional)
    check_layer(on(ReLU(), device), x, directional=directional)
    for layout in ("fortran", "strided"):
        check_layer(on(Matrix(layout), device).lay_out(backend), x[:, :3], directional=directional)


@MODES
def test_a_parameter_shared_by_two_layers_that_both_add(backend, device, rng, directional):
    first, second = Scale(), Scale()
    second.weight = first.weight
    results = check_layer(on(Sequential([first, second]), device), inputs(backend, rng),
                          directional=directional)
    assert set(results) == {"input", "0.weight", "1.weight"}


# -- each blind spot: a broken layer that must fail -----------------------------------------

@MODES
def test_a_backward_that_scales_its_incoming_gradient_in_place(backend, device, rng,
                                                               directional):
    fails(on(ScalesTheGradientInPlace(), device), inputs(backend, rng), directional,
          "backward changed the gradient it was given")


@MODES
@pytest.mark.parametrize("layout", ["fortran", "strided"])
def test_a_parameter_not_in_c_order_whose_gradient_is_never_computed(
        backend, device, rng, directional, layout):
    layer = on(Matrix(layout, computes_weight_grad=False), device).lay_out(backend)
    fails(layer, inputs(backend, rng)[:, :3], directional, "gradient of weight wrong")


@MODES
@pytest.mark.parametrize("broken", [AssignsTheGradient, ReplacesTheGradient])
def test_a_backward_that_assigns_the_parameter_gradient(backend, device, rng, directional,
                                                        broken):
    fails(on(broken(), device), inputs(backend, rng), directional,
          "must add into weight.grad")


@MODES
def test_a_shared_parameter_whose_second_use_assigns(backend, device, rng, directional):
    """Backward runs the second layer first: its assignment wipes only the zeros that a
    check starting from zero gradients would have put there."""
    first, second = Scale(), AssignsTheGradient()
    second.weight = first.weight
    fails(on(Sequential([first, second]), device), inputs(backend, rng), directional,
          "must add into")


@MODES
def test_a_backward_that_returns_a_buffer_it_reuses(backend, device, rng, directional):
    fails(on(ReusesABuffer(), device), inputs(backend, rng), directional,
          "changed when backward was called again")


@MODES
def test_a_backward_that_writes_into_its_input(backend, device, rng, directional):
    fails(on(WritesTheGradientIntoItsInput(), device), inputs(backend, rng), directional,
          "backward changed its input")


@MODES
def test_a_forward_that_changes_its_input(backend, device, rng, directional):
    fails(on(AbsInPlace(), device), inputs(backend, rng), directional,
          "forward changed its input")


@MODES
def test_a_forward_that_is_not_deterministic(backend, device, rng, directional):
    fails(on(Dropout(0.5), device), inputs(backend, rng, (8, 16)), directional,
          "forward is not deterministic.*dropout in training mode")


@MODES
@pytest.mark.parametrize("broken, words", [
    (Float32Gradient, "input's gradient is float32, the input float64"),
    (Float32ParameterGradient, "weight.grad is float32, weight float64")])
def test_a_gradient_in_the_wrong_dtype(backend, device, rng, directional, broken, words):
    fails(on(broken(), device), inputs(backend, rng), directional, words)


@MODES
def test_a_gradient_on_the_wrong_device(backend, device, rng, directional):
    if device == "cpu":
        pytest.skip("a gradient on the wrong device needs a GPU")
    fails(on(GradientOnTheCPU(), device), inputs(backend, rng), directional,
          "input's gradient is on the cpu, the input on the gpu")


@MODES
@pytest.mark.parametrize("layer", [ReLU, DeadReLU])
def test_a_check_that_sees_no_signal_is_refused(backend, device, rng, directional, layer):
    negative = -backend.abs(inputs(backend, rng))           # ReLU: every gradient is 0
    fails(on(layer(), device), negative, directional, "the check saw no signal")


@MODES
def test_a_dead_backward_fails_where_there_is_signal(backend, device, rng, directional):
    fails(on(DeadReLU(), device), inputs(backend, rng), directional, "gradient of input wrong")


# -- check_gradient on arrays that are not in C order --------------------------------------

@MODES
@pytest.mark.parametrize("layout", ["fortran", "transposed"])
def test_check_gradient_perturbs_the_array_itself(backend, rng, directional, layout):
    base = backend.asarray(rng.standard_normal((3, 4)))
    x = backend.asfortranarray(base) if layout == "fortran" else base.T
    assert not x.flags.c_contiguous
    check_gradient(lambda: (x ** 3).sum(), x, 3 * x ** 2, directional=directional)
    with pytest.raises(GradientCheckError):
        check_gradient(lambda: (x ** 3).sum(), x, 0 * x, directional=directional)


class NotFiniteGradient(Scale):
    def backward(self, g):
        grad = super().backward(g)
        grad[0, 1] = np.nan
        return grad


@MODES
def test_a_gradient_that_is_not_finite(backend, device, rng, directional):
    """``nan > tolerance`` is False: a NaN used to pass every comparison."""
    where = "along a random direction" if directional else r"at index \(0, 1\)"
    fails(on(NotFiniteGradient(), device), inputs(backend, rng), directional,
          f"gradient of input wrong {where}: analytic nan")
    x = inputs(backend, rng)
    with pytest.raises(GradientCheckError, match="analytic (inf|nan)"):    # inf - inf: nan
        check_gradient(lambda: (x ** 3).sum(), x, 3 * x ** 2 + backend.inf,
                       directional=directional)


class UnlistedParameter(Scale):
    """A Parameter that is not in ``param_names``: never checked, and never trained."""
    param_names = ()

    def backward(self, g):
        return g * self.weight.value


class Float32Forward(Scale):
    def forward(self, x):
        return super().forward(x).astype(np.float32)


@MODES
def test_a_parameter_missing_from_param_names(backend, device, rng, directional):
    layer = UnlistedParameter()
    layer.weight.to(device)
    fails(layer, inputs(backend, rng), directional,
          "UnlistedParameter.weight is a Parameter but not in param_names")


@MODES
def test_a_forward_in_another_dtype(backend, device, rng, directional):
    fails(on(Float32Forward(), device), inputs(backend, rng), directional,
          "forward returned float32 on the (cpu|gpu) for a float64 input")
