"""The explorer's views of the backward pass, as images and Markdown (as ``views`` makes
the others): the step-through of one digit (``viz.step_through``: what each layer sent
down, and its check) and where LRP, DeepLIFT and integrated gradients keep their total,
layer by layer (``viz.relevance_by_layer``, drawn by ``viz.draw_relevance_by_layer``).

Signals are drawn as the feature maps are (``views.signal_grid``: every channel, one
scale per layer, red positive, blue negative; a dense layer's vector as one cell per
unit). DeepLIFT and integrated gradients start from the blank canvas, as in the
attribution maps; integrated gradients with the same steps and quadrature as there, so
the first row of its table is the sum of its map.
"""
import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg

from .. import viz
from ..backend import as_numpy
from ..viz.backward_plots import check_failed, check_text
from ..viz.probe import as_model_input
from ..viz.backward import propagate
from ..viz.stepthrough import LRP_METHODS, METHODS, backward_method
from . import views

RULES = METHODS                 # the backward view's choices: "gradient", "guided", "lrp-0", ...
LRP_CHOICES = LRP_METHODS       # the conservation view's LRP rules and composites
IG_QUADRATURE = "trapezoid"     # viz.integrated_gradients' default, as the attribution maps use


def backward_view(model, x, target=None, rule="gradient", width=320):
    """``(panels, table)`` of ``viz.step_through`` of ``x (1, C, H, W)`` for ``target``
    (a class; ``None``: the predicted one) under ``rule`` (one of ``RULES``).

    ``panels``: ``[(caption, RGB image)]``, one per layer in forward order: the signal
    the layer sent down (its ``grad_in``), captioned with the layer and its check.
    ``table``: Markdown, a row per layer: the rule it used, its backward formula, the
    norm of what it sent down, and its float64 finite-difference check (the plain
    gradient) or its distance from the plain gradient (a swapped rule); a check above
    ``viz.backward_plots.CHECK_TOLERANCE`` is marked wrong.
    """
    x = as_model_input(model, x)
    records = viz.step_through(model, x, target, rule, baseline=views.blank_canvas(model, x))
    panels = [(f"{r['index']} {short_name(r)}: {check_text(r)}",
               views.signal_grid(r["grad_in"][0], width)[0]) for r in records]
    rows = ["| layer | rule | backward | norm sent down | check |", "|---|---|---|---:|---|"]
    for r in records:
        formula = r["formula"].replace("|", "\\|")
        wrong = " **wrong**" if check_failed(r) else ""
        rows.append(f"| {r['index']} {short_name(r)} | {r['rule']} | `{formula}` | "
                    f"{np.linalg.norm(r['grad_in'][0]):.3g} | {check_text(r)}{wrong} |")
    return panels, "\n".join(rows)


def short_name(record):
    """The layer's class name from a record's ``name`` (its repr)."""
    return record["name"].split("(")[0]


def conservation(model, x, target=None, lrp_method="lrp-epsilon"):
    """What ``conservation_view`` draws, for one digit ``x (1, C, H, W)``: ``(names, maps,
    table, residuals)``; ``names`` of the three methods (LRP ``lrp_method``, one of
    ``LRP_CHOICES``; DeepLIFT; integrated gradients), their ``maps (1, C, H, W)``,
    ``table (K + 2, 3)`` of ``viz.relevance_by_layer`` (a column per method) and the
    ``viz.identity_residuals`` of all three in one dict."""
    x = as_model_input(model, x)
    blank = views.blank_canvas(model, x)
    target = viz.resolve_target(model, x, target)
    options = {lrp_method: {}, "deeplift": dict(baseline=blank),
               "integrated-gradients": dict(baseline=blank, steps=views.IG_STEPS,
                                            quadrature=IG_QUADRATURE)}
    names = [lrp_method.replace("lrp-", "LRP-", 1), "DeepLIFT", "integrated gradients"]
    method = backward_method(model, x, lrp_method)
    ig = views.gradient_methods(model, blank)["integrated gradients"]
    maps = [propagate(model, x, target, method.rule_for, start=method.start)[0],
            viz.deeplift(model, x, target, baseline=blank), ig(x, target)]
    table = np.hstack([viz.relevance_by_layer(model, x, target, m, **o)
                       for m, o in options.items()])
    residuals = {}
    for name, (m, o) in zip(names, options.items()):
        for identity, r in viz.identity_residuals(model, x, target, m, **o).items():
            residuals[identity if m in LRP_CHOICES else f"{name}: {identity}"] = r
    return names, [as_numpy(a) for a in maps], table, residuals


def conservation_view(model, x, target=None, lrp_method="lrp-epsilon", scale=4):
    """``(maps, plot)`` of ``conservation``: ``maps`` ``[(title, RGB image)]`` of the
    three methods, as the attribution maps are drawn; ``plot`` an RGB image of
    ``viz.draw_relevance_by_layer``, each method's totals at every layer's input as a
    line, and their identity residuals beside it."""
    x = as_model_input(model, x)
    target = viz.resolve_target(model, x, target)
    names, maps, table, residuals = conservation(model, x, target, lrp_method)
    labels = [f"{i} {type(layer).__name__}"
              for i, layer in enumerate(model.layers[:len(table) - 1])]
    fig = viz.draw_relevance_by_layer(table, labels, residuals, names=names,
                                      title=f"the total at each layer's input, class "
                                            f"{int(as_numpy(target.where[1])[0])}")
    images = [(name, views.enlarge(views.signed_rgb(viz.normalize_attribution(a[0])), scale))
              for name, a in zip(names, maps)]
    return images, figure_rgb(fig)


def figure_rgb(fig):
    """A matplotlib ``Figure`` drawn into an RGB uint8 image ``(H, W, 3)`` (its own Agg
    canvas: pyplot and the backend are left alone)."""
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


__all__ = ["backward_view", "conservation", "conservation_view", "figure_rgb", "short_name",
           "RULES", "LRP_CHOICES"]
