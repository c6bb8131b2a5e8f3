"""A minicnn ``Sequential``'s PyTorch twin: the same layers, options and weights.

``torch_model(model)`` walks ``model.layers`` and builds a ``torch.nn.Sequential`` with
one module per layer, each from the layer's ``config()`` (what ``save_model`` writes, so
nothing is read from private attributes):

=================  ============================================================
minicnn            PyTorch
=================  ============================================================
Conv2D             Conv2d: stride, padding (ints or ``"same"``), dilation,
                   groups, padding_mode, bias
Dense              Linear
BatchNorm1D / 2D   BatchNorm1d / 2d: the same eps, momentum (``None``: the
                   cumulative average), affine
MaxPool2D          MaxPool2d: stride, padding, dilation, ceil_mode
AvgPool2D          AvgPool2d: stride, padding, ceil_mode, count_include_pad,
                   divisor_override
GlobalAvgPool2D    AdaptiveAvgPool2d(1) then Flatten, as one item
ReLU, LeakyReLU    ReLU, LeakyReLU(negative_slope)
Flatten, Dropout   Flatten, Dropout(p)
=================  ============================================================

The state_dict names match by design (parameters and BatchNorm's buffers are named by
layer index on both sides), so the weights, running statistics and
``num_batches_tracked`` are copied with one strict ``load_state_dict``. A layer with no
counterpart (``Inception``, ``Softmax``) is a ``ValueError`` naming it.
"""
import numpy as np

try:
    import torch
except ImportError:
    torch = None


def _conv(cfg):
    padding = cfg["padding"]
    return torch.nn.Conv2d(cfg["in_channels"], cfg["out_channels"], tuple(cfg["kernel_size"]),
                           tuple(cfg["stride"]),
                           padding if isinstance(padding, str) else tuple(padding),
                           dilation=tuple(cfg.get("dilation", (1, 1))),
                           groups=cfg.get("groups", 1), bias=cfg["bias"],
                           padding_mode=cfg.get("padding_mode", "zeros"))


def _batchnorm(module):
    def build(cfg):
        return module(cfg["num_features"], eps=cfg["eps"], momentum=cfg["momentum"],
                      affine=cfg["affine"])
    return build


def _maxpool(cfg):
    return torch.nn.MaxPool2d(tuple(cfg["kernel_size"]), tuple(cfg["stride"]),
                              tuple(cfg["padding"]), dilation=tuple(cfg.get("dilation", (1, 1))),
                              ceil_mode=cfg.get("ceil_mode", False))


def _avgpool(cfg):
    return torch.nn.AvgPool2d(tuple(cfg["kernel_size"]), tuple(cfg["stride"]),
                              tuple(cfg["padding"]), ceil_mode=cfg.get("ceil_mode", False),
                              count_include_pad=cfg.get("count_include_pad", True),
                              divisor_override=cfg.get("divisor_override"))


def _builders():
    nn = torch.nn
    return {
        "Conv2D": _conv,
        "Dense": lambda c: nn.Linear(c["in_features"], c["out_features"], bias=c["bias"]),
        "BatchNorm2D": _batchnorm(nn.BatchNorm2d),
        "BatchNorm1D": _batchnorm(nn.BatchNorm1d),
        "MaxPool2D": _maxpool,
        "AvgPool2D": _avgpool,
        "GlobalAvgPool2D": lambda c: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten()),
        "ReLU": lambda c: nn.ReLU(),
        "LeakyReLU": lambda c: nn.LeakyReLU(c["negative_slope"]),
        "Flatten": lambda c: nn.Flatten(),
        "Dropout": lambda c: nn.Dropout(c["p"]),
    }


def torch_module(layer):
    """The PyTorch module of one minicnn layer, built from its ``config()``."""
    kind, builders = type(layer).__name__, _builders()
    if kind not in builders:
        raise ValueError(f"no PyTorch twin for {kind} (twin.py knows "
                         f"{', '.join(sorted(builders))})")
    return builders[kind](layer.config())


def torch_model(model):
    """``torch.nn.Sequential`` with the same layers, weights and buffers as ``model``, in
    the dtype of ``model``'s weights (float32 or float64) and its training mode."""
    net = torch.nn.Sequential(*(torch_module(layer) for layer in model.layers))
    state = model.state_dict()
    floats = [v.dtype for v in state.values() if v.dtype.kind == "f"]
    if floats and floats[0] == np.float64:
        net = net.double()
    net.load_state_dict({k: torch.from_numpy(np.ascontiguousarray(v)) for k, v in state.items()})
    return net.train(model.training)
