"""Learning-rate schedules, as ``torch.optim.lr_scheduler`` defines them.

A schedule owns a step counter ``t`` and sets ``optimizer.lr`` to ``lr_at(t)``,
a closed formula of ``t``: at construction (``t = 0``) and after each
``step()``. Whether ``t`` counts batches or epochs is the caller's choice (the
trainer steps per batch). ``base_lr`` is the optimizer's learning rate when the
schedule was made::

    StepLR             lr = base_lr * gamma ** (t // step_size)
    CosineAnnealingLR  lr = eta_min + (base_lr - eta_min) * (1 + cos(pi t / T_max)) / 2
    OneCycleLR         warm up from max_lr / div_factor to max_lr over pct_start of
                       the steps, then anneal to max_lr / div_factor / final_div_factor;
                       Adam's beta1 (SGD's momentum) moves the opposite way
    LinearWarmup(s, w) lr = s.lr_at(0) * (f + (1 - f) t / w) for t < w, then s.lr_at(t - w)

The counter and the constants are in ``state_dict()``, so a resumed run
continues the schedule exactly.
"""
import math


class Schedule:
    def __init__(self, optimizer):
        self.optimizer = optimizer
        self.base_lr = float(optimizer.lr)
        self.t = 0
        self._apply()

    def lr_at(self, t):
        raise NotImplementedError

    def momentum_at(self, t):
        """Adam's beta1 / SGD's momentum at step ``t``; ``None``: leave it alone."""
        return None

    def step(self):
        self.t += 1
        self._apply()

    def _apply(self):
        self.optimizer.lr = self.lr_at(self.t)
        momentum = self.momentum_at(self.t)
        if momentum is not None:
            set_momentum(self.optimizer, momentum)

    @property
    def lr(self):
        return self.optimizer.lr

    def state_dict(self):
        return {"t": self.t, "base_lr": self.base_lr}

    def load_state_dict(self, state):
        self.t, self.base_lr = int(state["t"]), float(state["base_lr"])
        self._apply()


def set_momentum(optimizer, value):
    if hasattr(optimizer, "betas"):
        optimizer.betas = (float(value), optimizer.betas[1])
    else:
        optimizer.momentum = float(value)


class StepLR(Schedule):
    """``StepLR(optimizer, step_size, gamma=0.1)``: multiply by ``gamma`` every ``step_size``."""

    def __init__(self, optimizer, step_size, gamma=0.1):
        if int(step_size) < 1:
            raise ValueError(f"StepLR step_size must be >= 1, got {step_size!r}")
        self.step_size, self.gamma = int(step_size), float(gamma)
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.base_lr * self.gamma ** (t // self.step_size)


class CosineAnnealingLR(Schedule):
    """``CosineAnnealingLR(optimizer, T_max, eta_min=0)``: half a cosine from base_lr to eta_min."""

    def __init__(self, optimizer, T_max, eta_min=0.0):
        if int(T_max) < 1:
            raise ValueError(f"CosineAnnealingLR T_max must be >= 1, got {T_max!r}")
        self.T_max, self.eta_min = int(T_max), float(eta_min)
        super().__init__(optimizer)

    def lr_at(self, t):
        return self.eta_min + (self.base_lr - self.eta_min) * (
            1 + math.cos(math.pi * t / self.T_max)) / 2


class OneCycleLR(Schedule):
    """``OneCycleLR(optimizer, max_lr, total_steps, pct_start=0.3, anneal_strategy="cos",
    div_factor=25, final_div_factor=1e4, three_phase=False, cycle_momentum=True,
    base_momentum=0.85, max_momentum=0.95)`` (Smith & Topin 2018; PyTorch's ``OneCycleLR``).

    Phases (two by default), each interpolating from its start to its end value
    over ``pct = (t - start) / (end - start)``, by ``cos`` (``end + (start - end) *
    (1 + cos(pi pct)) / 2``) or ``linear``::

        steps 0 .. pct_start*T - 1       lr initial -> max_lr     momentum max -> base
        then   .. T - 1                  lr max_lr -> min         momentum base -> max
    """

    def __init__(self, optimizer, max_lr, total_steps, pct_start=0.3, anneal_strategy="cos",
                 div_factor=25.0, final_div_factor=1e4, three_phase=False, cycle_momentum=True,
                 base_momentum=0.85, max_momentum=0.95):
        if int(total_steps) < 2:
            raise ValueError(f"OneCycleLR total_steps must be >= 2, got {total_steps!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR anneal_strategy must be 'cos' or 'linear', "
                             f"got {anneal_strategy!r}")
        self.total_steps, self.anneal_strategy = int(total_steps), anneal_strategy
        self.max_lr = float(max_lr)
        initial = self.max_lr / div_factor
        low = initial / final_div_factor
        up_end = float(pct_start * total_steps) - 1
        top, bottom = float(max_momentum), float(base_momentum)
        if three_phase:    # (end step, lr from, lr to, momentum from, momentum to)
            self.phases = [(up_end, initial, self.max_lr, top, bottom),
                           (2 * up_end, self.max_lr, initial, bottom, top),
                           (self.total_steps - 1, initial, low, top, top)]
        else:
            self.phases = [(up_end, initial, self.max_lr, top, bottom),
                           (self.total_steps - 1, self.max_lr, low, bottom, top)]
        self.cycle_momentum = bool(cycle_momentum)
        super().__init__(optimizer)

    def _interpolate(self, t, which):
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR stepped {t} times, past total_steps="
                             f"{self.total_steps}: make total_steps the number of steps")
        start = 0.0
        for end, *values in self.phases:
            if t <= end or end == self.phases[-1][0]:
                a, b = values[2 * which], values[2 * which + 1]
                pct = (t - start) / (end - start)
                if self.anneal_strategy == "cos":
                    return b + (a - b) / 2.0 * (math.cos(math.pi * pct) + 1)
                return (b - a) * pct + a
            start = end

    def lr_at(self, t):
        return self._interpolate(t, 0)

    def momentum_at(self, t):
        return self._interpolate(t, 1) if self.cycle_momentum else None


class LinearWarmup(Schedule):
    """``LinearWarmup(schedule, warmup_steps, start_factor=0.1)``: ramp the learning rate
    linearly from ``start_factor * lr`` over ``warmup_steps``, then run ``schedule``
    (counted from the end of the warm-up). PyTorch: ``SequentialLR([LinearLR(opt,
    start_factor, total_iters=w), schedule], milestones=[w])``."""

    def __init__(self, schedule, warmup_steps, start_factor=0.1):
        if int(warmup_steps) < 1:
            raise ValueError(f"LinearWarmup warmup_steps must be >= 1, got {warmup_steps!r}")
        self.inner, self.warmup_steps = schedule, int(warmup_steps)
        self.start_factor = float(start_factor)
        super().__init__(schedule.optimizer)
        self.base_lr = schedule.base_lr

    def lr_at(self, t):
        if t < self.warmup_steps:
            base = self.inner.lr_at(0)
            return base * (self.start_factor + (1 - self.start_factor) * t / self.warmup_steps)
        return self.inner.lr_at(t - self.warmup_steps)

    def momentum_at(self, t):
        return self.inner.momentum_at(max(0, t - self.warmup_steps))
