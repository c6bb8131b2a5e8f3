"""Optimizers: SGD (with momentum / Nesterov), Adam and AdamW, as PyTorch defines them.

All update ``param.value`` in place from ``param.grad`` and skip frozen
parameters. In SGD and Adam ``weight_decay`` adds ``wd * w`` to the gradient
(an L2 penalty, which Adam then rescales); AdamW decays the weights directly
(``w -= lr * wd * w``, "decoupled", Loshchilov & Hutter 2019).
"""
import numpy as np

from . import kernels
from .arguments import finite_number
from .backend import as_numpy, device_of, get_array_module, to_device
from .parameter import Parameter


class Optimizer:
    def __init__(self, params, lr):
        owner = type(self).__name__
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{owner} got no parameters to train")
        for i, p in enumerate(self.params):
            if not isinstance(p, Parameter):
                raise ValueError(f"{owner} params[{i}] is a {type(p).__name__}, not a minicnn "
                                 f"Parameter (pass model.parameters())")
        self.lr = finite_number(owner, "lr", lr, above=0)
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

    def load_state_dict(self, state, entry_prefix=""):
        """Take ``steps`` and the buffers of ``state_dict()``, each checked first against
        the parameter it belongs to (``ValueError`` naming the first that does not fit):
        a buffer of another shape or dtype would reach the update kernels, which trust
        their arguments' shapes (a short Adam buffer is written past its end).
        ``entry_prefix``: how a file names the buffers, for the messages ("optimizer/")."""
        steps, given = state["steps"], dict(state["buffers"])
        if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
            raise ValueError(f"optimizer steps must be a whole number >= 0, got {steps!r}")
        # after the first step, every trained parameter has each of the buffers
        trained = [i for i, _ in self.trainable()] if steps else []
        expected = {f"{name}.{i}": i for name in self._buffers() for i in trained}
        who = f"{type(self).__name__} after {steps} steps"
        for key in sorted(set(given) ^ set(expected)):
            entry = repr(entry_prefix + key)
            raise ValueError(f"optimizer buffer {entry} is missing: {who} has one per trained "
                             f"parameter" if key in expected else
                             f"optimizer buffer {entry} does not belong to {who}")
        for key, value in given.items():
            self._check_buffer(key, entry_prefix + key, as_numpy(value),
                               self.params[expected[key]].value)
        self.steps = steps
        for name, bufs in self._buffers().items():
            bufs.clear()
            for i in trained:
                # a copy: steps update buffers in place and must not write into `state`
                bufs[i] = to_device(as_numpy(given[f"{name}.{i}"]).copy(),
                                    device_of(self.params[i].value))

    def _check_buffer(self, key, entry, value, param):
        if value.shape != tuple(param.shape) or value.dtype != param.dtype:
            raise ValueError(f"optimizer buffer {entry!r} is {value.dtype} {value.shape}, but "
                             f"its parameter is {param.dtype} {tuple(param.shape)}")
        if not bool(np.isfinite(value).all()):
            raise ValueError(f"optimizer buffer {entry!r} holds NaN or infinite values")

    def _buffers(self):
        return {}


class SGD(Optimizer):
    """``buf = momentum * buf + g``; step ``g + momentum * buf`` (Nesterov) or ``buf``."""

    def __init__(self, params, lr, momentum=0.0, nesterov=False, weight_decay=0.0):
        super().__init__(params, lr)
        momentum = finite_number("SGD", "momentum", momentum, at_least=0)
        weight_decay = finite_number("SGD", "weight_decay", weight_decay, at_least=0)
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
        return {"velocity": self.velocity} if self.momentum else {}


class Adam(Optimizer):
    """Kingma & Ba 2015, with bias correction::

        m = b1 m + (1 - b1) g          v = b2 v + (1 - b2) g^2
        w -= lr * (m / (1 - b1^t)) / (sqrt(v / (1 - b2^t)) + eps)
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        super().__init__(params, lr)
        owner = type(self).__name__
        if not isinstance(betas, (tuple, list)) or len(betas) != 2:
            raise ValueError(f"{owner} betas must be a pair (beta1, beta2), got {betas!r}")
        self.betas = tuple(finite_number(owner, f"betas[{i}]", b, at_least=0, below=1)
                           for i, b in enumerate(betas))
        self.eps = finite_number(owner, "eps", eps, at_least=0)
        self.weight_decay = finite_number(owner, "weight_decay", weight_decay, at_least=0)
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

    def _check_buffer(self, key, entry, value, param):
        super()._check_buffer(key, entry, value, param)
        if key.startswith("v.") and bool((value < 0).any()):
            raise ValueError(f"optimizer buffer {entry!r} holds negative values: Adam's v is "
                             f"a mean of squares")


class AdamW(Adam):
    """Adam with decoupled weight decay (PyTorch's ``AdamW``; default ``weight_decay=0.01``)::

        w -= lr * weight_decay * w            (first, independent of the gradient's scale)
        then the Adam step of ``Adam`` on the plain gradient
    """

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.01):
        super().__init__(params, lr, betas, eps, weight_decay=0.0)
        self.decoupled_weight_decay = finite_number("AdamW", "weight_decay", weight_decay,
                                                     at_least=0)

    def step(self):
        if self.decoupled_weight_decay:
            for _, p in self.trainable():
                p.value *= 1 - self.lr * self.decoupled_weight_decay
        super().step()
