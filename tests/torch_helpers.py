"""PyTorch twins of minicnn models, shared by the tests that compare with PyTorch.

Import it after ``pytest.importorskip("torch")``: this module imports torch.
"""
import numpy as np
import torch
from torch import nn

from minicnn import AvgPool2D, Conv2D, Dense, Dropout, Flatten, MaxPool2D, ReLU
from minicnn.backend import as_numpy


def torch_twin(model):
    """A ``torch.nn.Sequential`` with the same layers (fresh weights), in float64, eval mode.

    ReLUs become ``nn.ReLU`` modules (one per ReLU), which is what Captum's guided
    backprop and deconvnet look for when they override the ReLU gradients.
    """
    twins = []
    for layer in model.layers:
        c = layer.config()
        if isinstance(layer, (Conv2D, MaxPool2D, AvgPool2D)):
            twins.append(torch_layer(layer))
        elif isinstance(layer, Dense):
            twins.append(nn.Linear(c["in_features"], c["out_features"], bias=c["bias"]))
        else:
            twins.append({ReLU: nn.ReLU, Flatten: nn.Flatten, Dropout: nn.Dropout}[type(layer)]())
    return nn.Sequential(*twins).double().eval()


def torch_layer(layer):
    """The ``torch.nn`` twin of one conv or pooling layer, with every option (fresh weights)."""
    c = {k: tuple(v) if isinstance(v, list) else v for k, v in layer.config().items()}
    if isinstance(layer, Conv2D):
        return nn.Conv2d(c.pop("in_channels"), c.pop("out_channels"), **c).double()
    if isinstance(layer, MaxPool2D):
        return nn.MaxPool2d(**c)
    return nn.AvgPool2d(**c)


def torch_copy(model):
    """``torch_twin(model)`` holding ``model``'s weights (exchanged through ``state_dict``)."""
    twin = torch_twin(model)
    twin.load_state_dict({k: torch.from_numpy(v) for k, v in model.state_dict().items()})
    return twin


def t(a):
    """A float64 torch tensor from a NumPy or CuPy array."""
    return torch.from_numpy(np.ascontiguousarray(as_numpy(a), dtype=np.float64))
