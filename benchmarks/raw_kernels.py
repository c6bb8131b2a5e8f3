"""Two kernels of ``kernels/cuda.py`` written again in CUDA C as CuPy RawKernels, so that
``launch_overhead.py`` can compare launch costs on the same body (float32, C-contiguous).

Same layouts and formulas as ``kernels/cuda.py``: one thread per element of ``cols``
``(C*kH*kW, N*H_out*W_out)`` for im2col, one per output element for max pooling, whose
switches hold ``row * W + col`` of the first maximum in row-major window order.
"""
import cupy
import numpy as np
from minicnn.kernels.textbook import output_hw

THREADS_PER_BLOCK = 128

_SOURCE = r"""
extern "C" __global__ void im2col_f32(
        const float* x, int c, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw,
        int ho, int wo, float pad_value, float* cols, long long rows, long long ncols) {
    long long t = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (t >= rows * ncols) return;
    long long row = t / ncols, col = t % ncols;
    int ch = row / (kh * kw), u = (row / kw) % kh, v = row % kw;
    long long b = col / (ho * wo);
    int i = (col / wo) % ho, j = col % wo;
    int r = i * sh + u - ph, q = j * sw + v - pw;
    cols[t] = (0 <= r && r < h && 0 <= q && q < w) ? x[((b * c + ch) * h + r) * w + q]
                                                   : pad_value;
}

extern "C" __global__ void maxpool_forward_f32(
        const float* x, int h, int w, int kh, int kw, int sh, int sw, int ph, int pw,
        int ho, int wo, float* out, long long* switches, long long total) {
    long long t = (long long)blockDim.x * blockIdx.x + threadIdx.x;
    if (t >= total) return;
    long long plane = t / (ho * wo);
    int i = (t / wo) % ho, j = t % wo;
    float best = -__int_as_float(0x7f800000);          /* -inf */
    long long best_index = -1;
    for (int u = 0; u < kh; ++u) {
        for (int v = 0; v < kw; ++v) {
            int r = i * sh + u - ph, q = j * sw + v - pw;
            if (0 <= r && r < h && 0 <= q && q < w) {
                float value = x[plane * h * w + r * w + q];
                if (value > best) { best = value; best_index = r * w + q; }   /* first of ties */
            }
        }
    }
    out[t] = best;
    switches[t] = best_index;
}
"""
_MODULE = None


def _kernel(name):
    global _MODULE
    if _MODULE is None:
        _MODULE = cupy.RawModule(code=_SOURCE)
    return _MODULE.get_function(name)


def _grid(n_threads):
    return ((n_threads + THREADS_PER_BLOCK - 1) // THREADS_PER_BLOCK,), (THREADS_PER_BLOCK,)


def im2col_launcher(x, cols, kernel, stride, padding, pad_value=0.0):
    """A function of no arguments that launches im2col of ``x`` into ``cols`` (both float32,
    C-contiguous, ``cols (C*kH*kW, N*H_out*W_out)``): the launch alone, arguments prebuilt."""
    n, c, h, w = x.shape
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = output_hw((h, w), kernel, stride, padding)
    assert cols.shape == (c * kh * kw, n * ho * wo), cols.shape
    ints = [np.int32(v) for v in (c, h, w, kh, kw, sh, sw, ph, pw, ho, wo)]
    args = (x, *ints, np.float32(pad_value), cols, np.int64(cols.shape[0]),
            np.int64(cols.shape[1]))
    grid, function = _grid(cols.size), _kernel("im2col_f32")
    return lambda: function(*grid, args)


def maxpool_forward_launcher(x, out, switches, kernel, stride, padding):
    """A function of no arguments that launches max pooling of ``x`` into ``out`` (float32)
    and ``switches`` (int64), both ``(N, C, H_out, W_out)``."""
    h, w = x.shape[2:]
    (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
    ho, wo = output_hw((h, w), kernel, stride, padding)
    assert out.shape == switches.shape == x.shape[:2] + (ho, wo), out.shape
    ints = [np.int32(v) for v in (h, w, kh, kw, sh, sw, ph, pw, ho, wo)]
    args = (x, *ints, out, switches, np.int64(out.size))
    grid, function = _grid(out.size), _kernel("maxpool_forward_f32")
    return lambda: function(*grid, args)


def raw_im2col(x, kernel, stride, padding, pad_value=0.0):
    """``x (N, C, H, W)`` float32 -> ``cols (C*kH*kW, N*H_out*W_out)``."""
    x = cupy.ascontiguousarray(x, dtype=cupy.float32)
    n, c, h, w = x.shape
    (kh, kw) = kernel
    ho, wo = output_hw((h, w), kernel, stride, padding)
    cols = cupy.empty((c * kh * kw, n * ho * wo), dtype=cupy.float32)
    im2col_launcher(x, cols, kernel, stride, padding, pad_value)()
    return cols


def raw_maxpool_forward(x, kernel, stride, padding):
    """``(out, switches)``, both ``(N, C, H_out, W_out)``; switches int64."""
    x = cupy.ascontiguousarray(x, dtype=cupy.float32)
    n, c, h, w = x.shape
    ho, wo = output_hw((h, w), kernel, stride, padding)
    out = cupy.empty((n, c, ho, wo), dtype=cupy.float32)
    switches = cupy.empty((n, c, ho, wo), dtype=cupy.int64)
    maxpool_forward_launcher(x, out, switches, kernel, stride, padding)()
    return out, switches
