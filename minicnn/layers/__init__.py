"""All layers; each writes its forward and backward pass by hand."""
from .activations import BACKWARD_RULES, ReLU, Softmax
from .base import LAYER_TYPES, Layer
from .branches import Concat, Inception
from .conv import Conv2D
from .dense import Dense, Dropout, Flatten
from .loss import SoftmaxCrossEntropy
from .pool import AvgPool2D, MaxPool2D, MaxUnpool2D
from .sequential import Sequential

__all__ = ["Layer", "LAYER_TYPES", "Conv2D", "MaxPool2D", "AvgPool2D", "MaxUnpool2D", "ReLU",
           "Softmax",
           "BACKWARD_RULES", "Dense", "Flatten", "Dropout", "SoftmaxCrossEntropy", "Sequential",
           "Concat", "Inception"]
