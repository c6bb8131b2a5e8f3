"""All layers; each writes its forward and backward pass by hand."""
from .activations import BACKWARD_RULES, ReLU, Softmax
from .base import LAYER_TYPES, Layer, register_layer
from .branches import Concat, Inception
from .conv import Conv2D
from .dense import Dense, Dropout, Flatten
from .loss import SoftmaxCrossEntropy
from .pool import AvgPool2D, MaxPool2D
from .sequential import Sequential

for _cls in (Conv2D, MaxPool2D, AvgPool2D, ReLU, Softmax, Dense, Flatten, Dropout, Sequential,
             Concat, Inception):
    register_layer(_cls)      # what load_model can rebuild; a user adds own layers the same way

__all__ = ["Layer", "LAYER_TYPES", "register_layer", "Conv2D", "MaxPool2D", "AvgPool2D", "ReLU",
           "Softmax", "BACKWARD_RULES", "Dense", "Flatten", "Dropout", "SoftmaxCrossEntropy",
           "Sequential", "Concat", "Inception"]
