"""What a reader sees of a figure: every drawn text, where it lands, what it covers.

``layout_problems(fig)`` lists, in words, the texts that stick out of the figure
(cut off in a saved PNG), cover another axes (a title drawn over the panel above
it) or cover each other (crowded tick labels), and the legends drawn over a
curve's points. Used by tests/test_figure_layout.py.
"""
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg


def _axes_texts(ax):
    yield from (ax.title, ax._left_title, ax._right_title, ax.xaxis.label, ax.yaxis.label,
                ax.xaxis.offsetText, ax.yaxis.offsetText)
    for axis in (ax.xaxis, ax.yaxis) if ax.axison else ():
        for tick in axis._update_ticks():          # the ticks inside the view, as drawn
            yield tick.label1
            yield tick.label2
    yield from ax.texts
    legend = ax.get_legend()
    if legend is not None:
        yield from legend.get_texts()
        yield legend.get_title()


def _figure_texts(fig):
    yield from fig.texts                            # the suptitle is among them
    for sub in getattr(fig, "subfigs", []):
        yield from _figure_texts(sub)


def drawn_texts(fig):
    """``(renderer, [(text, owner axes or None, window extent)])`` of the visible texts."""
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    found = [(t, ax) for ax in fig.axes if ax.get_visible() for t in _axes_texts(ax)]
    found += [(t, None) for t in _figure_texts(fig)]
    seen, texts = set(), []
    for t, ax in found:
        if id(t) not in seen and t.get_visible() and t.get_text().strip():
            seen.add(id(t))
            texts.append((t, ax, t.get_window_extent(renderer)))
    return renderer, texts


def _overlap(a, b, tol=1.0):
    """Boxes that share more than ``tol`` pixels each way."""
    return a.x0 + tol < b.x1 and b.x0 + tol < a.x1 and a.y0 + tol < b.y1 and b.y0 + tol < a.y1


def layout_problems(fig):
    renderer, texts = drawn_texts(fig)
    page, problems = fig.bbox, []
    axes = [(ax, ax.get_window_extent(renderer)) for ax in fig.axes if ax.get_visible()]
    for t, owner, box in texts:
        if box.x0 < page.x0 - 1 or box.y0 < page.y0 - 1 or box.x1 > page.x1 + 1 \
                or box.y1 > page.y1 + 1:
            problems.append(f"{t.get_text()!r} sticks out of the figure")
        problems += [f"{t.get_text()!r} covers the axes titled {ax.get_title()!r}"
                     for ax, ax_box in axes if ax is not owner and _overlap(box, ax_box)]
    for i, (t, _, box) in enumerate(texts):
        problems += [f"{t.get_text()!r} and {u.get_text()!r} overlap"
                     for u, _, other in texts[i + 1:] if _overlap(box, other)]
    return problems + _legends_over_points(fig, renderer)


def _legends_over_points(fig, renderer):
    """A legend inside an axes that hides a piece of one of its lines (points along
    each segment are checked, 20 a segment)."""
    problems = []
    for ax in fig.axes:
        legend = ax.get_legend()
        if legend is None:
            continue
        box = legend.get_window_extent(renderer)
        for line in ax.get_lines():
            ends = line.get_transform().transform(line.get_xydata())
            t = np.linspace(0, 1, 20)[:, None, None]
            points = (ends[:-1] + t * (ends[1:] - ends[:-1])).reshape(-1, 2) \
                if len(ends) > 1 else ends
            if any(box.contains(x, y) for x, y in points):
                problems.append(f"the legend of {ax.get_title()!r} covers {line.get_label()!r}")
    return problems
