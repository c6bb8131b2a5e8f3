"""Every drawing function returns a ``Figure`` and leaves matplotlib's global state alone.

A library that calls ``matplotlib.use`` switches the backend of the caller's
whole process: in a notebook, later figures stop showing inline. So each
drawing function here runs under a backend that is not the test default, and
the backend (and pyplot's list of open figures) must be the same afterwards.
"""
import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from minicnn.models import tiny_cnn
from minicnn.studies import codes, features, gallery, invariance, segmentation, translation
from minicnn.training.reporting import plot_confusion, plot_learning_curves
from minicnn.viz import (FeatureEvolution, attribution_grid, conv_filters, feature_maps,
                         plot_evolution, plot_feature_maps, plot_filters, plot_images,
                         plot_top_patches, saliency, top_patches)


def drawings(rng):
    """``(name, draw)`` for every drawing function, each on small inputs."""
    model = tiny_cnn(seed=0).eval()
    images = rng.standard_normal((4, 1, 28, 28)).astype(np.float32)
    records = [dict(kind="step", step=s, loss=1.0 / s, train_acc=0.5) for s in (1, 2, 3)]
    records.append(dict(kind="epoch", step=3, loss=0.3, train_acc=0.6, test_loss=0.4,
                        test_acc=0.7))
    errors = gallery.Errors(np.array([0, 2]), np.array([1, 3]), np.array([7, 5]), 4)
    curve = translation.ShiftCurves("x", np.array([-1, 0, 1]), np.ones(3) / 2, np.ones(3),
                                    np.ones(3), np.zeros((3, 4), int))
    shifted = translation.shift_images(images[:1], 0, 1)
    moved = invariance.pooling_invariance(model, images[:1], shift=(0, 1))
    scene = rng.random((1, 1, 30, 30))
    cb = FeatureEvolution(0, epochs=(1,))
    cb(1, model)
    return [
        ("plot_learning_curves", lambda: plot_learning_curves(records)),
        ("plot_confusion", lambda: plot_confusion(np.eye(3, dtype=int), ["a", "b", "c"])),
        ("draw_gallery", lambda: gallery.draw_gallery(images, errors)),
        ("draw_translation", lambda: translation.draw_translation({"net": (curve, curve)})),
        ("draw_invariance", lambda: invariance.draw_invariance(images[0], shifted[0], moved)),
        ("draw_class_map", lambda: segmentation.draw_class_map(
            scene, np.zeros((30, 30), int), scene[0, 0])),
        ("draw_code_pca", lambda: codes.draw_code_pca(rng.random((6, 2)), np.arange(6) % 3)),
        ("draw_dense_features", lambda: features.draw_dense_features(
            features.analyze_dense_features(model, images[0]))),
        ("plot_filters", lambda: plot_filters(conv_filters(model, 0))),
        ("plot_feature_maps", lambda: plot_feature_maps(feature_maps(model, images[0]))),
        ("plot_top_patches", lambda: plot_top_patches(top_patches(model, 0, images, k=2))),
        ("plot_images", lambda: plot_images(images)),
        ("plot_evolution", lambda: plot_evolution(cb)),
        ("attribution_grid", lambda: attribution_grid(
            images[:2], [("saliency", saliency(model, images[:2], [0, 1]), {})])),
    ]


@pytest.fixture
def svg_backend():
    """A backend other than the tests' Agg, restored afterwards."""
    before = matplotlib.get_backend()
    matplotlib.use("svg")
    yield "svg"
    matplotlib.use(before)


def test_drawing_functions_return_figures_and_keep_the_backend(svg_backend, rng, tmp_path):
    import matplotlib.pyplot as plt
    open_figures = plt.get_fignums()
    for name, draw in drawings(rng):
        fig = draw()
        assert isinstance(fig, Figure), f"{name} returned {type(fig).__name__}, not a Figure"
        assert matplotlib.get_backend() == svg_backend, f"{name} changed the backend"
        assert plt.get_fignums() == open_figures, f"{name} opened a pyplot figure"


def test_drawing_functions_with_a_path_write_it(svg_backend, rng, tmp_path):
    path = tmp_path / "sub" / "confusion.png"       # the folder is made, the write is atomic
    fig = plot_confusion(np.eye(2, dtype=int), ["a", "b"], path)
    assert isinstance(fig, Figure) and path.read_bytes()[:4] == b"\x89PNG"
    assert [p.name for p in path.parent.iterdir()] == ["confusion.png"]   # no temporary left
    assert matplotlib.get_backend() == svg_backend
