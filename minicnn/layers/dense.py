"""Dense (fully connected), Flatten and Dropout.

Dense, with ``x (N, in_features)`` and ``W (out_features, in_features)``::

    y  = x @ W.T + b                     (N, out_features)
    dW = g.T @ x      db = sum_n g       dx = g @ W
"""
import math

import numpy as np

from .. import kernels
from ..backend import device_of, get_array_module
from ..init import initial_weights
from ..parameter import Parameter
from ..arguments import whole_number
from .base import Layer


class Dense(Layer):
    """``Dense(in_features, out_features, bias=True)``, as ``torch.nn.Linear``.

    Shapes: ``x (N, in_features)`` -> ``y (N, out_features)``; ``weight (out_features,
    in_features)``, ``bias (out_features,)``.
    Forward: ``y = x @ W.T + b``.
    Backward: ``dx = g @ W``; ``dW = g.T @ x``, ``db = sum_n g``.
    Kept for backward: ``x``.
    """

    param_names = ("weight", "bias")
    cache_names = ("x",)

    def __init__(self, in_features, out_features, bias=True, init="he", seed=None):
        super().__init__()
        self.in_features = whole_number("Dense", "in_features", in_features)
        self.out_features = whole_number("Dense", "out_features", out_features)
        self.init = init
        rng = seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)
        w, b = initial_weights(init, (out_features, in_features), in_features, out_features, rng)
        self.weight = Parameter(w)
        self.bias = Parameter(b) if bias else None

    def forward(self, x):
        """``x (N, in_features)`` -> ``(N, out_features)``."""
        self.check_input(x, 2, f"(N, {self.in_features})")
        if x.shape[1] != self.in_features:
            raise ValueError(f"{self!r} expects input of shape (N, {self.in_features}), "
                             f"got {tuple(x.shape)}")
        self.x = x
        y = kernels.matmul(x, self.weight.value.T)          # x @ W.T (on the CPU: threads)
        if self.bias is not None:
            y += self.bias.value
        return y

    def backward(self, grad_out):
        """``grad_out (N, out_features)`` -> ``grad_x (N, in_features)``."""
        self.check_grad(grad_out)
        if self.weight.requires_grad:       # frozen (or probing): no dW to compute
            # g.T @ x, written into the gradient's own array if zero_grad cleared it
            dw = kernels.matmul(grad_out.T, self.x, out=self.weight.cleared_grad())
            self.weight.accumulate(dw)
        if self.bias is not None:
            self.bias.accumulate(grad_out.sum(axis=0))
        return kernels.matmul(grad_out, self.weight.value)                  # g @ W

    def output_shape(self, input_shape):
        if tuple(input_shape) != (self.in_features,):
            self.refuse_shape(input_shape, f"({self.in_features},)")
        return (self.out_features,)

    def macs(self, input_shape):
        return self.in_features * self.out_features

    def config(self):
        return dict(in_features=self.in_features, out_features=self.out_features,
                    bias=self.bias is not None)


class Flatten(Layer):
    """``Flatten()``, as ``torch.nn.Flatten``.

    Shapes: ``x (N, C, H, W)`` -> ``y (N, C H W)``, in C order, so dense weights transfer
    to and from PyTorch on NCHW.
    Forward: ``y = x.reshape(N, -1)``.
    Backward: ``dx = g.reshape(x.shape)``.
    Kept for backward: ``x``'s shape.
    """

    def forward(self, x):
        self.check_input(x, expected="(N, ...) with at least 2 axes")
        if x.ndim < 2:
            raise ValueError(f"{self!r} expects input of shape (N, ...) with at least 2 axes, "
                             f"got {tuple(x.shape)}")
        self.x_shape = x.shape
        return x.reshape(x.shape[0], -1)

    def backward(self, grad_out):
        self.check_grad(grad_out)
        return grad_out.reshape(self.x_shape)

    def output_shape(self, input_shape):
        return (math.prod(input_shape),)


class Dropout(Layer):
    """``Dropout(p=0.5, seed=None)``, as ``torch.nn.Dropout`` (inverted dropout).

    Shapes: any ``x`` -> ``y`` of its shape.
    Forward: in training ``y = x * mask / (1 - p)`` with ``mask ~ Bernoulli(1 - p)``;
    in eval mode ``y = x``.
    Backward: ``dx = g * mask / (1 - p)`` in training, ``dx = g`` in eval mode (every
    explanation runs in it).
    Kept for backward: the mask.

    The mask is drawn where ``x`` is. On the CPU, from the NumPy generator
    ``generator`` seeded by ``seed``: a seeded run repeats bit for bit. On the GPU,
    by cuRAND (a Philox generator, ``device_rng``) seeded for each batch with one
    number drawn from ``generator``: no host-to-device copy, and the masks still
    follow the seed and the checkpointed state of ``generator`` (a seeded GPU run,
    and a resumed one, draws the same masks), though not the CPU's masks.
    """
    cache_names = ("scale",)

    def __init__(self, p=0.5, seed=None):
        super().__init__()
        if not 0.0 <= p < 1.0:
            raise ValueError(f"Dropout p must be in [0, 1), got {p!r}")
        self.p = float(p)
        self.generator = seed if isinstance(seed, np.random.Generator) \
            else np.random.default_rng(seed)
        self.device_rng = None          # cuRAND's, made at the first GPU batch

    def forward(self, x):
        self.check_input(x)
        if not self.training or self.p == 0.0:
            self.scale = None
            return x
        keep = self._uniform(x) >= self.p
        self.scale = keep.astype(x.dtype) / x.dtype.type(1.0 - self.p)
        return x * self.scale

    def _uniform(self, x):
        """Uniform float32 numbers in [0, 1) of ``x``'s shape, on ``x``'s device."""
        if device_of(x) == "cpu":
            return self.generator.random(x.shape, dtype=np.float32)
        xp = get_array_module(x)
        if self.device_rng is None:
            self.device_rng = xp.random.RandomState(
                method=xp.cuda.curand.CURAND_RNG_PSEUDO_PHILOX4_32_10)  # cheap to seed
        self.device_rng.seed(int(self.generator.integers(2 ** 63)))     # a host number
        return self.device_rng.random_sample(x.shape, dtype=xp.float32)

    def backward(self, grad_out):
        self.check_grad(grad_out)
        return grad_out if self.scale is None else grad_out * self.scale

    def config(self):
        return dict(p=self.p)
