"""Optimizers: SGD (with momentum / Nesterov), Adam and AdamW, as PyTorch defines them.

All update ``param.value`` in place from ``param.grad`` and skip frozen
parameters. In SGD and Adam ``weight_decay`` adds ``wd * w`` to the gradient
(an L2 penalty, which Adam then rescales); AdamW decays the weights directly
(``w -= lr * wd * w``, "decoupled", Loshchilov & Hutter 2019).
"""
from . import kernels
from .backend import as_numpy, device_of, get_array_module, to_device


class Optimizer:
    def __init__(self, params, lr):
        self.params = list(params)
        if lr <= 0:
            raise ValueError(f"{type(self).__name__}: lr must be > 0, got {lr!r}")
        self.lr = float(lr)
        self.steps = 0

    def zero_grad(self):
        for p in self.params:
            p.zero_grad()

    def trainable(self):
        return [(i, p) for i, p in enumerate(self.params) if p.requires_grad]

    # Buffers (momentum, Adam moments) are saved with checkpoints so that a
    # resumed run continues exactly where it stopped.
    def state_dict(self):
        return {"steps": self.steps,
                "buffers": {f"{name}.{i}": as_numpy(b).copy()
                            for name, bufs in self._buffers().items()
                            for i, b in bufs.items()}}

    def load_state_dict(self, state):
        self.steps = int(state["steps"])
        for name, bufs in self._buffers().items():
            bufs.clear()
            for key, value in state["buffers"].items():
                prefix, index = key.rsplit(".", 1)
                if prefix == name:
                    # a copy: steps update buffers in place and must not write into `state`
                    device = device_of(self.params[int(index)].value)
                    bufs[int(index)] = to_device(as_numpy(value).copy(), device)

    def _buffers(self):
        return {}


class SGD(Optimizer):
    """``buf = momentum * buf + g``; step ``g + momentum * buf`` (Nesterov) or ``buf``."""

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr)
        if nesterov and momentum <= 0:
            raise ValueError("SGD: nesterov=True needs momentum > 0")
        self.momentum, self.nesterov, self.weight_decay = momentum, nesterov, weight_decay
        self.velocity = {}

    def step(self):
        self.steps += 1
        for i, p in self.trainable():
            g = p.grad + self.weight_decay * p.value if self.weight_decay else p.grad
            if self.momentum:
                buf = self.velocity.get(i)
                buf = g.copy() if buf is None else self.momentum * buf + g
                self.velocity[i] = buf
                g = g + self.momentum * buf if self.nesterov else buf
            p.value -= self.lr * g

    def _buffers(self):
        return {"velocity": self.velocity}


class Adam(Optimizer):
    """Kingma & Ba 2015, with bias correction::

        m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g^2
        w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        self.betas, self.eps, self.weight_decay = tuple(betas), eps, weight_decay
        self.m, self.v = {}, {}

    def step(self):
        self.steps += 1
        b1, b2 = self.betas
        correction1, correction2 = 1 - b1 ** self.steps, 1 - b2 ** self.steps
        for i, p in self.trainable():
            g = p.grad + self.weight_decay * p.value if self.weight_decay else p.grad
            if i not in self.m:
                xp = get_array_module(p.value)
                self.m[i], self.v[i] = xp.zeros_like(p.value), xp.zeros_like(p.value)
            kernels.adam_update(p.value, g, self.m[i], self.v[i], self.lr / correction1,
                                b1, b2, self.eps, correction2)      # the formula above

    def _buffers(self):
        return {"m": self.m, "v": self.v}


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch's ``AdamW``; default ``weight_decay=0.01``)::

        w -= lr * weight_decay * w            (first, independent of the gradient's scale)
        then the Adam step of ``Adam`` on the plain gradient
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay=0.0)
        self.decoupled_weight_decay = float(weight_decay)

    def step(self):
        if self.decoupled_weight_decay:
            for _, p in self.trainable():
                p.value *= 1 - self.lr * self.decoupled_weight_decay
        super().step()
