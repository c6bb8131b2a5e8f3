"""Reference convolution and pooling, written as plain loops over NumPy arrays.

Slow on purpose: every output element is computed straight from its
definition, so these functions are easy to check by eye. Tests hold every
fast path equal to them. They run on NumPy; CuPy inputs are copied to the
host and the result copied back (only tests use them on the GPU).

Shapes: ``x (N, C, H, W)``; weight ``(C_out, C / groups, kH, kW)``; ``stride``,
``dilation`` and symmetric ``padding`` are pairs; a convolution's padding may
also be ``((top, bottom), (left, right))``. Sizes: ``textbook.output_hw``.
"""
import numpy as np

from ..backend import as_numpy, get_array_module
from .textbook import avgpool_divisors, output_hw, pads_of, source_index

NUMPY_PAD_MODES = {"zeros": "constant", "reflect": "reflect", "replicate": "edge",
                   "circular": "wrap"}


def _on_host(fn):
    """Run ``fn`` on NumPy copies and return arrays of the caller's module."""
    def wrapper(*args, **kwargs):
        xp = get_array_module(*args)
        result = fn(*(as_numpy(a) if get_array_module(a) is not np else a for a in args),
                    **kwargs)
        if xp is np:
            return result
        if isinstance(result, tuple):
            return tuple(None if r is None else xp.asarray(r) for r in result)
        return xp.asarray(result)
    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


def _pad(x, padding, mode="zeros"):
    (top, bottom), (left, right) = pads_of(padding)
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)), mode=NUMPY_PAD_MODES[mode])


@_on_host
def conv2d_forward(x, weight, bias, stride, padding, dilation=(1, 1), groups=1,
                   padding_mode="zeros"):
    """``out[n, o, i, j] = b[o] + sum_{c,u,v} w[o, c, u, v] * xpad[n, g*C_g + c, i*sH + u*dH, j*sW + v*dW]``

    with ``g = o // (C_out / groups)`` the group of output channel ``o`` and
    ``C_g = C / groups`` its input channels. Returns ``out (N, C_out, H_out, W_out)``.
    """
    n_batch, _, _, _ = x.shape
    c_out, c_g, kh, kw = weight.shape
    (sh, sw), (dh, dw) = stride, dilation
    xpad = _pad(x, padding, padding_mode)
    ho, wo = output_hw(xpad.shape[2:], (kh, kw), stride, (0, 0), dilation)
    out = np.zeros((n_batch, c_out, ho, wo), dtype=x.dtype)
    for n in range(n_batch):
        for o in range(c_out):
            first = (o // (c_out // groups)) * c_g          # first input channel of o's group
            for i in range(ho):
                for j in range(wo):
                    window = xpad[n, first:first + c_g, i * sh:i * sh + dh * (kh - 1) + 1:dh,
                                 j * sw:j * sw + dw * (kw - 1) + 1:dw]
                    out[n, o, i, j] = np.sum(window * weight[o])
            if bias is not None:
                out[n, o] += bias[o]
    return out


@_on_host
def conv2d_backward(x, weight, grad_out, stride, padding, dilation=(1, 1), groups=1,
                    padding_mode="zeros"):
    """Gradients of the convolution: each output element sends ``g * w`` back to
    the input window it read, and ``g * window`` to the weights; a padded pixel
    hands its gradient to the input pixel it copied.

    Returns ``(grad_x (N, C, H, W), grad_w (C_out, C_g, kH, kW), grad_b (C_out,))``.
    """
    n_batch, _, h, w = x.shape
    c_out, c_g, kh, kw = weight.shape
    (sh, sw), (dh, dw) = stride, dilation
    xpad = _pad(x, padding, padding_mode)
    grad_xpad = np.zeros_like(xpad)
    grad_w = np.zeros_like(weight)
    for n in range(n_batch):
        for o in range(c_out):
            chans = slice((o // (c_out // groups)) * c_g, (o // (c_out // groups) + 1) * c_g)
            for i in range(grad_out.shape[2]):
                for j in range(grad_out.shape[3]):
                    g = grad_out[n, o, i, j]
                    rows = slice(i * sh, i * sh + dh * (kh - 1) + 1, dh)
                    cols = slice(j * sw, j * sw + dw * (kw - 1) + 1, dw)
                    grad_xpad[n, chans, rows, cols] += g * weight[o]
                    grad_w[o] += g * xpad[n, chans, rows, cols]
    grad_x = np.zeros_like(x)
    (top, _), (left, _) = pads_of(padding)
    for r in range(xpad.shape[2]):
        for q in range(xpad.shape[3]):
            rr, qq = source_index(r, h, top, padding_mode), source_index(q, w, left, padding_mode)
            if rr is not None and qq is not None:
                grad_x[:, :, rr, qq] += grad_xpad[:, :, r, q]
    return grad_x, grad_w, grad_out.sum(axis=(0, 2, 3))


@_on_host
def maxpool_forward(x, kernel, stride, padding, dilation=(1, 1), ceil_mode=False):
    """``out[n, c, i, j] = max`` over the window's taps inside the input.

    Returns ``(out (N, C, H_out, W_out), switches (N, C, H_out, W_out) int64)``;
    a switch is the flat index ``row * W + col`` of the winner in the unpadded
    ``H x W`` input plane (PyTorch's ``return_indices`` convention). As in
    PyTorch: ties go to the first tap in row-major window order, a NaN wins
    (the last NaN of the window), and an all ``-inf`` window routes to its
    first tap inside the input.
    """
    n_batch, channels, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = kernel, stride, padding, dilation
    ho, wo = output_hw((h, w), kernel, stride, padding, dilation, ceil_mode)
    out = np.empty((n_batch, channels, ho, wo), dtype=x.dtype)
    switches = np.empty((n_batch, channels, ho, wo), dtype=np.int64)
    for n in range(n_batch):
        for c in range(channels):
            for i in range(ho):
                for j in range(wo):
                    best, best_index = -np.inf, None
                    for u in range(kh):
                        for v in range(kw):
                            r, q = i * sh + u * dh - ph, j * sw + v * dw - pw
                            if not (0 <= r < h and 0 <= q < w):
                                continue
                            if best_index is None:
                                best_index = r * w + q           # the first tap inside
                            if x[n, c, r, q] > best or np.isnan(x[n, c, r, q]):
                                best, best_index = x[n, c, r, q], r * w + q
                    out[n, c, i, j], switches[n, c, i, j] = best, best_index
    return out, switches


@_on_host
def maxpool_backward(grad_out, switches, x_shape):
    """Route each output gradient to the input its switch points at; shared
    inputs of overlapping windows add up. This is also Zeiler's "unpooling".

    Returns ``grad_x`` of shape ``x_shape``.
    """
    n_batch, channels, h, w = x_shape
    grad_x = np.zeros((n_batch, channels, h * w), dtype=grad_out.dtype)
    for n in range(n_batch):
        for c in range(channels):
            for i in range(grad_out.shape[2]):
                for j in range(grad_out.shape[3]):
                    grad_x[n, c, switches[n, c, i, j]] += grad_out[n, c, i, j]
    return grad_x.reshape(x_shape)


@_on_host
def maxunpool_forward(x, switches, out_hw):
    """``out[n, c, switch] = x[n, c, i, j]``, zeros elsewhere: ``(N, C, *out_hw)``."""
    n_batch, channels = x.shape[:2]
    out = np.zeros((n_batch, channels, out_hw[0] * out_hw[1]), dtype=x.dtype)
    for n in range(n_batch):
        for c in range(channels):
            for i in range(x.shape[2]):
                for j in range(x.shape[3]):
                    out[n, c, switches[n, c, i, j]] = x[n, c, i, j]
    return out.reshape(n_batch, channels, *out_hw)


@_on_host
def avgpool_forward(x, kernel, stride, padding, ceil_mode=False, count_include_pad=True,
                    divisor_override=None):
    """``out[n, c, i, j] = sum(window inside the input) / divisor[i, j]``, the divisor
    by PyTorch's rules (``textbook.avgpool_divisors``)."""
    n_batch, channels, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    divisor = avgpool_divisors((h, w), kernel, stride, padding, ceil_mode, count_include_pad,
                               divisor_override)
    out = np.empty((n_batch, channels) + divisor.shape, dtype=x.dtype)
    for i in range(divisor.shape[0]):
        for j in range(divisor.shape[1]):
            rows = slice(max(i * sh - ph, 0), min(i * sh - ph + kh, h))
            cols = slice(max(j * sw - pw, 0), min(j * sw - pw + kw, w))
            out[:, :, i, j] = x[:, :, rows, cols].sum(axis=(2, 3)) / divisor[i, j]
    return out


@_on_host
def avgpool_backward(grad_out, x_shape, kernel, stride, padding, ceil_mode=False,
                     count_include_pad=True, divisor_override=None):
    """Each output gradient is shared by its window's input pixels: ``g / divisor[i, j]``."""
    h, w = x_shape[2:]
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    divisor = avgpool_divisors((h, w), kernel, stride, padding, ceil_mode, count_include_pad,
                               divisor_override)
    grad_x = np.zeros(x_shape, dtype=grad_out.dtype)
    for i in range(grad_out.shape[2]):
        for j in range(grad_out.shape[3]):
            rows = slice(max(i * sh - ph, 0), min(i * sh - ph + kh, h))
            cols = slice(max(j * sw - pw, 0), min(j * sw - pw + kw, w))
            grad_x[:, :, rows, cols] += grad_out[:, :, i, j, None, None] / divisor[i, j]
    return grad_x


# -- the engine interface (see minicnn.kernels): what Conv2D calls with impl="reference" --

def convolve(x, weight, bias, stride, padding, dilation=(1, 1), groups=1, padding_mode="zeros"):
    """``(out, x)``: ``conv2d_forward``, and the input that ``convolve_backward`` needs."""
    return conv2d_forward(x, weight, bias, stride, padding, dilation, groups, padding_mode), x


def convolve_backward(x, weight, grad_out, weights=True, inputs=True, **geometry):
    """``(grad_x, grad_w, grad_b)`` by ``conv2d_backward`` (``None`` where not asked for)."""
    gx, gw, gb = conv2d_backward(x, weight, grad_out, **geometry)
    return (gx if inputs else None), (gw if weights else None), gb
