"""im2col-based convolution and pooling, written once for NumPy and CuPy.

This is the fallback path (used when Numba is missing) and the easiest one to
read. ``im2col`` copies every receptive-field window of the input into a
column, one column per output position of every image, so that a whole
convolution becomes ONE matrix product (the biggest GEMM BLAS can get)::

    cols[(c, u, v), (n, i, j)] = xpad[n, c, i*sH + u*dH, j*sW + v*dW]
    out2 = W.reshape(C_out, C*kH*kW) @ cols          # (C_out, N*H_out*W_out)

It loops over the ``kH * kW`` window offsets only (a strided slice each), so
the work inside the loop is done by the array library, on CPU or GPU alike.
"""
from ..backend import get_array_module
from .geometry import avgpool_divisors, first_inside, output_hw

ONE = (1, 1)


def _pad(x, padding, extra=(0, 0), value=0.0):
    """Pad ``padding`` on every side, plus ``extra`` at the bottom and right
    (where a ``ceil_mode`` window reaches beyond the padding)."""
    (ph, pw), (eh, ew) = padding, extra
    if ph == pw == eh == ew == 0:
        return x
    xp = get_array_module(x)
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph + eh), (pw, pw + ew)), constant_values=value)


def _extra(hw, kernel, stride, padding, dilation, out_hw):
    """Rows and columns the last windows read beyond the padding."""
    return tuple(max(0, (out_hw[a] - 1) * stride[a] + dilation[a] * (kernel[a] - 1) + 1
                     - hw[a] - 2 * padding[a]) for a in range(2))


def im2col(x, kernel, stride, padding, dilation=ONE, pad_value=0.0, ceil_mode=False):
    """``x (N, C, H, W)`` -> ``cols (C*kH*kW, N*H_out*W_out)``; padding reads ``pad_value``."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (dh, dw) = kernel, stride, dilation
    ho, wo = output_hw((h, w), kernel, stride, padding, dilation, ceil_mode)
    xpad = _pad(x, padding, _extra((h, w), kernel, stride, padding, dilation, (ho, wo)),
                pad_value)
    cols = xp.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
    for u in range(kh):
        for v in range(kw):
            window = xpad[:, :, u * dh:u * dh + sh * (ho - 1) + 1:sh,
                          v * dw:v * dw + sw * (wo - 1) + 1:sw]
            cols[:, u, v] = window.transpose(1, 0, 2, 3)        # (C, N, H_out, W_out)
    return cols.reshape(c * kh * kw, n * ho * wo)


def col2im(cols, x_shape, kernel, stride, padding, dilation=ONE, ceil_mode=False):
    """Adjoint of ``im2col``: ``cols (C*kH*kW, N*H_out*W_out)`` -> ``(N, C, H, W)``.

    Windows that overlap write to the same input pixel, so values add up.
    """
    xp = get_array_module(cols)
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    ho, wo = output_hw((h, w), kernel, stride, padding, dilation, ceil_mode)
    eh, ew = _extra((h, w), kernel, stride, padding, dilation, (ho, wo))
    cols = cols.reshape(c, kh, kw, n, ho, wo)
    xpad = xp.zeros((n, c, h + 2 * ph + eh, w + 2 * pw + ew), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            xpad[:, :, u * dh:u * dh + sh * (ho - 1) + 1:sh,
                 v * dw:v * dw + sw * (wo - 1) + 1:sw] += cols[:, u, v].transpose(1, 0, 2, 3)
    return xpad[:, :, ph:ph + h, pw:pw + w]


def _window_columns(x, kernel, stride, padding, dilation, pad_value, ceil_mode):
    """Each channel on its own: ``(N, C, H, W)`` -> ``(kH*kW, N*C*H_out*W_out)``."""
    n, c, h, w = x.shape
    return im2col(x.reshape(n * c, 1, h, w), kernel, stride, padding, dilation, pad_value,
                  ceil_mode)


def maxpool_forward(x, kernel, stride, padding, dilation=ONE, ceil_mode=False):
    """Max over each window. Returns ``(out, switches)``, both ``(N, C, H_out, W_out)``;
    ``switches`` holds the flat index ``row * W + col`` of each winner in the
    unpadded input plane. Ties go to the first tap (``argmax``); a NaN wins (the
    window's last NaN); an all ``-inf`` window routes to its first tap inside
    the input (the taps before it read the padding's ``-inf`` too)."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    ho, wo = output_hw((h, w), kernel, stride, padding, dilation, ceil_mode)
    cols = _window_columns(x, kernel, stride, padding, dilation, -xp.inf, ceil_mode)
    nan = xp.isnan(cols)
    last_nan = cols.shape[0] - 1 - nan[::-1].argmax(axis=0)
    winner = xp.where(nan.any(axis=0), last_nan, cols.argmax(axis=0))      # (N*C*L,)
    out = xp.take_along_axis(cols, winner[None, :], axis=0)[0]
    u0 = xp.asarray(first_inside(ho, sh, ph, dh)).repeat(wo)              # (L,)
    v0 = xp.tile(xp.asarray(first_inside(wo, sw, pw, dw)), ho)
    winner = xp.where((out == -xp.inf).reshape(n * c, -1), u0 * kw + v0,
                      winner.reshape(n * c, -1))
    # Window tap (u, v) and output position (i, j) -> input row and column.
    i = xp.arange(ho).repeat(wo)[None, :]
    j = xp.tile(xp.arange(wo), ho)[None, :]
    switches = (i * sh + winner // kw * dh - ph) * w + (j * sw + winner % kw * dw - pw)
    return out.reshape(n, c, ho, wo), switches.reshape(n, c, ho, wo).astype(xp.int64)


def maxpool_backward(grad_out, switches, x_shape):
    """Send each output gradient to its winner (Zeiler's unpooling); gradients
    of an input shared by overlapping windows add up."""
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    plane = xp.arange(n * c, dtype=xp.int64).reshape(n, c, 1, 1) * (h * w)
    grad_x = xp.bincount((switches + plane).ravel(), weights=grad_out.ravel(),
                         minlength=n * c * h * w)
    return grad_x.astype(grad_out.dtype, copy=False).reshape(x_shape)


def maxunpool_forward(x, switches, out_hw):
    """``out[n, c, switch] = x[n, c, i, j]``, zeros elsewhere: ``(N, C, *out_hw)``."""
    xp = get_array_module(x)
    n, c = x.shape[:2]
    out = xp.zeros((n * c, out_hw[0] * out_hw[1]), dtype=x.dtype)
    out[xp.arange(n * c)[:, None], switches.reshape(n * c, -1)] = x.reshape(n * c, -1)
    return out.reshape(n, c, *out_hw)


def maxunpool_backward(grad_out, switches):
    """``grad_x[n, c, i, j] = grad_out[n, c, switch]`` (a gather): ``switches.shape``."""
    xp = get_array_module(grad_out)
    n, c = grad_out.shape[:2]
    return xp.take_along_axis(grad_out.reshape(n, c, -1), switches.reshape(n, c, -1),
                              axis=2).reshape(switches.shape)


def avgpool_forward(x, kernel, stride, padding, ceil_mode=False, count_include_pad=True,
                    divisor_override=None):
    """Window sums over ``geometry.avgpool_divisors``: ``(N, C, H_out, W_out)``."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    divisor = avgpool_divisors((h, w), kernel, stride, padding, ceil_mode, count_include_pad,
                               divisor_override)
    cols = _window_columns(x, kernel, stride, padding, ONE, 0.0, ceil_mode)
    sums = cols.sum(axis=0).reshape(n, c, *divisor.shape)
    return sums / xp.asarray(divisor, dtype=x.dtype)


def avgpool_backward(grad_out, x_shape, kernel, stride, padding, ceil_mode=False,
                     count_include_pad=True, divisor_override=None):
    """Each window shares its output gradient: ``g / divisor`` to every pixel in it."""
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    kh, kw = kernel
    divisor = avgpool_divisors((h, w), kernel, stride, padding, ceil_mode, count_include_pad,
                               divisor_override)
    share = (grad_out / xp.asarray(divisor, dtype=grad_out.dtype)).reshape(1, -1)
    cols = xp.broadcast_to(share, (kh * kw, share.shape[1]))
    return col2im(cols, (n * c, 1, h, w), kernel, stride, padding, ONE,
                  ceil_mode).reshape(x_shape)


def adam_update(w, g, m, v, step_size, b1, b2, eps, correction2):
    """Adam's update of ``w`` in place, with its moments ``m``, ``v`` (all one shape)::

        m = b1 m + (1 - b1) g        v = b2 v + (1 - b2) g^2
        w -= step_size * m / (sqrt(v / correction2) + eps)

    ``step_size = lr / (1 - b1^t)`` and ``correction2 = 1 - b2^t`` (bias corrections)."""
    xp = get_array_module(w)
    m *= b1
    m += (1 - b1) * g
    v *= b2
    v += (1 - b2) * g * g
    denom = xp.sqrt(v / correction2)
    denom += eps
    w -= step_size * m / denom


def relu_forward(x):
    """``(y, active)``: ``active = x > 0`` (what backward needs), ``y = x * active``."""
    active = x > 0
    return x * active, active


def relu_backward(grad_out, derivative):
    """``grad_out * derivative``: the gradient through a ReLU (``derivative``: its mask
    ``x > 0``, or LeakyReLU's slopes)."""
    return grad_out * derivative
