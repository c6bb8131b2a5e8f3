"""Figures a reader can read: no text cut off, over another panel or over other text;
colour bars where colours carry numbers; class labels on class scores; readable sizes.

Each drawing function of tests/test_figures_backend.py, plus the figures the README and
the notebooks draw, on lenet's real shapes (an untrained lenet: layout needs no training).
"""
import numpy as np
import pytest
from figure_layout import drawn_texts, layout_problems
from test_figures_backend import drawings

from minicnn.models import lenet
from minicnn.studies import faithfulness, sanity, translation
from minicnn.training.reporting import plot_learning_curves
from minicnn.viz import (attribution_grid, conv_filters, feature_maps, plot_feature_maps,
                         plot_filters)


@pytest.fixture(scope="module")
def net():
    return lenet(seed=0).eval()


@pytest.fixture
def digit(rng):
    return rng.standard_normal((1, 28, 28)).astype(np.float32)


def colour_bars(fig):
    return [ax for ax in fig.axes if getattr(ax, "_colorbar", None) is not None]


def test_no_figure_has_clipped_or_overlapping_text(rng, net, digit):
    steps = [dict(kind="step", step=5 * (i + 1), loss=loss, train_acc=0.9)
             for i, loss in enumerate(np.geomspace(2.2, 0.15, 12))]      # less than a decade
    steps.append(dict(kind="epoch", step=63, loss=0.2, train_acc=0.9, test_loss=0.2, test_acc=0.9))
    figures = drawings(rng) + [
        ("plot_learning_curves, loss 2.2 to 0.15", lambda: plot_learning_curves(steps)),
        ("plot_filters, lenet conv1", lambda: plot_filters(conv_filters(net, 0))),
        ("plot_feature_maps, lenet", lambda: plot_feature_maps(feature_maps(net, digit),
                                                               image=digit, max_channels=16))]
    found = {name: layout_problems(draw()) for name, draw in figures}
    assert not any(found.values()), {name: p[:3] for name, p in found.items() if p}


def test_sanity_figure_keeps_its_legend_off_the_curves():
    """Twelve methods whose correlations drop from 1 to levels spread over [-0.4, 1] and
    stay there: a legend inside a panel hides some of the curves (as in
    docs/images/sanity.png)."""
    methods = [f"method {m}" for m in range(12)]
    stages = ["trained", "up to 10 Dense", "up to 7 Dense", "up to 3 Conv2D", "up to 0 Conv2D"]
    levels = np.linspace(-0.4, 1.0, 12)[:, None, None]
    curves = np.where(np.arange(5)[None, :, None] == 0, 1.0, levels) * np.ones((1, 1, 4))
    test = sanity.Randomization("cascading", methods, stages, [[]] * 5, curves, curves)
    assert not layout_problems(sanity.draw_sanity(test, test))
    data = sanity.DataRandomization(methods, 10, {}, {}, curves[:, 1], curves[:, 1])
    fig = sanity.draw_sanity(test, test, data)
    assert not layout_problems(fig)
    assert fig.get_size_inches()[0] <= 11      # reads at a page's width (it was 15.6 inches)


def test_translation_figure_keeps_its_legend_off_the_curves():
    """Three classifiers whose p(true) falls from 0.8-1 at no shift to 0.1-0.3 at five
    pixels, p(winner) level at 0.33-0.9: the legend of six lines inside a panel sat on
    the falling curves (docs/images/translation_lenet.png); each panel says what its
    y axis is."""
    s = np.arange(-5, 6)

    def pair(top, width, floor, win):
        p = floor + (top - floor) * np.exp(-(s / width) ** 2)
        return tuple(translation.ShiftCurves(axis, s, p, np.maximum(p, win), p,
                                             np.zeros((11, 1), int)) for axis in "xy")
    curves = {"lenet": pair(0.99, 5, 0.3, 0.9), "softmax on pixels": pair(0.85, 2.5, 0.1, 0.75),
              "random forest on pixels": pair(0.79, 2.5, 0.13, 0.33)}
    fig = translation.draw_translation(curves, curves)
    assert not layout_problems(fig)
    panels = [ax for ax in fig.axes if ax.get_lines()]
    assert len(panels) == 4 and all(ax.get_ylabel() for ax in panels)


def test_faithfulness_figure_keeps_its_legends_off_the_curves(net):
    """Fourteen deletion curves falling from 1 to 0.1 (fast for the good maps, slowly for
    a random order) and insertion curves rising as the mirror image: a legend inside a
    panel hid the random order's curve and Grad-CAM's (docs/images/faithfulness.png)."""
    names = list(sanity.method_suite(net)) + ["random", "Sobel edges"]
    fractions = np.linspace(0, 1, 21)
    power = np.geomspace(12, 0.3, len(names))[:, None, None]      # fast .. slower than linear
    deletion = 0.1 + 0.9 * (1 - fractions) ** power * np.ones((1, 3, 1))
    study = faithfulness.Faithfulness(names, fractions, deletion, 1.1 - deletion,
                                      np.zeros(3, int))
    assert not layout_problems(faithfulness.draw_faithfulness(study))


def test_feature_maps_have_colour_bars_labelled_classes_and_no_blank_gap(net, digit):
    fig = plot_feature_maps(feature_maps(net, digit), image=digit, max_channels=16,
                            class_names=list("abcdefghij"))
    panels = [ax for ax in fig.axes if ax not in colour_bars(fig)]
    assert len(panels) == 1 + len(net.layers)                          # the input, each layer
    width, height = fig.get_size_inches()
    tops = sorted((ax.get_position().y1 * height, ax.get_position().y0 * height) for ax in panels)
    gaps = [upper_bottom - top for (top, _), (_, upper_bottom) in zip(tops, tops[1:])]
    assert max(gaps) < 0.7, f"a blank gap of {max(gaps):.1f} inches between panels"
    box = panels[0].get_position()                                      # the input
    assert box.width * box.height < 0.08, "the input takes too much of the figure"
    assert len(colour_bars(fig)) == len(panels) - 1                     # all but the class bars
    scores = panels[-1]
    assert [t.get_text() for t in scores.get_xticklabels()] == list("abcdefghij")
    assert scores.get_xlabel() and scores.get_ylabel()


def test_filter_figure_is_readable_in_a_notebook(net):
    fig = plot_filters(conv_filters(net, 0))
    drawn_texts(fig)                                   # draws it: the layout is done then
    image_axes = fig.axes[0]
    width_px = image_axes.get_position().width * fig.get_size_inches()[0] * 72   # notebook dpi
    assert width_px >= 400, f"32 filters drawn {width_px:.0f} px wide at 72 dpi"
    assert len(colour_bars(fig)) == 1


def test_attribution_grid_has_a_colour_bar_per_column_or_per_panel(rng):
    images = rng.standard_normal((3, 1, 8, 8))
    drop = rng.uniform(0, 0.02, (3, 1, 8, 8))                # e.g. occlusion: a small drop of p
    drop[1] *= 1e-3                                          # a confident network: 2e-5 at most
    fig = attribution_grid(images, [("signed", images, {}),
                                    ("abs", images, {"sign": "absolute"}),
                                    ("drop of p", drop, {"colorbar": "panel", "outlier_perc": 0})])
    bars = colour_bars(fig)
    assert len(bars) == 2 + 3
    per_panel = [b for b in bars if b.get_position().width < b.get_position().height]
    assert len(per_panel) == 3
    for bar, d in zip(per_panel, drop):                         # in the map's own units
        assert bar.get_ylim()[1] == pytest.approx(d.max())
    assert not layout_problems(fig)
    tiny = per_panel[1].yaxis                                   # each tick says its value:
    assert not tiny.get_offset_text().get_text()               # no "1e-5" above the bar
    assert all("e-05" in t.get_text() or t.get_text() == "0" for t in tiny.get_ticklabels())


def test_propagation_figure_reads_at_a_page_width(rng, net):
    """docs/images/propagation.png: twelve methods on five digits. In one row of 13
    panels the figure was 19.5 inches wide, its titles and colour-bar labels shrunk to
    4-5 points on a page; in blocks of six methods it fits a page at about full size.
    Each column keeps its colour bar, ticked at the ends of the scale and at 0."""
    names = list(sanity.method_suite(net))
    images = rng.standard_normal((5, 1, 28, 28))
    columns = [(name, rng.standard_normal((5, 1, 28, 28)), {}) for name in names]
    labels = [f"label {d}, predicted {d}" for d in range(5)]
    fig = attribution_grid(images, columns, row_labels=labels, cell=1.5, wrap=6)
    assert fig.get_size_inches()[0] <= 11
    assert not layout_problems(fig)
    bars = colour_bars(fig)
    assert len(bars) == len(names)
    for bar in bars:
        assert [t.get_text() for t in bar.xaxis.get_ticklabels()] == ["-1", "0", "1"]
    titles = [ax.get_title() for ax in fig.axes if ax.get_title()]
    assert titles.count("image") == 2 and set(names) <= set(titles)
