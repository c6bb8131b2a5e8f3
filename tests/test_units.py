"""Filters, feature maps and the top-k patch scan."""
import numpy as np
import pytest

from minicnn import Conv2D, MaxPool2D, ReLU, Sequential, models
from minicnn.backend import as_numpy
from minicnn.viz.attribution import deconvnet
from minicnn.viz.targets import Unit
from minicnn.viz.units import conv_filters, feature_maps, top_patches


def _small_model(device):
    model = Sequential([Conv2D(1, 3, 3, padding=1, seed=1), ReLU(), MaxPool2D(2),
                        Conv2D(3, 4, 3, seed=2), ReLU()], input_shape=(1, 10, 10))
    return model.astype("float64").to(device)


def test_filters_and_feature_maps(device, rng):
    model = models.tiny_cnn().to(device)
    w = conv_filters(model, 3)
    assert isinstance(w, np.ndarray) and w.shape == (8, 4, 5, 5)
    np.testing.assert_array_equal(w, as_numpy(model[3].weight.value))
    with pytest.raises(ValueError, match="not a conv layer"):
        conv_filters(model, 1)
    image = rng.standard_normal((1, 28, 28)).astype(np.float32)
    maps = feature_maps(model, image)
    assert [m.shape for m in maps][:3] == [(4, 24, 24)] * 2 + [(4, 12, 12)]
    assert maps[-1].shape == (10,) and maps[0].name == "0 Conv2D"
    np.testing.assert_array_equal(maps[1].activation, np.maximum(maps[0].activation, 0))
    logits = as_numpy(model.forward(model_input(image[None], device)))[0]
    np.testing.assert_allclose(maps[-1].activation, logits, rtol=1e-6)


def model_input(x, device):
    from minicnn.backend import to_device
    return to_device(x, device)


def _brute_top(model, layer, images, k):
    """Top-k per channel by full sort of every image's spatial maximum."""
    act = as_numpy(model[:layer + 1].forward(model_input(images, model.device)))
    peak = act.reshape(*act.shape[:2], -1).max(axis=2).T             # (C, N)
    return np.argsort(-peak, axis=1, kind="stable")[:, :k], np.sort(peak, axis=1)[:, ::-1][:, :k]


@pytest.mark.parametrize("layer", [0, 2, 4])
def test_one_batch_equals_many(device, rng, layer):
    model = _small_model(device)
    images = rng.standard_normal((23, 1, 10, 10))
    one = top_patches(model, layer, images, k=5, batch_size=100)
    many = top_patches(model, layer, images, k=5, batch_size=3)
    for name in ("image_index", "position", "crops"):
        np.testing.assert_array_equal(getattr(one, name), getattr(many, name))
    # the engine's matmul may round the last bit differently for another batch size
    np.testing.assert_allclose(one.values, many.values, rtol=1e-12)
    index, values = _brute_top(model, layer, images, 5)
    np.testing.assert_array_equal(one.image_index, index)
    np.testing.assert_allclose(one.values, values)
    channels = 4 if layer == 4 else 3
    assert one.crops.shape[:2] == (channels, 5) and one.values.shape == (channels, 5)


def _uint8_model():
    return Sequential([Conv2D(1, 3, 3, padding=1, seed=1), ReLU(), MaxPool2D(2)],
                      input_shape=(1, 12, 12))


def test_prepare_per_batch_equals_prepared_data_set(tmp_path, rng):
    from minicnn.data import prepare_images
    model = _uint8_model()
    raw = rng.integers(0, 256, size=(50, 12, 12), dtype=np.uint8)
    stored = np.lib.format.open_memmap(tmp_path / "images.npy", "w+", np.uint8, raw.shape)
    stored[:] = raw
    whole = top_patches(model, 2, prepare_images(raw), k=4, batch_size=100, project=True)
    for images in (raw, stored):
        top = top_patches(model, 2, images, k=4, batch_size=7, project=True,
                          prepare=prepare_images)
        for name in ("image_index", "position", "crops", "projections"):
            np.testing.assert_array_equal(getattr(top, name), getattr(whole, name))
        assert top.crops.dtype == np.float32 and top.crops.shape[:2] == (3, 4)


def test_scan_memory_does_not_grow_with_n(rng):
    """uint8 images are prepared one batch at a time: the scan's extra Python-allocated
    memory (tracemalloc's peak, NumPy arrays included) is the same for 1,000 and 8,000."""
    import tracemalloc

    from minicnn.data import prepare_images
    model = _uint8_model()
    images = rng.integers(0, 256, size=(8000, 12, 12), dtype=np.uint8)

    def peak(n):
        tracemalloc.start()
        try:
            top_patches(model, 2, images[:n], k=3, batch_size=100, prepare=prepare_images)
            return tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()

    peak(100)                                   # warm-up: first-call caches
    small, large = peak(1000), peak(8000)
    as_float32 = images.size * 4                # 4.6 MB: all 8,000 converted at once
    assert large - small < as_float32 / 10, (small, large)


def test_position_and_crop(device, rng):
    model = _small_model(device)
    images = rng.standard_normal((7, 1, 10, 10))
    top = top_patches(model, 2, images, k=3, batch_size=2, channels=[1])
    act = as_numpy(model[:3].forward(model_input(images, device)))
    for j in range(3):
        n, (y, x) = top.image_index[0, j], top.position[0, j]
        assert act[n, 1, y, x] == top.values[0, j] == act[n, 1].max()
        # pool unit (y, x): 4x4 field starting at (2y - 1, 2x - 1), zero-padded at the border
        padded = np.pad(images[n, 0], 1)
        np.testing.assert_array_equal(top.crops[0, j, 0], padded[2 * y:2 * y + 4, 2 * x:2 * x + 4])


def test_ties_and_duplicates_count_once(device):
    # one conv channel that copies the input: every image's max is its brightest pixel
    model = Sequential([Conv2D(1, 1, 1)], input_shape=(1, 6, 6)).astype("float64").to(device)
    model[0].weight.value[...] = 1
    model[0].bias.value[...] = 0
    images = np.zeros((6, 1, 6, 6))
    images[0, 0, 1:3, 1:3] = 5.0         # four tied maxima in one image: counts once, first wins
    images[3] = images[0]                # a duplicate image: a different image, same value
    images[2, 0, 4, 4] = 7.0
    images[5, 0, 0, 5] = 5.0             # ties with 0 and 3: lower index first
    for batch_size in (1, 4, 6):
        top = top_patches(model, 0, images, k=4, batch_size=batch_size)
        assert top.image_index[0].tolist() == [2, 0, 3, 5]
        assert top.values[0].tolist() == [7.0, 5.0, 5.0, 5.0]
        assert top.position[0].tolist() == [[4, 4], [1, 1], [1, 1], [0, 5]]


def test_deconvnet_projection_follows_switches(device, rng):
    model = _small_model(device)
    images = rng.standard_normal((5, 1, 10, 10))
    top = top_patches(model, 2, images, k=2, channels=[0], project=True)
    assert top.projections.shape == top.crops.shape
    # at each image's strongest position, as the scan found it
    proj = as_numpy(deconvnet(model, model_input(images[top.image_index[0]], device), Unit(2, 0)))
    assert proj.shape == (2, 1, 10, 10) and np.isfinite(proj).all() and np.abs(proj).sum() > 0
    for j, (y, x) in enumerate(top.position[0]):
        # a single unit behind a 2x2 max pool and a 3x3 conv (padding 1): the
        # projection is the conv filter around the switch, inside the unit's field
        rows, cols = np.nonzero(proj[j, 0])
        assert rows.min() >= 2 * y - 1 and rows.max() <= 2 * y + 2
        assert cols.min() >= 2 * x - 1 and cols.max() <= 2 * x + 2
        assert np.abs(proj[j]).sum() == pytest.approx(np.abs(top.projections[0, j]).sum())
    for p in model.parameters():          # visualization leaves the gradients alone
        assert not as_numpy(p.grad).any()


def test_feature_evolution_snapshots_chosen_epochs(device):
    from minicnn.viz.evolution import FeatureEvolution
    model = _small_model(device)
    cb = FeatureEvolution(0, epochs=(0, 2), maximize_channels=(1,), maximize_kwargs=dict(steps=3))
    for epoch in range(4):
        cb(epoch, model)
        model[0].weight.value += 1.0          # "training" changes the weights
    assert [s.epoch for s in cb.snapshots] == [0, 2]
    np.testing.assert_allclose(cb.snapshots[1].filters - cb.snapshots[0].filters, 2.0)
    assert cb.snapshots[0].images.shape == (1, 1, 10, 10)
    cb(2, model)                               # a repeated epoch replaces its snapshot
    assert [s.epoch for s in cb.snapshots] == [0, 2]
    np.testing.assert_allclose(cb.snapshots[1].filters - cb.snapshots[0].filters, 4.0)


def test_figures_write_pngs(tmp_path, rng):
    from minicnn.viz import feature_figure, figures
    from minicnn.viz.evolution import FeatureEvolution
    model = _small_model("cpu")
    images = rng.standard_normal((6, 1, 10, 10))
    cb = FeatureEvolution(3, epochs=(1,))
    cb(1, model)
    paths = [tmp_path / name for name in ("f0.png", "f3.png", "maps.png", "top.png",
                                          "images.png", "evolution.png")]
    figs = [figures.plot_filters(conv_filters(model, 0), paths[0]),
            figures.plot_filters(conv_filters(model, 3), paths[1]),
            figures.plot_feature_maps(feature_maps(model, images[0]), paths[2], image=images[0]),
            figures.plot_top_patches(top_patches(model, 2, images, k=2, project=True), paths[3]),
            figures.plot_images(images[:3], paths[4], titles="abc"),
            figures.plot_evolution(cb, paths[5])]
    assert all(type(fig).__name__ == "Figure" for fig in figs)
    for path in paths:
        with open(path, "rb") as f:
            assert f.read(8) == b"\x89PNG\r\n\x1a\n"
    assert feature_figure._map_title("4 ReLU", (64, 14, 14), 32) == \
        "4 ReLU  (64, 14, 14), 32 of 64 channels shown"
    assert feature_figure._map_title("4 ReLU", (8, 14, 14), 32) == "4 ReLU  (8, 14, 14)"
    assert feature_figure._map_title("7 Dense", (1024,), 32) == "7 Dense  (1024,)"
    with pytest.raises(ValueError, match="no snapshots"):
        figures.plot_evolution(FeatureEvolution(0), tmp_path / "empty.png")
