"""All layers; each writes its forward and backward pass by hand."""
from .activations import LeakyReLU, ReLU, Softmax
from .base import LAYER_TYPES, Layer, register_layer
from .branches import Concat, Inception
from .conv import Conv2D
from .dense import Dense, Dropout, Flatten
from .global_pool import GlobalAvgPool2D
from .loss import SoftmaxCrossEntropy
from .norm import BatchNorm1D, BatchNorm2D
from .pool import AvgPool2D, MaxPool2D, MaxUnpool2D
from .sequential import Sequential

for _cls in (Conv2D, MaxPool2D, AvgPool2D, ReLU, Softmax, Dense, Flatten, Dropout, Sequential,
             Concat, Inception, BatchNorm1D, BatchNorm2D, GlobalAvgPool2D, LeakyReLU):
    register_layer(_cls)      # what load_model can rebuild; a user adds own layers the same way
# MaxUnpool2D is not registered: its forward takes the switches too, so no model holds it

__all__ = ["Layer", "LAYER_TYPES", "register_layer", "Conv2D", "MaxPool2D", "AvgPool2D",
           "MaxUnpool2D", "ReLU", "Softmax", "Dense", "Flatten", "Dropout",
           "SoftmaxCrossEntropy", "Sequential", "Concat", "Inception", "BatchNorm1D",
           "BatchNorm2D", "GlobalAvgPool2D", "LeakyReLU"]
