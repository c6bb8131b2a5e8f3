"""im2col-based convolution and pooling, written once for NumPy and CuPy.

This is the fallback path (used when Numba is missing) and the easiest one to
read. ``im2col`` copies every receptive-field window of the input into a
column, one column per output position of every image, so that a whole
convolution becomes ONE matrix product (the biggest GEMM BLAS can get)::

    cols[(c, u, v), (n, i, j)] = xpad[n, c, i*sH + u, j*sW + v]
    out2 = W.reshape(C_out, C*kH*kW) @ cols          # (C_out, N*H_out*W_out)

It loops over the ``kH * kW`` window offsets only (a strided slice each), so
the work inside the loop is done by the array library, on CPU or GPU alike.
"""
from ..backend import get_array_module
from .geometry import output_hw


def _pad(x, padding, value=0.0):
    ph, pw = padding
    if ph == 0 and pw == 0:
        return x
    xp = get_array_module(x)
    return xp.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


def im2col(x, kernel, stride, padding, pad_value=0.0):
    """``x (N, C, H, W)`` -> ``cols (C*kH*kW, N*H_out*W_out)``; padding reads ``pad_value``."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = output_hw((h, w), kernel, stride, padding)
    xpad = _pad(x, padding, pad_value)
    cols = xp.empty((c, kh, kw, n, ho, wo), dtype=x.dtype)
    for u in range(kh):
        for v in range(kw):
            window = xpad[:, :, u:u + sh * (ho - 1) + 1:sh, v:v + sw * (wo - 1) + 1:sw]
            cols[:, u, v] = window.transpose(1, 0, 2, 3)        # (C, N, H_out, W_out)
    return cols.reshape(c * kh * kw, n * ho * wo)


def col2im(cols, x_shape, kernel, stride, padding):
    """Adjoint of ``im2col``: ``cols (C*kH*kW, N*H_out*W_out)`` -> ``(N, C, H, W)``.

    Windows that overlap write to the same input pixel, so values add up.
    """
    xp = get_array_module(cols)
    n, c, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = output_hw((h, w), kernel, stride, padding)
    cols = cols.reshape(c, kh, kw, n, ho, wo)
    xpad = xp.zeros((n, c, h + 2 * ph, w + 2 * pw), dtype=cols.dtype)
    for u in range(kh):
        for v in range(kw):
            xpad[:, :, u:u + sh * (ho - 1) + 1:sh, v:v + sw * (wo - 1) + 1:sw] += \
                cols[:, u, v].transpose(1, 0, 2, 3)
    return xpad[:, :, ph:ph + h, pw:pw + w]


def _window_columns(x, kernel, stride, padding, pad_value):
    """Each channel on its own: ``(N, C, H, W)`` -> ``(kH*kW, N*C*H_out*W_out)``."""
    n, c, h, w = x.shape
    return im2col(x.reshape(n * c, 1, h, w), kernel, stride, padding, pad_value)


def maxpool_forward(x, kernel, stride, padding):
    """Max over each window. Returns ``(out, switches)``, both ``(N, C, H_out, W_out)``;
    ``switches`` holds the flat index ``row * W + col`` of each winner in the
    unpadded input plane (ties: first in row-major window order, as ``argmax``)."""
    xp = get_array_module(x)
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = output_hw((h, w), kernel, stride, padding)
    cols = _window_columns(x, kernel, stride, padding, -xp.inf)
    winner = cols.argmax(axis=0)                                   # (N*C*L,)
    out = xp.take_along_axis(cols, winner[None, :], axis=0)[0]
    # Window offset (u, v) and output position (i, j) -> input row and column.
    u, v = winner.reshape(n * c, ho * wo) // kw, winner.reshape(n * c, ho * wo) % kw
    i = xp.arange(ho).repeat(wo)[None, :]
    j = xp.tile(xp.arange(wo), ho)[None, :]
    switches = (i * sh + u - ph) * w + (j * sw + v - pw)
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


def avgpool_forward(x, kernel, stride, padding):
    """Mean over each window, padded zeros included: ``(N, C, H_out, W_out)``."""
    n, c, h, w = x.shape
    ho, wo = output_hw((h, w), kernel, stride, padding)
    cols = _window_columns(x, kernel, stride, padding, 0.0)
    return cols.mean(axis=0).reshape(n, c, ho, wo)


def avgpool_backward(grad_out, x_shape, kernel, stride, padding):
    """Each window shares its output gradient equally: ``g / (kH * kW)``."""
    xp = get_array_module(grad_out)
    n, c, h, w = x_shape
    kh, kw = kernel
    share = grad_out.reshape(1, -1) / (kh * kw)                    # (1, N*C*L)
    cols = xp.broadcast_to(share, (kh * kw, share.shape[1]))
    return col2im(cols, (n * c, 1, h, w), kernel, stride, padding).reshape(x_shape)
