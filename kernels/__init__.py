"""Hot-path kernels for convolution and pooling (installed as ``minicnn.kernels``).

Layers call the functions exported here; each picks the fastest available
implementation for the array it is given. ``reference`` holds the plain-loop
versions that tests hold every fast path equal to.

Kernels import nothing from ``minicnn.layers``: they work on bare arrays.
"""
from . import reference, vectorized
from .geometry import output_hw, output_size, pair
from .vectorized import (avgpool_backward, avgpool_forward, col2im, im2col,
                         maxpool_backward, maxpool_forward)

__all__ = ["reference", "vectorized", "pair", "output_hw", "output_size", "im2col", "col2im",
           "maxpool_forward", "maxpool_backward", "avgpool_forward", "avgpool_backward"]
