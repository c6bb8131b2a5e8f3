"""minicnn.explore without a browser: preprocessing, every view function, the scan, the command."""
import os
import sys

import numpy as np
import pytest

from minicnn import models, save_model, viz
from minicnn.backend import as_numpy, to_device
from minicnn.data import prepare_images
from minicnn.explore import INSTALL_HINT, preprocess, views
from minicnn.explore.preprocess import mnist_style, model_input
from minicnn.explore.scan import Scans
from minicnn.viz.probe import as_model_input


def centre_of_mass(a):
    a = a.astype(np.float64)
    r = np.arange(a.shape[0])
    return (a.sum(1) * r).sum() / a.sum(), (a.sum(0) * r).sum() / a.sum()


def bbox(a):
    rows, cols = np.nonzero(a)
    return rows.max() - rows.min() + 1, cols.max() - cols.min() + 1


# -- preprocessing ----------------------------------------------------------------
def canvas_with_bar(top, left, height, width, size=280):
    """White paper with a black rectangle, as a Sketchpad composite (RGBA uint8)."""
    c = np.full((size, size, 4), 255, dtype=np.uint8)
    c[top:top + height, left:left + width, :3] = 0
    return c


def test_ink_reads_dark_on_light_and_light_on_dark():
    gray = np.zeros((30, 30))
    gray[10:20, 12:15] = 1.0
    light_paper = (255 * (1 - gray)).astype(np.uint8)
    rgba = np.dstack([np.repeat(light_paper[..., None], 3, 2), np.full((30, 30), 255, np.uint8)])
    for image in (gray, light_paper, rgba, {"composite": rgba}):
        np.testing.assert_allclose(preprocess.ink(image), gray)
    transparent = np.zeros((30, 30, 4), dtype=np.uint8)          # nothing drawn: paper
    transparent[10:20, 12:15, 3] = 255                            # black strokes
    np.testing.assert_allclose(preprocess.ink(transparent), gray)


def test_mnist_style_fits_20_keeps_aspect_and_centres_mass():
    digit = mnist_style(canvas_with_bar(200, 30, 60, 30))        # 2:1, far off centre
    assert digit.dtype == np.uint8 and digit.shape == (28, 28)
    h, w = bbox(digit)
    assert h == 20 and w in (10, 11)                               # anti-aliased edge: +1
    cy, cx = centre_of_mass(digit)
    assert abs(cy - 14) <= 0.5 and abs(cx - 14) <= 0.5             # MNIST's centre, measured
    assert digit.max() == 255


def test_mnist_style_of_a_blank_canvas_is_blank():
    assert not mnist_style(np.full((280, 280, 4), 255, dtype=np.uint8)).any()


def test_model_input_is_the_training_normalization():
    digit = np.arange(28 * 28, dtype=np.int64).reshape(28, 28) % 256
    np.testing.assert_array_equal(model_input(digit), prepare_images(digit.astype(np.uint8)[None]))


@pytest.fixture(scope="module")
def mnist_model(request):
    """tiny_cnn trained for one epoch on 1,000 MNIST images (seconds), and the test set."""
    root = os.environ.get("MINICNN_DATA")
    if not root or not os.path.isdir(os.path.join(root, "mnist")):
        pytest.skip("MINICNN_DATA with mnist/ is not set: real-data test skipped "
                    "(CI sets it to ../shared/data)")
    from minicnn.data import load_mnist
    from minicnn.training.config import TrainConfig
    from minicnn.training.trainer import Trainer
    train, test = load_mnist(download=False)
    run = request.getfixturevalue("tmp_path_factory").mktemp("run")
    trainer = Trainer(TrainConfig(model="tiny_cnn", epochs=1, train_subset=1000, test_subset=100,
                                  batch_size=32, lr=3e-3), train, test, run, progress=False)
    trainer.fit()
    return trainer.model.eval(), test


def predict(model, digits):
    return as_numpy(model.forward(prepare_images(np.asarray(digits)))).argmax(axis=1)


def test_a_centred_mnist_digit_keeps_its_class(mnist_model):
    model, (x, _) = mnist_model
    digits = x[:100]
    again = np.stack([mnist_style(d) for d in digits])
    drawn = np.stack([mnist_style(np.kron(255 - d, np.ones((10, 10), np.uint8)))  # on a canvas
                      for d in digits])
    # MNIST digits are already MNIST-style: nearly unchanged, and so is their class
    assert np.abs(again.astype(int) - digits).mean() < 3
    before = predict(model, digits)
    assert (predict(model, again) == before).mean() >= 0.97
    assert (predict(model, drawn) == before).mean() >= 0.9


# -- views ------------------------------------------------------------------------
@pytest.fixture
def small(device):
    """tiny_cnn (seed 0) and one MNIST-style input of a drawn bar, on ``device``."""
    model = models.tiny_cnn(seed=0).to(device).eval()
    digit = mnist_style(canvas_with_bar(60, 120, 150, 40))
    return model, digit, to_device(model_input(digit), device)


def test_signed_rgb_is_blue_white_red():
    rgb = views.signed_rgb(np.array([-1.0, 0.0, 1.0]))
    assert rgb.dtype == np.uint8 and rgb.shape == (3, 3)
    blue, white, red = rgb
    assert blue[2] > blue[0] and red[0] > red[2] and white.min() >= 250


def test_grid_maps_pixels_back_to_units():
    maps = np.zeros((5, 3, 4, 3), dtype=np.uint8)
    image, grid = views.grid_image(maps, scale=6, columns=2, gap=2)
    assert image.shape == (3 * (3 * 6 + 2) - 2, 2 * (4 * 6 + 2) - 2, 3)
    for channel, y, x in [(0, 0, 0), (1, 2, 3), (4, 1, 2)]:
        r, c = divmod(channel, 2)
        px, py = c * (4 * 6 + 2) + x * 6 + 3, r * (3 * 6 + 2) + y * 6 + 3
        assert grid.unit_at(px, py) == (channel, y, x)
    assert grid.unit_at(4 * 6, 0) is None                         # on the gap
    assert grid.unit_at(4 * 6 + 2 + 1, 2 * (3 * 6 + 2) + 1) is None  # no 6th channel


def test_forward_probabilities_and_layer_maps(small):
    model, _, x = small
    maps = views.forward(model, x)
    assert len(maps) == len(model.layers)
    probs = views.probabilities(model, maps, list("abcdefghij"))
    expected = as_numpy(viz.class_probabilities(model, x))[0]
    np.testing.assert_allclose(list(probs.values()), expected, rtol=1e-5)
    conv, grid = views.layer_maps(maps[0])                       # (4, 24, 24)
    assert conv.dtype == np.uint8 and conv.ndim == 3 and grid.n == 4 and grid.h == 24
    dense, grid = views.layer_maps(maps[-1])                     # (10,)
    assert grid.n == 10 and (grid.h, grid.w) == (1, 1) and dense.shape[2] == 3


def test_filters_image(small):
    model = small[0]
    image = views.filters_image(model, 0)
    assert image.dtype == np.uint8 and image.shape[2] == 3
    with pytest.raises(ValueError, match="not a conv"):
        views.filters_image(model, 1)


def test_attribution_maps_are_viz_maps_in_one_colour_convention(small):
    model, _, x = small
    panels = views.attribution_maps(model, x, target=3)
    titles = [t for t, _ in panels]
    for method in ("saliency", "deconvnet", "guided backprop", "Grad-CAM", "guided Grad-CAM",
                   "integrated gradients", "SmoothGrad"):
        assert any(t.startswith(method) for t in titles), method
    for _, image in panels:
        assert image.shape == (112, 112, 3) and image.dtype == np.uint8
    expected = views.signed_rgb(viz.normalize_attribution(viz.saliency(model, x, 3)[0]))
    np.testing.assert_array_equal(panels[0][1][::4, ::4], expected)
    title, occ = views.occlusion_map(model, x, target=3)
    assert title.startswith("occlusion") and occ.shape == (112, 112, 3)


def test_grad_cam_uses_the_last_conv_relu(small):
    assert views.grad_cam_layer(small[0]) == 4                   # conv, relu, pool, conv, RELU


def test_unit_views_outline_the_receptive_field(small):
    model, digit, x = small
    field, proj = views.unit_views(model, x, digit, 3, 2, (1, 2), scale=8)
    assert field.shape == proj.shape == (224, 224, 3)
    box = viz.receptive_box(model, 3, 1, 2)
    assert (field[box.top * 8, box.left * 8] == (255, 140, 0)).all()
    assert not (field[box.top * 8 - 3, box.left * 8 + 3] == (255, 140, 0)).all()
    whole, _ = views.unit_views(model, x, digit, 8, 5, None, scale=8)  # a dense unit
    assert (whole[0, 100] == (255, 140, 0)).all()


def test_top_patch_images_and_the_cached_scan(small, tmp_path):
    model = small[0]
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, size=(40, 28, 28)).astype(np.uint8)
    test = (train[:20], rng.integers(0, 10, size=20))
    scans = Scans(model, train, test, tmp_path, batch_size=16, progress=False).start()
    scans.thread.join(120)
    assert scans.error is None and scans.progress()[2] == "done"
    assert scans.progress() == (40, 40, "done")       # images of the last step, not x layers
    x_test = as_model_input(model, prepare_images(test[0]))
    predictions = as_numpy(viz.class_probabilities(model, x_test)).argmax(1)
    assert [i for i, _, _ in scans.misclassified] == list(np.flatnonzero(predictions != test[1]))
    found = scans.patches(3)
    direct = viz.top_patches(model, 3, train, k=9, project=True, prepare=prepare_images)
    np.testing.assert_array_equal(found.image_index, direct.image_index)
    crops, projections = views.top_patch_images(found, channel=2)
    assert crops.shape == projections.shape and crops.dtype == np.uint8
    files = [f for f in os.listdir(tmp_path) if not f.startswith(".")]   # not the lock file
    assert len(files) == 1 + len(views.spatial_layers(model))
    again = Scans(model, train, test, tmp_path, progress=False).start()   # from the cache
    again.thread.join(60)
    np.testing.assert_array_equal(again.patches(3).crops, found.crops)


# -- the command ------------------------------------------------------------------
def test_explore_without_gradio_says_how_to_install(tmp_path, monkeypatch, capsys):
    from minicnn.cli.command import main
    save_model(models.tiny_cnn(seed=0), tmp_path / "model.npz")
    monkeypatch.setitem(sys.modules, "gradio", None)              # import gradio fails
    assert main(["explore", str(tmp_path), "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert err.strip() == INSTALL_HINT and "pip install -e .[explore]" in err


def test_explore_names_a_missing_model_file(tmp_path, capsys):
    pytest.importorskip("gradio", reason="the explore extra (gradio) is not installed")
    from minicnn.cli.command import main
    assert main(["explore", str(tmp_path / "nowhere"), "--no-browser"]) == 1
    err = capsys.readouterr().err
    assert "no model.npz" in err and "minicnn train --out" in err and len(err.splitlines()) == 1
