"""The ``Layer`` base class: what every layer has besides forward and backward.

A layer keeps what its backward pass needs (its "cache") on itself, so the
caller only ever writes ``y = layer.forward(x)`` and
``grad_x = layer.backward(grad_y)``. Shapes in docstrings put the batch first.
"""
import numpy as np

from ..backend import check_device, to_device

LAYER_TYPES = {}  # class name -> class, to rebuild models from saved files


class Layer:
    """Base class. Subclasses write ``forward``, ``backward`` and, if they
    have weights, register them as ``Parameter`` attributes in ``param_names``.
    """

    param_names = ()      # attribute names of the Parameters, in state_dict order
    buffer_names = ()     # arrays saved in state_dict but not trained (BatchNorm's statistics)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        LAYER_TYPES[cls.__name__] = cls

    def __init__(self):
        self.training = True

    # -- the two methods every layer writes ------------------------------------
    def forward(self, x):
        raise NotImplementedError

    def backward(self, grad_out):
        raise NotImplementedError

    def __call__(self, x):
        return self.forward(x)

    # -- structure -------------------------------------------------------------
    def children(self):
        """Direct sub-layers (containers override this)."""
        return []

    def modules(self):
        """This layer and every layer inside it, depth first."""
        yield self
        for child in self.children():
            yield from child.modules()

    def named_parameters(self, prefix=""):
        """``(name, Parameter)`` pairs with PyTorch's names (``"weight"``, ``"0.bias"``)."""
        for name in self.param_names:
            param = getattr(self, name)
            if param is not None:
                yield prefix + name, param

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def named_buffers(self, prefix=""):
        """``(name, array)`` pairs of the state that is saved but not trained
        (BatchNorm's running statistics), named like the parameters."""
        for name, layer, attr in self.buffer_slots(prefix):
            yield name, getattr(layer, attr)

    def buffer_slots(self, prefix=""):
        """``(name, layer, attribute)`` of every buffer here and in the sub-layers
        (containers name their children by index, as PyTorch does)."""
        for attr in self.buffer_names:
            yield prefix + attr, self, attr
        for i, child in enumerate(self.children()):
            yield from child.buffer_slots(f"{prefix}{i}.")

    def train(self, mode=True):
        for m in self.modules():
            m.training = mode
        return self

    def eval(self):
        return self.train(False)

    def to(self, device):
        """Move every parameter to ``"cpu"`` or ``"gpu"``; returns ``self``."""
        check_device(device)
        for p in self.parameters():
            p.to(device)
        for m in self.modules():
            for name in m.buffer_names:
                setattr(m, name, to_device(getattr(m, name), device))
        return self

    def astype(self, dtype):
        """Cast every parameter (``"float64"`` for gradient checks)."""
        for p in self.parameters():
            p.astype(np.dtype(dtype))
        for m in self.modules():
            for name in m.buffer_names:
                value = getattr(m, name)
                if value.dtype.kind == "f":        # counters stay integers
                    setattr(m, name, value.astype(np.dtype(dtype)))
        return self

    def freeze(self):
        """Stop training this layer's parameters (transfer learning)."""
        for p in self.parameters():
            p.requires_grad = False
        return self

    def unfreeze(self):
        for p in self.parameters():
            p.requires_grad = True
        return self

    # -- shapes, cost and saving -------------------------------------------------
    def output_shape(self, input_shape):
        """Per-example output shape for a per-example ``input_shape``."""
        return tuple(input_shape)

    def macs(self, input_shape):
        """Multiply-accumulates for one example of ``input_shape``."""
        return 0

    def config(self):
        """Constructor arguments, enough to rebuild the layer (JSON-friendly)."""
        return {}

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.config().items())
        return f"{type(self).__name__}({args})"

    # -- input checks ----------------------------------------------------------
    def check_input(self, x, ndim, expected):
        """Raise a ``ValueError`` naming this layer and the expected shape."""
        if getattr(x, "ndim", None) != ndim:
            got = getattr(x, "shape", type(x).__name__)
            raise ValueError(f"{self!r} expects input of shape {expected}, got {got}")
