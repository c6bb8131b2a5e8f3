"""Reference convolution and pooling, written as plain loops over NumPy arrays.

Slow on purpose: every output element is computed straight from its
definition, so these functions are easy to check by eye. Tests hold every
fast path equal to them. They run on NumPy; CuPy inputs are copied to the
host and the result copied back (only tests use them on the GPU).

Shapes: ``x (N, C, H, W)``; weight ``(C_out, C, kH, kW)``; ``stride`` and
``padding`` are pairs; ``H_out = (H + 2 pH - kH) // sH + 1``.
"""
import numpy as np

from .geometry import output_hw


def _on_host(fn):
    """Run ``fn`` on NumPy copies and return arrays of the caller's module."""
    def wrapper(*args, **kwargs):
        xp = None
        host_args = []
        for a in args:
            if hasattr(a, "__cuda_array_interface__"):
                import cupy
                xp = cupy
                a = cupy.asnumpy(a)
            host_args.append(a)
        result = fn(*host_args, **kwargs)
        if xp is None:
            return result
        if isinstance(result, tuple):
            return tuple(None if r is None else xp.asarray(r) for r in result)
        return xp.asarray(result)
    wrapper.__name__, wrapper.__doc__ = fn.__name__, fn.__doc__
    return wrapper


def _pad(x, padding, value=0.0):
    ph, pw = padding
    return np.pad(x, ((0, 0), (0, 0), (ph, ph), (pw, pw)), constant_values=value)


@_on_host
def conv2d_forward(x, weight, bias, stride, padding):
    """``out[n, o, i, j] = b[o] + sum_{c,u,v} w[o, c, u, v] * xpad[n, c, i*sH + u, j*sW + v]``.

    Returns ``out (N, C_out, H_out, W_out)``.
    """
    n_batch, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    (sh, sw), (ho, wo) = stride, output_hw((h, w), (kh, kw), stride, padding)
    xp_ = _pad(x, padding)
    out = np.zeros((n_batch, c_out, ho, wo), dtype=x.dtype)
    for n in range(n_batch):
        for o in range(c_out):
            for i in range(ho):
                for j in range(wo):
                    window = xp_[n, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
                    out[n, o, i, j] = np.sum(window * weight[o])
            if bias is not None:
                out[n, o] += bias[o]
    return out


@_on_host
def conv2d_backward(x, weight, grad_out, stride, padding):
    """Gradients of the convolution: each output element sends ``g * w`` back to
    the input window it read, and ``g * window`` to the weights.

    Returns ``(grad_x (N, C, H, W), grad_w (C_out, C, kH, kW), grad_b (C_out,))``.
    """
    n_batch, _, h, w = x.shape
    c_out, _, kh, kw = weight.shape
    sh, sw = stride
    ph, pw = padding
    xp_ = _pad(x, padding)
    grad_xpad = np.zeros_like(xp_)
    grad_w = np.zeros_like(weight)
    for n in range(n_batch):
        for o in range(c_out):
            for i in range(grad_out.shape[2]):
                for j in range(grad_out.shape[3]):
                    g = grad_out[n, o, i, j]
                    rows, cols = slice(i * sh, i * sh + kh), slice(j * sw, j * sw + kw)
                    grad_xpad[n, :, rows, cols] += g * weight[o]
                    grad_w[o] += g * xp_[n, :, rows, cols]
    grad_b = grad_out.sum(axis=(0, 2, 3))
    return grad_xpad[:, :, ph:ph + h, pw:pw + w], grad_w, grad_b


@_on_host
def maxpool_forward(x, kernel, stride, padding):
    """``out[n, c, i, j] = max`` over the window; padding counts as ``-inf``.

    Returns ``(out (N, C, H_out, W_out), switches (N, C, H_out, W_out) int64)``;
    a switch is the flat index ``row * W + col`` of the winner in the unpadded
    ``H x W`` input plane (PyTorch's ``return_indices`` convention). Ties go to
    the first element in row-major window order.
    """
    n_batch, channels, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = output_hw((h, w), kernel, stride, padding)
    out = np.empty((n_batch, channels, ho, wo), dtype=x.dtype)
    switches = np.empty((n_batch, channels, ho, wo), dtype=np.int64)
    for n in range(n_batch):
        for c in range(channels):
            for i in range(ho):
                for j in range(wo):
                    best, best_index = -np.inf, -1
                    for u in range(kh):
                        for v in range(kw):
                            r, q = i * sh + u - ph, j * sw + v - pw
                            if 0 <= r < h and 0 <= q < w and x[n, c, r, q] > best:
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
def avgpool_forward(x, kernel, stride, padding):
    """``out[n, c, i, j] = sum(window) / (kH * kW)``; padded zeros are counted
    (PyTorch's default ``count_include_pad=True``)."""
    n_batch, channels, h, w = x.shape
    (kh, kw), (sh, sw) = kernel, stride
    ho, wo = output_hw((h, w), kernel, stride, padding)
    xp_ = _pad(x, padding)
    out = np.empty((n_batch, channels, ho, wo), dtype=x.dtype)
    for i in range(ho):
        for j in range(wo):
            window = xp_[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw]
            out[:, :, i, j] = window.sum(axis=(2, 3)) / (kh * kw)
    return out


@_on_host
def avgpool_backward(grad_out, x_shape, kernel, stride, padding):
    """Each output gradient is shared equally, ``g / (kH * kW)``, by its window."""
    n_batch, channels, h, w = x_shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    grad_xpad = np.zeros((n_batch, channels, h + 2 * ph, w + 2 * pw), dtype=grad_out.dtype)
    for i in range(grad_out.shape[2]):
        for j in range(grad_out.shape[3]):
            share = grad_out[:, :, i, j, None, None] / (kh * kw)
            grad_xpad[:, :, i * sh:i * sh + kh, j * sw:j * sw + kw] += share
    return grad_xpad[:, :, ph:ph + h, pw:pw + w]
