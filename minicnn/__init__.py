"""minicnn: a convolutional-network engine written from scratch for learning.

Every layer writes its forward and backward pass by hand; the same code runs
on NumPy (CPU) and CuPy (GPU), chosen from the arrays themselves.
"""
import importlib.util

if importlib.util.find_spec("minicnn.kernels") is None:
    # the folder kernels/ becomes minicnn.kernels only when installed (pyproject.toml)
    raise ImportError("minicnn is not installed: run `pip install -e .` in the repository root "
                      "(the kernels/ folder is installed as minicnn.kernels, so importing "
                      "minicnn from the source tree alone cannot find it)")

from . import backend, gradcheck, init, kernels, layers, models, optim
from .files.model_files import load_model, load_weights, save_model
from .kernels import use_impl
from .layers import (AvgPool2D, Conv2D, Dense, Dropout, Flatten, Layer, MaxPool2D, ReLU,
                     Sequential, Softmax, SoftmaxCrossEntropy, register_layer)
from .optim import SGD, Adam
from .parameter import Parameter

__version__ = "0.1.0"

__all__ = ["backend", "gradcheck", "init", "kernels", "layers", "models", "optim",
           "Layer", "register_layer", "Conv2D", "MaxPool2D", "AvgPool2D", "ReLU", "Softmax",
           "Dense", "Flatten", "Dropout", "SoftmaxCrossEntropy", "Sequential", "SGD", "Adam",
           "Parameter", "save_model", "load_model", "load_weights", "use_impl"]
