"""The CPU's threads (minicnn.kernels.threads and parallel.py): same results for every
thread count, bit-identical runs for a given count, the settings' checks, and the
parallel loops' rules (one launch at a time, a forked child, errors)."""
import subprocess
import sys
from unittest import mock

import numpy as np
import pytest
from minicnn.kernels import threads

from minicnn import Adam, SoftmaxCrossEntropy, kernels, models


def test_parts_cover_the_batch_in_order():
    assert threads.parts(10, count=3) == [slice(0, 4), slice(4, 7), slice(7, 10)]
    assert threads.parts(2, count=4) == [slice(0, 1), slice(1, 2)]    # never an empty part
    assert threads.parts(0, count=2) == [slice(0, 0)]


@pytest.mark.parametrize("workers, expected", [(1, 3), (2, 4), (3, 3), (4, 4)])
def test_chunk_counts_are_a_multiple_of_the_threads(workers, expected):
    chunks = kernels.chunks.batch_chunks(10, 1, 4, workers)      # 4 examples a chunk: 3 chunks
    assert len(chunks) == expected
    assert [i for c in chunks for i in range(10)[c]] == list(range(10))


@pytest.mark.parametrize("bad", [0, -1, 1.5, "2", True])
def test_set_num_threads_refuses_bad_counts(bad):
    with pytest.raises(ValueError, match="set_num_threads needs an int >= 1"):
        threads.set_num_threads(bad)


@pytest.mark.parametrize("env, expected", [
    ({"MINICNN_NUM_THREADS": "1", "OMP_NUM_THREADS": "2"}, "1"),   # (counts within the cores:
    ({"OMP_NUM_THREADS": "1"}, "1"),                               # a larger one is capped)
    ({"OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "2"}, "1"),
    ({"OPENBLAS_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "2"}, "1"),
    ({"MINICNN_NUM_THREADS": "zero"}, "MINICNN_NUM_THREADS must be a whole number >= 1"),
])
def test_the_thread_count_follows_the_environment(env, expected):
    clean = {k: v for k, v in __import__("os").environ.items()
             if k not in threads.ENVIRONMENT}
    code = ("from minicnn.kernels import threads\n"
            "try:\n    print(threads.num_threads())\n"
            "except ValueError as e:\n    print(e)")
    out = subprocess.run([sys.executable, "-c", code], env=clean | env, capture_output=True,
                         text=True, check=True).stdout
    assert expected in out


def lenet_step(n_threads, steps=2, dtype="float32"):
    """Weights of lenet after ``steps`` Adam steps on a fixed batch."""
    threads.set_num_threads(n_threads)
    model, loss = models.lenet(seed=3).astype(dtype), SoftmaxCrossEntropy()
    model.train()
    opt = Adam(model.parameters(), lr=1e-3)
    rng = np.random.default_rng(0)
    x = rng.random((12, 1, 28, 28)).astype(dtype)
    y = rng.integers(0, 10, 12)
    for _ in range(steps):
        opt.zero_grad()
        loss(model.forward(x), y)
        model.backward(loss.backward())
        opt.step()
    return [p.value.copy() for p in model.parameters()]


def test_a_thread_count_gives_the_same_bits_every_time(monkeypatch):
    monkeypatch.setitem(kernels.chunks.MAX_COLS_BYTES, "cpu", 200_000)   # several chunks per conv
    first, again = lenet_step(2), lenet_step(2)
    for a, b in zip(first, again):
        np.testing.assert_array_equal(a, b)


def test_every_thread_count_trains_the_same_weights(monkeypatch):
    """Up to rounding: the chunks' partial sums differ (float64, so Adam's division
    by tiny second moments does not blow the rounding up much: Winograd's transforms
    round to about 1e-13, which Adam's step of 1e-3 turns into up to 3e-11)."""
    monkeypatch.setitem(kernels.chunks.MAX_COLS_BYTES, "cpu", 400_000)
    one = lenet_step(1, dtype="float64")
    for n in (2, 3):
        for a, b in zip(one, lenet_step(n, dtype="float64")):
            np.testing.assert_allclose(a, b, rtol=1e-8, atol=1e-10)


@pytest.mark.parametrize("kept_bound", [0, 2 ** 30])
def test_columns_kept_or_rebuilt_give_the_same_gradients(monkeypatch, kept_bound):
    monkeypatch.setitem(kernels.chunks.MAX_KEPT_BYTES, "cpu", kept_bound)
    threads.set_num_threads(2)
    rng = np.random.default_rng(1)
    x = rng.standard_normal((6, 3, 8, 8))
    conv = kernels.columns.Columns(x, (3, 3), (1, 1), ((1, 1), (1, 1)), max_bytes=2000)
    w2 = rng.standard_normal((1, 4, 27))
    out = conv.product(w2)
    assert (conv.kept is None) == (kept_bound == 0) and len(conv.chunks) >= 2
    g = rng.standard_normal(out.shape)
    dw2, dx = conv.backward(w2, g)
    ref = kernels.columns.Columns(x, (3, 3), (1, 1), ((1, 1), (1, 1)), max_bytes=2 ** 30)
    threads.set_num_threads(1)
    np.testing.assert_allclose(out, ref.product(w2), rtol=1e-12)
    ref_dw2, ref_dx = ref.backward(w2, g)
    np.testing.assert_allclose(dw2, ref_dw2, rtol=1e-12)
    np.testing.assert_allclose(dx, ref_dx, rtol=1e-12)


def test_an_error_found_in_a_parallel_loop_reaches_the_caller_in_one_line():
    """An exception raised inside a compiled parallel loop reaches Python as a SystemError;
    the loop reports, the caller raises."""
    from minicnn.kernels import cpu
    threads.set_num_threads(2)
    x = np.random.default_rng(0).standard_normal((8, 8, 48, 48))
    out, switches = cpu.maxpool_forward(x, (2, 2), (2, 2), (0, 0))
    switches[6, 2, 1, 1] = 10 ** 6                            # in the second part
    with pytest.raises(ValueError, match="a switch points outside the input plane"):
        cpu.maxpool_backward(out, switches, x.shape)


def test_small_work_stays_on_one_thread():
    assert threads.parts(64, size=threads.MIN_PARALLEL_SIZE - 1, count=2) == [slice(0, 64)]
    assert len(threads.parts(64, size=threads.MIN_PARALLEL_SIZE, count=2)) == 2


def test_one_part_runs_the_one_thread_loop_on_the_calling_thread():
    """Small work is one part: the loop's one-thread twin runs it, no parallel launch;
    two parts launch the parallel loop. The same numbers either way."""
    from unittest import mock

    from minicnn.kernels import passes_cpu
    threads.set_num_threads(2)
    loop = passes_cpu._relu_parts
    for size, launched in ((100, False), (4 * threads.MIN_PARALLEL_SIZE, True)):
        x = np.random.default_rng(size).standard_normal(size)
        with mock.patch.object(loop, "parallel", wraps=loop.parallel) as parallel:
            y, active = passes_cpu.relu_forward(x)
        assert parallel.called == launched
        np.testing.assert_array_equal(y, x * (x > 0))
        np.testing.assert_array_equal(active, x > 0)
    assert threads.part_bounds(64, 10) is threads.part_bounds(64, 10)  # one cut, one array


@pytest.mark.parametrize("n_threads", [2, 3])
def test_pooling_on_threads_equals_the_reference(n_threads):
    """A batch big enough to be shared between threads (MIN_PARALLEL_SIZE)."""
    from minicnn.kernels import cpu, reference
    threads.set_num_threads(n_threads)
    rng = np.random.default_rng(2)
    x = rng.standard_normal((8, 8, 48, 48))
    assert x.size >= threads.MIN_PARALLEL_SIZE
    out, switches = cpu.maxpool_forward(x, (3, 3), (2, 2), (1, 1))
    ref_out, ref_switches = reference.maxpool_forward(x, (3, 3), (2, 2), (1, 1))
    np.testing.assert_array_equal(out, ref_out)
    np.testing.assert_array_equal(switches, ref_switches)
    g = rng.standard_normal(out.shape)
    np.testing.assert_allclose(cpu.maxpool_backward(g, switches, x.shape),
                               reference.maxpool_backward(g, ref_switches, x.shape), rtol=1e-13)
    np.testing.assert_allclose(cpu.avgpool_forward(x, (2, 2), (2, 2), (0, 0)),
                               reference.avgpool_forward(x, (2, 2), (2, 2), (0, 0)), rtol=1e-13)
    g = rng.standard_normal((8, 8, 24, 24))
    np.testing.assert_allclose(cpu.avgpool_backward(g, x.shape, (2, 2), (2, 2), (0, 0)),
                               reference.avgpool_backward(g, x.shape, (2, 2), (2, 2), (0, 0)),
                               rtol=1e-13)


@pytest.mark.parametrize("n_threads", [1, 2, 3])
@pytest.mark.parametrize("shape", [(300, 500, 40), (7, 3, 5), (40, 500, 300), (3, 7, 5),
                                   (4, 601, 300)])
def test_matmul_on_threads_equals_numpy(n_threads, shape):
    """Each way ``matmul`` shares a product, ``(m, k, n)``: a's rows, and too small to
    share; fewer rows than columns, as ``(b.T @ a.T).T``; ``b`` far larger than the
    product, by b's rows (with a C-contiguous ``b``)."""
    threads.set_num_threads(n_threads)
    rng = np.random.default_rng(3)
    m, k, n = shape
    a, b = rng.standard_normal((m, k)), rng.standard_normal((n, k)).T     # b a strided view
    for product in (kernels.matmul(a, b), kernels.matmul(a.T.copy().T, b),
                    kernels.matmul(a, b.copy()), kernels.matmul(a, b, out=np.empty((m, n)))):
        np.testing.assert_allclose(product, a @ b, rtol=1e-12, atol=1e-12)
        assert product.flags.c_contiguous
    out = np.empty((n, m)).T                                  # not C-contiguous: filled anyway
    assert kernels.matmul(a, b, out=out) is out
    np.testing.assert_allclose(out, a @ b, rtol=1e-12, atol=1e-12)


FORKED_CHILD = """
import multiprocessing
import numpy as np
from minicnn import kernels
kernels.threads.set_num_threads(2)
a, b = np.ones((600, 300)), np.ones((300, 40))
kernels.matmul(a, b)                    # the parent runs a parallel loop
kernels.parallel._launch.acquire()      # and forks while a launch holds the lock

def in_child(_):
    return float(kernels.matmul(a, b).sum())

if __name__ == "__main__":
    with multiprocessing.get_context("fork").Pool(1) as pool:
        print(pool.map_async(in_child, [0]).get(timeout=60))
"""


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="no fork")
def test_a_forked_child_runs_the_one_thread_loops(tmp_path):
    """GNU OpenMP cannot run in a forked child: Numba ended it at its first parallel loop
    ("Terminating: fork() called from a process already using GNU OpenMP"). The parent
    forks while its launch lock is held (another thread's loop): the child has its own."""
    script = tmp_path / "forked.py"
    script.write_text(FORKED_CHILD)
    done = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                          timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == f"[{600 * 40 * 300.0}]"


AT_ONCE = """
import threading
import numpy as np
from minicnn import kernels
kernels.threads.set_num_threads(2)
rng = np.random.default_rng(4)
pairs = [(rng.standard_normal((400, 200)), rng.standard_normal((200, 30))) for _ in range(4)]
results = [None] * len(pairs)

def work(k):
    for _ in range(20):
        results[k] = kernels.matmul(*pairs[k])
workers = [threading.Thread(target=work, args=(k,)) for k in range(len(pairs))]
for worker in workers:
    worker.start()
for worker in workers:
    worker.join()
print(all(np.allclose(r, a @ b, rtol=1e-12, atol=1e-12) for (a, b), r in zip(pairs, results)))
"""


@pytest.mark.parametrize("layer", ["omp", "workqueue"])
def test_python_threads_launching_at_once_get_their_own_results(layer):
    """One launch at a time: Numba's workqueue layer (where no OpenMP runtime is installed)
    ended the process (exit status 134) on launches from two threads at once."""
    env = dict(__import__("os").environ, NUMBA_THREADING_LAYER=layer)
    done = subprocess.run([sys.executable, "-c", AT_ONCE], env=env, capture_output=True,
                          text=True, timeout=240)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "True"


def test_a_large_b_is_shared_by_its_rows():
    """``g @ W`` with W far larger than the product (a Dense layer's input gradient): each
    thread multiplies its part of W's rows (not all of W), the parts' products added in
    part order: the same bits run after run, NumPy's product to rounding."""
    from minicnn.kernels import parallel
    rng = np.random.default_rng(5)
    g, w = rng.standard_normal((8, 301)), rng.standard_normal((301, 500))
    launched, call = [], parallel.PartsLoop.__call__

    def spy(loop, *args):
        launched.append((loop.__name__, len(args[loop.parts_at])))
        return call(loop, *args)

    threads.set_num_threads(2)
    with mock.patch.object(parallel.PartsLoop, "__call__", spy):
        first, again = parallel.matmul(g, w), parallel.matmul(g, w)
    assert launched == [("matmul_inner", 2)] * 2
    np.testing.assert_array_equal(first, again)
    np.testing.assert_allclose(first, g @ w, rtol=1e-12, atol=1e-12)


def test_numba_runs_minicnns_thread_count_at_most_its_own_cap():
    import numba
    from minicnn.kernels import parallel
    a = np.ones((600, 300))
    for count in (1, 2, 64):
        threads.set_num_threads(count)
        parallel.matmul(a, a.T[:, :40])
        assert numba.get_num_threads() == min(count, numba.config.NUMBA_NUM_THREADS)
