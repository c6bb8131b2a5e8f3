"""The shared batched eval-mode forward and the one stable softmax."""
import numpy as np

from minicnn.backend import as_numpy, to_device
from minicnn.layers import Dense, Dropout, Flatten, ReLU, Sequential
from minicnn.layers.activations import softmax
from minicnn.training.inference import chunks, eval_forward


def test_softmax_is_stable_and_sums_to_one_along_its_axis(backend):
    z = backend.asarray([[1000.0, 1000.0, -1000.0], [0.0, 1.0, 2.0]])
    p = as_numpy(softmax(z, axis=1))
    np.testing.assert_allclose(p[0], [0.5, 0.5, 0.0])
    np.testing.assert_allclose(p[1], np.exp([0, 1, 2]) / np.exp([0, 1, 2]).sum())
    np.testing.assert_allclose(as_numpy(softmax(z.T, axis=0)), p.T)


def test_eval_forward_runs_in_eval_mode_by_batches_and_restores_the_flags(backend, device, rng):
    model = Sequential([Flatten(), Dense(12, 5, seed=0), ReLU(), Dropout(0.5),
                        Dense(5, 3, seed=1)]).to(device)
    model.train()
    model[3].eval()                                       # a mixed state comes back as it was
    images = rng.standard_normal((7, 1, 3, 4)).astype(np.float32)
    outs = list(eval_forward(model, chunks(images, 3)))
    assert [o.shape for o in outs] == [(3, 3), (3, 3), (1, 3)]
    assert [m.training for m in model.modules()] == [True] * 4 + [False, True]   # model first
    model.eval()
    expected = as_numpy(model.forward(to_device(images, device)))
    np.testing.assert_allclose(np.concatenate([as_numpy(o) for o in outs]), expected, rtol=1e-6)
    labels = np.arange(7)
    pairs = list(eval_forward(model, ((images[i:i + 4], labels[i:i + 4]) for i in (0, 4))))
    assert [y.tolist() for _, y in pairs] == [[0, 1, 2, 3], [4, 5, 6]]   # labels ride along
    codes = np.concatenate([as_numpy(c) for c in eval_forward(model, [images], stop=3)])
    np.testing.assert_allclose(codes, as_numpy(model[:3].forward(to_device(images, device))))
