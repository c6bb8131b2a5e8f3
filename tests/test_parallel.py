"""Columns on the CPU: its chunks in one parallel loop (columns_cpu.py) give the chunk
path's sums (the textbook loops, as the GPU runs them), for every thread count, kept or
made again in backward, every padding mode, groups, strides and dilations."""
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from minicnn.kernels import chunks, columns, cpu, textbook, threads


@settings(max_examples=40, deadline=None)
@given(n=st.integers(1, 7), groups=st.sampled_from([1, 2]), per_group=st.integers(1, 3),
       hw=st.tuples(st.integers(3, 9), st.integers(3, 9)), kernel=st.sampled_from([1, 2, 3]),
       stride=st.sampled_from([(1, 1), (2, 1), (2, 2)]), dilation=st.sampled_from([1, 2]),
       pads=st.sampled_from([((0, 0), (0, 0)), ((1, 1), (1, 1)), ((1, 2), (0, 1))]),
       mode=st.sampled_from(["zeros", "reflect"]), dtype=st.sampled_from([np.float64, np.float32]),
       n_threads=st.integers(1, 3), kept=st.booleans(), seed=st.integers(0, 2 ** 16))
def test_columns_in_parts_equal_the_chunks(n, groups, per_group, hw, kernel, stride, dilation,
                                          pads, mode, dtype, n_threads, kept, seed):
    extent = dilation * (kernel - 1) + 1
    if mode == "reflect" and max(max(p) for p in pads) >= min(hw):
        return                                         # reflect needs a pad < the side
    if min(hw[0] + sum(pads[0]), hw[1] + sum(pads[1])) < extent:
        return                                         # no window fits
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((n, 2 * groups, *hw)).astype(dtype)
    w2 = rng.standard_normal((groups, per_group, 2 * kernel * kernel)).astype(dtype)
    bias = rng.standard_normal(groups * per_group).astype(dtype)
    threads.set_num_threads(n_threads)
    bound = chunks.MAX_KEPT_BYTES["cpu"]
    chunks.MAX_KEPT_BYTES["cpu"] = 2 ** 30 if kept else 0
    try:
        geometry = ((kernel, kernel), stride, pads, (dilation, dilation), groups, mode)
        parts = columns.Columns(x, *geometry, loops=cpu, max_bytes=600)
        plain = columns.Columns(x, *geometry, loops=textbook, max_bytes=600)
        assert parts.in_parts and not plain.in_parts
        out = parts.product(w2, bias)
        assert (parts.x is None) == kept                # kept columns: x let go
        g = rng.standard_normal(out.shape).astype(dtype)
        results = [out, *parts.backward(w2, g), parts.backward(w2, g, weights=False)[1],
                   parts.backward(w2, g, inputs=False)[0]]
        expected = [plain.product(w2, bias), *plain.backward(w2, g)]
        expected += expected[2:0:-1]
    finally:
        chunks.MAX_KEPT_BYTES["cpu"] = bound
    tol = 1e-12 if dtype == np.float64 else 2e-5
    for got, want in zip(results, expected):
        np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(1, np.abs(want).max()))
