"""Attribution plotting: the normalization by hand, and a PNG written headless."""
import numpy as np
import pytest

from minicnn.backend import as_numpy
from minicnn.viz.plotting import attribution_grid, draw_attribution, normalize_attribution


def test_signed_maps_are_centred_on_zero(backend):
    attr = backend.asarray([[[-4.0, 0.0], [1.0, 2.0]]])      # (C, H, W) with C = 1
    got = normalize_attribution(attr, "all", outlier_perc=0)
    np.testing.assert_allclose(got, [[-1.0, 0.0], [0.25, 0.5]])  # scaled by max |a| = 4
    np.testing.assert_allclose(normalize_attribution(attr, "positive", 0), [[0, 0], [0.5, 1]])
    np.testing.assert_allclose(normalize_attribution(attr, "negative", 0), [[1, 0], [0, 0]])
    np.testing.assert_allclose(normalize_attribution(attr, "absolute", 0), [[1, 0], [.25, .5]])
    np.testing.assert_array_equal(normalize_attribution(np.zeros((3, 2, 2))), np.zeros((2, 2)))


def test_channels_are_summed_and_outliers_clipped():
    ramp = np.arange(100) / 100                                # 0.00, 0.01, ..., 0.99
    ramp[99] = 1000.0                                          # one outlier
    attr = np.stack([ramp.reshape(1, 100), np.zeros((1, 100))])  # 2 channels, summed
    got = normalize_attribution(attr, "all", outlier_perc=2)
    # 98th percentile of 100 sorted values: position 0.98 * 99 = 97.02, between 0.97 and 0.98
    scale = 0.97 + 0.02 * 0.01
    np.testing.assert_allclose(got[0, 10], 0.10 / scale)
    assert got[0, 98] == 1.0 and got[0, 99] == 1.0             # beyond the scale: clipped
    np.testing.assert_allclose(normalize_attribution(np.array([[-4.0, 1.0]]), scale=2.0),
                               [[-1.0, 0.5]])                  # clipped at -1 too
    with pytest.raises(ValueError, match="sign"):
        normalize_attribution(attr, "both")


def test_figure_written_as_png(tmp_path, backend):
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    rng = np.random.default_rng(0)
    images = backend.asarray(rng.standard_normal((2, 1, 8, 8)))
    maps = backend.asarray(rng.standard_normal((2, 1, 8, 8)))
    path = tmp_path / "attr.png"
    fig = attribution_grid(images, [("signed", maps, {}),
                                    ("abs", maps, {"sign": "absolute"}),
                                    ("overlay", maps, {"method": "overlay", "sign": "positive"})],
                           path=str(path), row_labels=["a", "b"])
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and path.stat().st_size > 1000
    shown = draw_attribution(fig.axes[1], as_numpy(maps[0]), sign="all")
    assert shown.get_clim() == (-1.0, 1.0)                    # diverging, centred on 0
    with pytest.raises(ValueError, match="overlay"):
        draw_attribution(fig.axes[1], maps[0], method="overlay")
