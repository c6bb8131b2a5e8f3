"""A trainable array and the gradient that backward passes add into."""
from .backend import get_array_module, to_device


class Parameter:
    """``value`` and ``grad`` have the same shape, dtype and device.

    ``backward`` *adds* into ``grad`` (so gradients from several uses sum up);
    the optimizer's ``zero_grad()`` clears it. A frozen parameter
    (``requires_grad = False``) ignores gradients and is skipped by optimizers.

    ``zero_grad`` only notes that ``grad`` is cleared: the first gradient added after
    it is copied in (or written in place: ``cleared_grad``), instead of writing zeros and
    adding to them (two passes over the memory fewer a step: benchmarks/README.md, issue
    28); ``grad`` read before that is zeros, as written.
    """

    def __init__(self, value):
        self.value = value
        self._grad = get_array_module(value).zeros_like(value)
        self._cleared = False           # zero_grad called, nothing added since
        self.requires_grad = True

    @property
    def grad(self):
        if self._cleared:
            self._grad[...] = 0
            self._cleared = False
        return self._grad

    @grad.setter
    def grad(self, value):
        self._grad, self._cleared = value, False

    @property
    def shape(self):
        return self.value.shape

    @property
    def size(self):
        return int(self.value.size)

    def cleared_grad(self):
        """``grad``'s own array while ``zero_grad`` has cleared it (its numbers stale), for
        a layer to write its whole gradient into and then ``accumulate`` that array: no
        product made apart and copied in (a big Dense layer's weight gradient:
        benchmarks/README.md, issue 28); ``None`` otherwise (add as usual)."""
        return self._grad if self._cleared and self.requires_grad else None

    def accumulate(self, grad):
        if not self.requires_grad:
            return
        if self._cleared and grad is self._grad:    # written in place (cleared_grad)
            self._cleared = False
        elif self._cleared:             # zeros + grad is grad: copied (cast, broadcast)
            get_array_module(self._grad).copyto(self._grad, grad)
            self._cleared = False
        else:
            self._grad += grad

    def zero_grad(self):
        self._cleared = True

    def to(self, device):
        self.value = to_device(self.value, device)
        self.grad = to_device(self.grad, device)

    def astype(self, dtype):
        self.value = self.value.astype(dtype)
        self.grad = self.grad.astype(dtype)

    def __repr__(self):
        return f"Parameter(shape={tuple(self.shape)}, dtype={self.value.dtype})"
