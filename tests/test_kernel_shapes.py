"""The compiled loops' last line of defence: every entry that hands arrays to a Numba (or
numba.cuda) loop refuses a wrong shape with a ValueError naming the kernel, where the loop
would read or write outside an array (garbage, or a segmentation fault)."""
import numpy as np
import pytest
from minicnn.kernels import winograd

from minicnn import kernels

X_SHAPE = (2, 3, 6, 5)
K, S, P = (3, 3), (1, 1), (1, 1)          # cols: (27, 2 * 6 * 5)


def loops(backend):
    """The compiled loops the fast engine runs on ``backend``'s arrays (on the CuPy
    stand-in the GPU runs the textbook formulas: no compiled loop there to guard)."""
    module = kernels.fast.loops(backend.zeros(1))
    if module is kernels.textbook:
        pytest.skip("no compiled loops on this backend (the textbook formulas run)")
    return module


def arrays(backend, *shapes, dtype=np.float64):
    return [backend.asarray(np.random.default_rng(0).standard_normal(s).astype(dtype))
            for s in shapes]


@pytest.mark.parametrize("cols_shape", [(27, 59), (27, 61), (26, 60), (27 * 60,)])
def test_col2im_refuses_columns_of_another_shape(backend, cols_shape):
    cols, = arrays(backend, cols_shape)
    with pytest.raises(ValueError, match=r"kernels\.col2im: cols has shape .*expected \(27, 60\)"):
        loops(backend).col2im(cols, X_SHAPE, K, S, P)


@pytest.mark.parametrize("kernel, stride, padding, dilation", [
    ((3, 3), (0, 1), (0, 0), (1, 1)),      # stride 0: a division by zero
    ((3, 3), (1, -1), (0, 0), (1, 1)),     # negative steps: indices before the array
    ((3, 3), (1, 1), (-1, 0), (1, 1)),
    ((0, 3), (1, 1), (0, 0), (1, 1)),
    ((3, 3), (1, 1), (0, 0), (1, 0)),
    ((7, 3), (1, 1), (0, 0), (1, 1)),      # no window fits the 6 x 5 input
    ((3, 3), (1, 1), (0, 0), (3, 1)),
])
def test_window_kernels_refuse_settings_that_leave_no_window(backend, kernel, stride, padding,
                                                             dilation):
    x, = arrays(backend, X_SHAPE)
    for call in (lambda: loops(backend).im2col(x, kernel, stride, padding, dilation),
                 lambda: loops(backend).col2im(x.reshape(-1, 1), X_SHAPE, kernel, stride, padding,
                                        dilation),
                 lambda: loops(backend).maxpool_forward(x, kernel, stride, padding, dilation)):
        with pytest.raises(ValueError, match=r"minicnn\.kernels\.\w+: (needs|no window)"):
            call()
    if dilation == (1, 1):
        with pytest.raises(ValueError, match=r"minicnn\.kernels\.avgpool_forward"):
            loops(backend).avgpool_forward(x, kernel, stride, padding)


def test_window_kernels_refuse_an_input_that_is_not_4d(backend):
    x, = arrays(backend, (3, 6, 5))
    with pytest.raises(ValueError, match=r"kernels\.im2col: needs an \(N, C, H, W\) input"):
        loops(backend).im2col(x, K, S, P)
    with pytest.raises(ValueError, match=r"kernels\.maxpool_forward: needs an \(N, C, H, W\)"):
        loops(backend).maxpool_forward(x, (2, 2), (2, 2), (0, 0))


@pytest.mark.parametrize("name, grad_shape, switches_shape", [
    ("switches", (2, 3, 3, 2), (2, 3, 3, 3)),
    ("switches", (2, 3, 3, 2), (2, 3, 6)),
    ("grad_out", (2, 4, 3, 2), (2, 4, 3, 2)),      # more channels than x: writes past grad_x
    ("grad_out", (3, 3, 3, 2), (3, 3, 3, 2)),
    ("grad_out", (3, 3, 2), (3, 3, 2)),
])
def test_maxpool_backward_refuses_switches_or_gradients_of_another_shape(backend, name,
                                                                         grad_shape,
                                                                         switches_shape):
    g, = arrays(backend, grad_shape)
    switches = backend.zeros(switches_shape, dtype=np.int64)
    with pytest.raises(ValueError, match=rf"kernels\.maxpool_backward: {name} has shape"):
        loops(backend).maxpool_backward(g, switches, X_SHAPE)


@pytest.mark.parametrize("bad", [30, -1, 10 ** 9])
def test_maxpool_backward_refuses_a_switch_outside_the_plane(bad):
    """A switch past H*W (here 6 * 5) would write outside grad_x: the loop refuses it."""
    x, = arrays(np, X_SHAPE)
    out, switches = loops(np).maxpool_forward(x, (2, 2), (2, 2), (0, 0))
    switches[1, 2, 0, 1] = bad
    with pytest.raises(ValueError, match="maxpool_backward: a switch points outside"):
        loops(np).maxpool_backward(np.ones_like(out), switches, X_SHAPE)


@pytest.mark.parametrize("grad_shape", [(2, 3, 6, 6), (2, 3, 7, 5), (2, 4, 6, 5), (1, 3, 6, 5)])
def test_avgpool_backward_refuses_a_gradient_of_another_shape(backend, grad_shape):
    g, = arrays(backend, grad_shape)            # the output is (2, 3, 6, 5)
    with pytest.raises(ValueError, match=r"kernels\.avgpool_backward: grad_out has shape"):
        loops(backend).avgpool_backward(g, X_SHAPE, K, S, P)


@pytest.mark.parametrize("name", ["g", "m", "v"])
@pytest.mark.parametrize("shape", [(5,), (13,), (3, 4, 1), (4, 3)])
def test_adam_update_refuses_buffers_of_another_shape(name, shape):
    """A moment buffer one short (a checkpoint from another model, say) used to be read
    and written past its end by the fused loop: a segmentation fault or garbage."""
    from minicnn.kernels import passes_cpu
    w, g, m, v = arrays(np, (3, 4), (3, 4), (3, 4), (3, 4))
    bad = dict(g=g, m=m, v=v) | {name: np.zeros(shape)}
    before = w.copy()
    with pytest.raises(ValueError, match=rf"kernels\.adam_update: {name} has shape"):
        passes_cpu.adam_update(w, bad["g"], bad["m"], bad["v"], 0.1, 0.9, 0.999, 1e-8, 0.5)
    np.testing.assert_array_equal(w, before)                     # nothing was changed


def test_relu_backward_refuses_a_derivative_of_another_shape():
    from minicnn.kernels import passes_cpu
    g, mask = arrays(np, (4, 5), (4, 4))
    with pytest.raises(ValueError, match=r"kernels\.relu_backward: derivative has shape"):
        passes_cpu.relu_backward(g, mask > 0)


def test_winograd_refuses_weights_bias_and_gradients_of_another_shape():
    x, w2, g = arrays(np, (2, 16, 6, 6), (1, 16, 16 * 9), (2, 16, 36))
    plan = winograd.Winograd(x, (3, 3), ((1, 1), (1, 1)), 16)
    with pytest.raises(ValueError, match=r"kernels\.Winograd: w2 has shape \(1, 16, 143\)"):
        plan.product(w2[:, :, :-1])
    with pytest.raises(ValueError, match=r"kernels\.Winograd\.product: bias has shape \(15,\)"):
        plan.product(w2, np.zeros(15))
    for bad in (g[:, :15], g[:1], np.zeros((2, 17, 36))):      # 17 channels wrote past dP
        with pytest.raises(ValueError, match=r"kernels\.Winograd\.backward: grad has shape"):
            plan.backward(w2, bad)


def test_columns_refuse_weights_bias_and_gradients_of_another_shape(backend):
    x, w2, g = arrays(backend, (2, 4, 6, 5), (2, 3, 2 * 9), (2, 6, 30))
    plan = kernels.columns.Columns(x, K, S, ((1, 1), (1, 1)), groups=2,
                                   loops=loops(backend))
    with pytest.raises(ValueError, match=r"kernels\.Columns: w2 has shape \(2, 3, 17\)"):
        plan.product(w2[:, :, :-1])
    with pytest.raises(ValueError, match=r"kernels\.Columns: w2 has shape \(6, 18\)"):
        plan.product(w2.reshape(6, 18))
    with pytest.raises(ValueError, match=r"kernels\.Columns\.product: bias has shape \(5,\)"):
        plan.product(w2, backend.zeros(5))
    with pytest.raises(ValueError, match=r"kernels\.Columns\.backward: g has shape"):
        plan.backward(w2, g[:, :5])
