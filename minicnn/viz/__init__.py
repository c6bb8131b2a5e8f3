"""Looking inside a trained CNN.

Attribution ("which pixels matter?") is the ordinary backward pass with the
ReLU's backward rule swapped (see docs/backward-rules.md):

- ``saliency``, ``deconvnet``, ``guided_backprop``, ``smoothgrad``,
  ``integrated_gradients``, ``grad_cam``, ``grad_cam_pp``, ``guided_grad_cam``, ``occlusion``;
  targets are a class (its pre-softmax logit) or a ``Unit(layer, channel, position)``.
- the rule family (``minicnn.viz.rules``, a rule per layer): ``gradient_x_input``, ``lrp``
  (rules and composites), ``deeplift``, ``excitation_backprop``; their identities are
  in ``minicnn.viz.checks``.
- the backward pass itself: ``step_through`` (per layer: the signal in and out, the
  backward formula, a float64 check of that layer's backward or the rule's distance from
  the gradient) and ``relevance_by_layer`` (the total relevance at every layer: where
  LRP, DeepLIFT and integrated gradients keep or lose it); ``draw_step_through``,
  ``draw_relevance_by_layer``.

Units ("what did each unit learn?"):

- ``receptive_fields`` / ``receptive_box``, ``conv_filters``, ``feature_maps``,
  ``top_patches``, ``maximize`` (activation maximization, optionally with
  Laplacian-pyramid normalization), ``deepdream``, ``FeatureEvolution``.

Drawing is kept apart from computing: ``draw_attribution``, ``attribution_grid``
and the ``plot_*`` functions take the arrays above and write figures.
"""
from .attribution import deconvnet, guided_backprop, integrated_gradients, saliency, smoothgrad
from .backward import backprop, propagate
from .backward_plots import draw_relevance_by_layer, draw_step_through
from .cam import grad_cam, grad_cam_pp, guided_grad_cam, upsample_bilinear
from .conservation import identity_residuals, relevance_by_layer
from .evolution import FeatureEvolution, Snapshot
from .figures import plot_evolution, plot_feature_maps, plot_filters, plot_images, plot_top_patches
from .maximize import (Dream, Maximized, deepdream, gaussian_blur, laplacian_normalize,
                       laplacian_pyramid, maximize, reconstruct, resize)
from .occlusion import occlusion
from .plotting import attribution_grid, draw_attribution, normalize_attribution
from .propagation import deeplift, excitation_backprop, gradient_x_input, lrp, lrp_rule_map
from .receptive import Box, Field, field_box, receptive_box, receptive_fields
from .stepthrough import backward_formula, step_through
from .targets import Unit, class_probabilities, resolve_target, target_value
from .units import FeatureMap, TopPatches, conv_filters, feature_maps, top_patches

__all__ = [
    "saliency", "deconvnet", "guided_backprop", "smoothgrad", "integrated_gradients",
    "grad_cam", "grad_cam_pp", "guided_grad_cam", "upsample_bilinear", "occlusion",
    "gradient_x_input", "lrp", "lrp_rule_map", "deeplift", "excitation_backprop", "propagate",
    "step_through", "backward_formula", "relevance_by_layer", "identity_residuals",
    "draw_step_through", "draw_relevance_by_layer",
    "Unit", "backprop", "class_probabilities", "resolve_target", "target_value",
    "normalize_attribution", "draw_attribution", "attribution_grid",
    "receptive_fields", "receptive_box", "field_box", "Field", "Box",
    "conv_filters", "feature_maps", "FeatureMap", "top_patches", "TopPatches",
    "maximize", "Maximized", "deepdream", "Dream", "gaussian_blur", "resize",
    "laplacian_pyramid", "reconstruct", "laplacian_normalize",
    "FeatureEvolution", "Snapshot",
    "plot_filters", "plot_feature_maps", "plot_top_patches", "plot_images", "plot_evolution",
]
