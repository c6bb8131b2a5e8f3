"""SGD and Adam against their update formulas written out here, step by step."""
import platform
import re
from unittest import mock

import numpy as np
import pytest

from minicnn import SGD, Adam, Parameter
from minicnn.backend import as_numpy

W0 = np.array([[0.5, -1.0, 2.0], [0.0, 1.5, -0.25]])
GRADS = [np.array([[0.1, -0.2, 0.3], [0.4, 0.0, -0.6]]) * (t + 1) for t in range(4)]


def run(opt_factory, backend, steps=len(GRADS)):
    """Apply ``steps`` optimizer steps with the fixed gradients; the weights after each."""
    p = Parameter(backend.asarray(W0.copy()))
    opt = opt_factory([p])
    history = []
    for g in GRADS[:steps]:
        opt.zero_grad()
        p.accumulate(backend.asarray(g))
        opt.step()
        history.append(as_numpy(p.value).copy())
    return history, opt, p


@pytest.mark.parametrize("momentum, nesterov, wd", [(0, False, 0), (0, False, 0.1),
                                                    (0.9, False, 0), (0.9, True, 0.01)])
def test_sgd_formulas(backend, momentum, nesterov, wd):
    lr = 0.1
    history, _, _ = run(lambda ps: SGD(ps, lr, momentum, nesterov, wd), backend)
    w, buf = W0.copy(), None
    for t, g in enumerate(GRADS):
        d = g + wd * w                                  # L2 penalty's gradient
        if momentum:
            buf = d.copy() if buf is None else momentum * buf + d
            d = d + momentum * buf if nesterov else buf
        w = w - lr * d
        np.testing.assert_allclose(history[t], w, rtol=1e-12, err_msg=f"step {t + 1}")


@pytest.mark.parametrize("wd", [0.0, 0.05])
def test_adam_formulas(backend, wd):
    lr, b1, b2, eps = 0.01, 0.9, 0.999, 1e-8
    history, _, _ = run(lambda ps: Adam(ps, lr, (b1, b2), eps, wd), backend)
    w, m, v = W0.copy(), np.zeros_like(W0), np.zeros_like(W0)
    for t, g in enumerate(GRADS, start=1):
        g = g + wd * w
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g * g
        m_hat, v_hat = m / (1 - b1 ** t), v / (1 - b2 ** t)
        w = w - lr * m_hat / (np.sqrt(v_hat) + eps)
        np.testing.assert_allclose(history[t - 1], w, rtol=1e-12, err_msg=f"step {t}")


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, 0.1, momentum=0.9),
                                  lambda ps: Adam(ps, 0.1)], ids=["sgd", "adam"])
def test_frozen_parameters_stay_put(backend, make):
    frozen, free = Parameter(backend.ones(3)), Parameter(backend.ones(3))
    frozen.requires_grad = False
    frozen.grad[...] = 1.0                    # even a stray gradient must not move it
    free.accumulate(backend.ones(3))
    make([frozen, free]).step()
    np.testing.assert_array_equal(as_numpy(frozen.value), np.ones(3))
    assert not np.allclose(as_numpy(free.value), 1.0)


def test_zero_grad_clears(backend):
    p = Parameter(backend.ones(4))
    p.accumulate(backend.ones(4))
    p.accumulate(backend.ones(4))
    np.testing.assert_array_equal(as_numpy(p.grad), 2 * np.ones(4))    # backward adds up
    SGD([p], 0.1).zero_grad()
    assert not np.any(as_numpy(p.grad))


def test_after_zero_grad_the_first_gradient_is_the_gradient(backend):
    """zero_grad only notes the clearing: the next gradient is copied in (cast to the
    parameter's dtype, its own array), the ones after it add; a gradient stored by hand
    (``p.grad = g``) and the sum seen before backward behave as written zeros would."""
    p = Parameter(backend.ones(4, dtype=backend.float32))
    p.accumulate(backend.full(4, 5.0, dtype=backend.float32))          # stale numbers
    p.zero_grad()
    g = backend.arange(4, dtype=backend.float64)
    p.accumulate(g)
    g[:] = -1                                       # the caller's array is not kept
    assert p.grad.dtype == backend.float32
    np.testing.assert_array_equal(as_numpy(p.grad), [0, 1, 2, 3])
    p.accumulate(backend.ones(4))
    np.testing.assert_array_equal(as_numpy(p.grad), [1, 2, 3, 4])
    p.zero_grad()
    p.grad[1] += 7                                  # read before any gradient: zeros
    p.accumulate(backend.ones(4))
    np.testing.assert_array_equal(as_numpy(p.grad), [1, 8, 1, 1])
    p.zero_grad()
    p.grad = backend.full(4, 2.0, dtype=backend.float32)
    p.accumulate(backend.ones(4))
    np.testing.assert_array_equal(as_numpy(p.grad), [3, 3, 3, 3])


def test_a_gradient_written_into_the_cleared_array(backend, device):
    """``cleared_grad()`` hands out ``grad``'s own array after zero_grad (and only then);
    a layer writes its gradient there and accumulates that array: it is the gradient, no
    copy; the next gradients add into it. A Dense layer's weight gradient goes so."""
    p = Parameter(backend.ones(4, dtype=backend.float32))
    assert p.cleared_grad() is None                 # nothing cleared: add as usual
    p.zero_grad()
    target = p.cleared_grad()
    assert target is p._grad
    target[...] = backend.arange(4, dtype=backend.float32)
    p.accumulate(target)
    assert p.cleared_grad() is None and p.grad is target
    p.accumulate(target)                            # not cleared: its own array added
    np.testing.assert_array_equal(as_numpy(p.grad), [0, 2, 4, 6])
    p.requires_grad = False
    p.zero_grad()
    assert p.cleared_grad() is None                 # frozen: no gradient to write

    from minicnn import Dense
    layer = Dense(5, 3, seed=0).astype(backend.float32)
    layer.to(device)
    x = backend.asarray(np.random.default_rng(0).standard_normal((4, 5)), backend.float32)
    g = backend.asarray(np.random.default_rng(1).standard_normal((4, 3)), backend.float32)
    before = layer.weight.grad
    layer.weight.zero_grad()
    layer.forward(x)
    given = []                  # whether each gradient handed to accumulate is grad itself
    accumulate = Parameter.accumulate
    with mock.patch.object(Parameter, "accumulate", autospec=True, side_effect=lambda p, a: (
            given.append(a is p._grad), accumulate(p, a))[1]):
        layer.backward(g)
    # the weight's gradient written in place, the bias's sums made apart and copied in
    assert given == [True, False]
    assert layer.weight.grad is before
    np.testing.assert_allclose(as_numpy(layer.weight.grad), as_numpy(g.T @ x), rtol=1e-6)


@pytest.mark.parametrize("make", [lambda ps: SGD(ps, 0.1, momentum=0.9, nesterov=True),
                                  lambda ps: Adam(ps, 0.05, weight_decay=0.01)],
                         ids=["sgd", "adam"])
def test_state_dict_round_trip_continues_identically(backend, make):
    """Two steps, save; then the remaining steps in the original and in two fresh
    optimizers loaded from the same saved state all give the same weights."""
    _, opt, p = run(make, backend, steps=2)
    state = opt.state_dict()
    copies = []
    for _ in range(2):
        q = Parameter(p.value.copy())
        fresh = make([q])
        fresh.load_state_dict(state)
        copies.append((fresh, q))
    for g in GRADS[2:]:
        for o, param in [(opt, p)] + copies:
            o.zero_grad()
            param.accumulate(backend.asarray(g))
            o.step()
    for _, q in copies:
        np.testing.assert_array_equal(as_numpy(q.value), as_numpy(p.value))


def test_bad_settings():
    with pytest.raises(ValueError, match="SGD lr must be a finite number > 0"):
        SGD(_params(), 0)
    with pytest.raises(ValueError, match="nesterov=True needs momentum > 0"):
        SGD(_params(), 0.1, nesterov=True)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("layout", ["contiguous", "strided"])
def test_fused_adam_kernel_equals_the_formula(dtype, layout):
    """kernels.passes_cpu's one-pass Adam against textbook.adam_update (the written formula);
    scalars in the arrays' dtype, as NumPy computes float32 with Python floats."""
    from minicnn.kernels import passes_cpu, textbook
    rng = np.random.default_rng(0)
    make = (lambda: rng.standard_normal((300, 7)).astype(dtype)) if layout == "contiguous" \
        else (lambda: rng.standard_normal((7, 300)).astype(dtype).T)
    w, m, v = make(), np.zeros((300, 7), dtype), np.zeros((300, 7), dtype)
    if layout == "strided":
        m, v = m.T.copy().T, v.T.copy().T
    w_ref, m_ref, v_ref = w.copy(), m.copy(), v.copy()
    for t in range(1, 4):
        g = make()
        args = (1e-2 / (1 - 0.9 ** t), 0.9, 0.999, 1e-8, 1 - 0.999 ** t)
        passes_cpu.adam_update(w, g, m, v, *args)
        textbook.adam_update(w_ref, g, m_ref, v_ref, *args)
    # the same float operations in the same order: the same bits
    np.testing.assert_array_equal(m, m_ref)
    np.testing.assert_array_equal(v, v_ref)
    np.testing.assert_array_equal(w, w_ref)


def test_fused_adam_kernel_divides_as_numpy_does():
    """eps=0 and a zero gradient: 0 / 0 in the update. The formula (NumPy) gives NaN; the
    compiled loop must too, not raise ZeroDivisionError (Numba's Python error model, which
    also kept the loop from being vectorized: benchmarks/README.md, issue 28)."""
    from minicnn.kernels import passes_cpu, textbook
    w, g = np.ones(64, np.float32), np.zeros(64, np.float32)
    m, v = np.zeros(64, np.float32), np.zeros(64, np.float32)
    w_ref, m_ref, v_ref = w.copy(), m.copy(), v.copy()
    args = (1e-3, 0.9, 0.999, 0.0, 1 - 0.999)
    passes_cpu.adam_update(w, g, m, v, *args)
    with np.errstate(invalid="ignore"):
        textbook.adam_update(w_ref, g, m_ref, v_ref, *args)
    assert np.isnan(w_ref).all()
    np.testing.assert_array_equal(w, w_ref)


@pytest.mark.skipif(platform.machine() not in ("x86_64", "AMD64"), reason="x86 assembly")
def test_fused_adam_kernel_is_vectorized():
    """The loop's square roots are packed (several numbers an instruction): the scalar
    loop took several times as long (benchmarks/README.md, "The eighth session")."""
    from numba import njit

    from minicnn.kernels import passes_cpu
    options = dict(passes_cpu._adam_kernel.targetoptions, cache=False)  # cached: no assembly
    kernel, w = njit(**options)(passes_cpu._adam_kernel.py_func), np.ones(64, np.float32)
    kernel(w, w.copy(), w.copy(), w.copy(), *np.float32([1e-3, 0.9, 0.999, 1e-8, 0.5, 0.1,
                                                         1e-3]))
    asm = kernel.inspect_asm(kernel.signatures[0])
    assert re.search(r"\bv?sqrtps\b", asm), "Adam's loop was compiled without packed sqrt"


def _params():
    return [Parameter(np.ones(3, dtype=np.float32))]


@pytest.mark.parametrize("make, says", [
    (lambda: Adam(_params(), lr=float("nan")), "Adam lr must be a finite number > 0, got nan"),
    (lambda: SGD(_params(), lr=float("inf")), "SGD lr must be a finite number > 0, got inf"),
    (lambda: SGD(_params(), lr=0), "SGD lr must be a finite number > 0, got 0"),
    (lambda: Adam(_params(), betas=(1.0, 0.9)), "Adam betas[0] must be in [0, 1), got 1.0"),
    (lambda: Adam(_params(), betas=(0.9, -0.1)), "Adam betas[1] must be in [0, 1), got -0.1"),
    (lambda: Adam(_params(), betas=(0.9,)), "Adam betas must be a pair (beta1, beta2), got (0.9,)"),
    (lambda: Adam(_params(), eps=-1e-8), "Adam eps must be a finite number >= 0, got -1e-08"),
    (lambda: SGD(_params(), lr=0.1, momentum=float("nan")),
     "SGD momentum must be a finite number >= 0, got nan"),
    (lambda: SGD(_params(), lr=0.1, weight_decay=-1),
     "SGD weight_decay must be a finite number >= 0, got -1"),
    (lambda: Adam([], lr=0.1), "Adam got no parameters to train"),
    (lambda: Adam([np.ones(3)], lr=0.1), "Adam params[0] is a ndarray, not a minicnn Parameter "
     "(pass model.parameters())"),
])
def test_bad_optimizer_settings_are_one_line(make, says):
    """Found by trying: ``Adam(lr=nan)`` and ``betas=(1.0, 0.9)`` were accepted (every
    step then NaN, or a division by zero in the bias correction), as torch.optim refuses."""
    with pytest.raises(ValueError) as info:
        make()
    assert str(info.value) == says
