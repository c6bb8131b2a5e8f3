"""A trainable array and the gradient that backward passes add into."""
from .backend import get_array_module, to_device


class Parameter:
    """``value`` and ``grad`` have the same shape, dtype and device.

    ``backward`` *adds* into ``grad`` (so gradients from several uses sum up);
    the optimizer's ``zero_grad()`` clears it. A frozen parameter
    (``requires_grad = False``) ignores gradients and is skipped by optimizers.
    """

    def __init__(self, value):
        self.value = value
        self.grad = get_array_module(value).zeros_like(value)
        self.requires_grad = True

    @property
    def shape(self):
        return self.value.shape

    @property
    def size(self):
        return int(self.value.size)

    def accumulate(self, grad):
        if self.requires_grad:
            self.grad += grad

    def zero_grad(self):
        self.grad[...] = 0

    def to(self, device):
        self.value = to_device(self.value, device)
        self.grad = to_device(self.grad, device)

    def astype(self, dtype):
        self.value = self.value.astype(dtype)
        self.grad = self.grad.astype(dtype)

    def __repr__(self):
        return f"Parameter(shape={tuple(self.shape)}, dtype={self.value.dtype})"
