"""BatchIterator and augmentation, on NumPy and (when a GPU is usable) CuPy.

The ``backend`` / ``device`` fixtures come from conftest.py: the CuPy case
skips with the reason when CuPy or a GPU is missing. Labels are set to the
sample index, so a batch's labels say exactly which samples it holds.
"""
import numpy as np
import pytest

from minicnn.backend import as_numpy, get_array_module
from minicnn.data import (MNIST_MEAN, MNIST_STD, Augment, BatchIterator, prepare_images,
                          rotate_images, shift_images)

N = 50


@pytest.fixture
def images(rng):
    return rng.integers(0, 256, size=(N, 28, 28), dtype=np.uint8)


def indices(iterator, epoch=None):
    """The sample indices (= labels) of one epoch, batch by batch, on the host."""
    batches = iterator if epoch is None else iterator.epoch(epoch)
    return [as_numpy(y).tolist() for _, y in batches]


def flat(batches):
    return [i for batch in batches for i in batch]


def test_batches_shapes_dtypes_and_device(images, backend, device):
    it = BatchIterator(images, np.arange(N), batch_size=16, device=device)
    assert get_array_module(it.images) is backend  # moved once, in the constructor
    batches = list(it)
    assert len(batches) == len(it) == 4
    for x, y in batches:
        assert get_array_module(x) is backend and get_array_module(y) is backend
        assert x.dtype == np.float32 and y.dtype == np.int64
        assert x.shape[1:] == (1, 28, 28) and x.shape[0] == y.shape[0]
    assert [x.shape[0] for x, _ in batches] == [16, 16, 16, 2]


def test_channels_first_input_passes_through(rng):
    x = rng.random((10, 3, 8, 8)).astype(np.float32)
    it = BatchIterator(x, np.arange(10), batch_size=10, shuffle=False, normalize=None)
    xb, _ = next(iter(it))
    np.testing.assert_array_equal(xb, x)  # float input: neither scaled nor changed


def test_drop_last(images):
    it = BatchIterator(images, np.arange(N), batch_size=16, drop_last=True)
    assert len(it) == 3
    assert [len(b) for b in indices(it)] == [16, 16, 16]
    assert len(BatchIterator(images, np.arange(N), batch_size=10, drop_last=True)) == 5


def test_every_sample_once_per_epoch(images, device):
    it = BatchIterator(images, np.arange(N), batch_size=7, device=device)
    for _ in range(3):
        assert sorted(flat(indices(it))) == list(range(N))


def test_same_seed_same_order_other_seed_other_order(images):
    a = BatchIterator(images, np.arange(N), batch_size=8, seed=3)
    b = BatchIterator(images, np.arange(N), batch_size=8, seed=3)
    c = BatchIterator(images, np.arange(N), batch_size=8, seed=4)
    first_a, first_b, first_c = indices(a), indices(b), indices(c)
    assert first_a == first_b and first_a != first_c
    assert indices(a) == indices(b)  # second epochs agree too
    assert first_a != list(range(N))


def test_epochs_differ_and_resume_reproduces_the_run(images):
    augment = Augment(max_shift=2, max_rotation_degrees=10)
    full = BatchIterator(images, np.arange(N), batch_size=8, seed=5, augment=augment)
    run = [[(as_numpy(x), as_numpy(y)) for x, y in full] for _ in range(4)]
    orders = [flat([y.tolist() for _, y in epoch]) for epoch in run]
    assert len({tuple(o) for o in orders}) == 4  # every epoch has its own order

    resumed = BatchIterator(images, np.arange(N), batch_size=8, seed=5, augment=augment)
    resumed.set_epoch(3)
    for (x, y), (x_run, y_run) in zip(resumed, run[3]):
        np.testing.assert_array_equal(y, y_run)
        np.testing.assert_array_equal(x, x_run)  # the augmentation is replayed too
    assert resumed.next_epoch == 4


def test_epoch_k_does_not_move_the_counter(images):
    it = BatchIterator(images, np.arange(N), batch_size=8)
    assert indices(it, epoch=2) == indices(it, epoch=2)
    assert it.next_epoch == 0
    assert indices(it) == indices(it, epoch=0)


def test_no_shuffle_keeps_the_order(images):
    it = BatchIterator(images, np.arange(N), batch_size=8, shuffle=False)
    assert flat(indices(it)) == list(range(N)) == flat(indices(it))


def test_normalization_values(device):
    x = np.array([[[0, 255]], [[51, 102]]], dtype=np.uint8)  # (2, 1, 2)
    it = BatchIterator(x, [0, 1], batch_size=2, shuffle=False, device=device)
    xb = as_numpy(next(iter(it))[0])
    expected = (np.array([[0, 1]], np.float32)[None] - MNIST_MEAN) / MNIST_STD
    np.testing.assert_allclose(xb[0], expected, rtol=1e-6)
    assert (MNIST_MEAN, MNIST_STD) == (0.1307, 0.3081)

    raw = BatchIterator(x, [0, 1], batch_size=2, shuffle=False, normalize=None, device=device)
    np.testing.assert_allclose(as_numpy(next(iter(raw))[0])[:, 0],
                               [[[0, 1]], [[0.2, 0.4]]], rtol=1e-6)
    custom = BatchIterator(x, [0, 1], batch_size=2, shuffle=False, normalize=(0.5, 0.25))
    np.testing.assert_allclose(next(iter(custom))[0][0, 0], [[-2, 2]], rtol=1e-6)


def test_prepare_images_is_the_batch_conversion(images, device):
    # one slice converted on its own gives exactly the iterator's batch
    it = BatchIterator(images, np.arange(N), batch_size=8, shuffle=False, device=device)
    xb = next(iter(it))[0]
    alone = prepare_images(it.images[:8])
    assert alone.dtype == np.float32 and alone.shape == (8, 1, 28, 28)
    assert get_array_module(alone) is get_array_module(xb)
    np.testing.assert_array_equal(as_numpy(alone), as_numpy(xb))
    np.testing.assert_array_equal(prepare_images(images[:8]), as_numpy(xb))  # (B, H, W) too


def test_shift_augmentation_moves_pixels_by_at_most_two(device):
    x = np.zeros((40, 28, 28), dtype=np.uint8)
    x[:, 14, 14] = 255  # one bright pixel per image
    it = BatchIterator(x, np.arange(40), batch_size=40, normalize=None, device=device,
                       augment=Augment(max_shift=2, max_rotation_degrees=0))
    xb = as_numpy(next(iter(it))[0])
    assert xb.shape == (40, 1, 28, 28)
    moves = set()
    for image in xb[:, 0]:
        (i,), (j,) = np.nonzero(image)  # still exactly one bright pixel, kept whole
        assert image[i, j] == 1.0
        assert abs(i - 14) <= 2 and abs(j - 14) <= 2
        moves.add((i - 14, j - 14))
    assert len(moves) > 5  # the shifts really vary


def test_shift_images_fills_with_zeros(backend):
    x = backend.asarray(np.arange(2 * 1 * 4 * 5, dtype=np.float32).reshape(2, 1, 4, 5) + 1)
    out = as_numpy(shift_images(x, [1, -2], [0, 3]))
    x = as_numpy(x)
    np.testing.assert_array_equal(out[0, 0, 1:], x[0, 0, :-1])  # down by 1
    np.testing.assert_array_equal(out[0, 0, 0], 0)
    np.testing.assert_array_equal(out[1, 0, :-2, 3:], x[1, 0, 2:, :2])  # up 2, right 3
    assert (out[1, 0, -2:] == 0).all() and (out[1, 0, :, :3] == 0).all()


def test_rotation_by_zero_is_identity_and_by_90_turns(backend, rng):
    x = backend.asarray(rng.random((3, 2, 7, 7)).astype(np.float32))
    out = rotate_images(x, [0, 0, 0])
    assert out.shape == x.shape and out.dtype == x.dtype
    np.testing.assert_array_equal(as_numpy(out), as_numpy(x))
    turned = as_numpy(rotate_images(x, [90, 90, 90]))
    np.testing.assert_allclose(turned, np.rot90(as_numpy(x), axes=(2, 3)), atol=1e-6)


def test_small_rotation_keeps_the_centre_and_stays_in_range(backend):
    x = np.zeros((1, 1, 29, 29), np.float32)
    x[0, 0, 14, 14] = 1.0  # the centre pixel of an odd-sized image stays put
    x[0, 0, 14, 24] = 1.0  # a pixel 10 to the right moves up a little
    out = as_numpy(rotate_images(backend.asarray(x), [10.0]))[0, 0]
    assert out[14, 14] == pytest.approx(1.0)
    rows, cols = np.nonzero(out[:, 18:] > 0.05)
    assert rows.min() >= 12 and rows.max() <= 13  # up by 10 * sin(10 deg) = 1.7
    assert out.min() >= 0 and out.max() <= 1 + 1e-6


def test_augmented_outputs_are_finite_and_match_across_devices(images, device):
    kwargs = dict(batch_size=20, seed=9, augment=Augment())
    x_dev = as_numpy(next(iter(BatchIterator(images, np.arange(N), device=device, **kwargs)))[0])
    assert np.isfinite(x_dev).all() and x_dev.shape == (20, 1, 28, 28)
    x_cpu = next(iter(BatchIterator(images, np.arange(N), **kwargs)))[0]
    np.testing.assert_allclose(x_dev, x_cpu, atol=1e-5)  # same seed, same batch anywhere


@pytest.mark.parametrize("kwargs, error", [
    (dict(images=np.zeros((4, 28)), labels=np.arange(4)), "images must be"),
    (dict(labels=np.arange(3)), "labels must be"),
    (dict(labels=np.zeros(4)), "integers"),
    (dict(batch_size=0), "batch_size"),
    (dict(normalize=(0.1, 0.0)), "std > 0"),
    (dict(device="tpu"), "device"),
])
def test_bad_arguments(kwargs, error):
    args = dict(images=np.zeros((4, 28, 28), np.uint8), labels=np.arange(4), batch_size=2)
    args.update(kwargs)
    with pytest.raises(ValueError, match=error):
        BatchIterator(**args)


def test_augment_rejects_bad_settings():
    with pytest.raises(ValueError, match="max_shift"):
        Augment(max_shift=-1)
    with pytest.raises(ValueError, match="max_shift"):
        Augment(max_shift=1.5)
    with pytest.raises(ValueError, match="max_rotation_degrees"):
        Augment(max_rotation_degrees=270)


@pytest.mark.parametrize("shape", [(3,), (28, 28, 1, 1, 1), ()])
def test_prepare_images_takes_a_batch_of_images_only(shape):
    """Found by trying: ``prepare_images([1, 2, 3])`` returned a (3,) array as if it were
    a batch of images."""
    with pytest.raises(ValueError) as info:
        prepare_images(np.zeros(shape, dtype=np.uint8))
    assert str(info.value) == (f"prepare_images takes a batch of images, (B, H, W) or "
                               f"(B, C, H, W), got shape {shape}")
