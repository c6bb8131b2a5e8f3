"""A training run's settings (``TrainConfig``) and what is built from them.

``TrainConfig`` holds everything that decides a run's result; it is written to
``config.json`` and into the checkpoint. ``make_optimizer`` and
``make_schedule`` turn it into the optimizer and the learning-rate schedule
(stepped once per batch). ``RECIPES`` are named sets of settings
(``minicnn train --recipe fast``), chosen by measurement (docs/explanations/results.md).
``LIMITS`` are the ranges of its numbers: ``TrainConfig.validate`` and the command line's options
(``minicnn.cli.command``) check the same ones.
"""
import math
import numbers
import types
from dataclasses import dataclass, fields

from ..init import INITIALIZERS
from ..models import MODELS
from ..optim import SGD, Adam, AdamW
from ..schedules import CosineAnnealingLR, LinearWarmup, OneCycleLR, StepLR

OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("none", "step", "cosine", "onecycle")
DATASETS = ("mnist", "fashion-mnist")
INPUT_SHAPE = (1, 28, 28)
NUM_CLASSES = 10                 # both datasets
MNIST_MODELS = ("lenet", "tiny_cnn", "keras_cnn", "lenet5", "bn_cnn", "fast_cnn",
                "mobilenet_mnist")
TRAIN_IMAGES, TEST_IMAGES = 60_000, 10_000   # both datasets


@dataclass(frozen=True)
class Limits:
    """The values a number may take: from ``low`` to ``high`` (each end included unless
    ``open_ends`` names it: "low", "high"), whole numbers only if ``whole``; never NaN,
    never infinite, never a bool."""
    low: float
    high: float
    whole: bool = False
    open_ends: tuple = ()

    def __str__(self):                       # what the number must be, for the messages
        if self.high == math.inf:
            return f"a finite number {'>' if 'low' in self.open_ends else '>='} {self.low:g}"
        low, high = (str(int(v)) if float(v).is_integer() else f"{v:g}"
                     for v in (self.low, self.high))
        interval = (f"{'(' if 'low' in self.open_ends else '['}{low}, "
                    f"{high}{')' if 'high' in self.open_ends else ']'}")
        return f"a whole number in {interval}" if self.whole else f"in {interval}"

    def check(self, value):
        """``value``, or ``ValueError("must be <the limits>, got <value>")``."""
        kind = numbers.Integral if self.whole else numbers.Real
        if not isinstance(value, kind) or isinstance(value, bool) or not self._holds(value):
            raise ValueError(f"must be {self}, got {value!r}")
        return value

    def _holds(self, v):
        if not self.whole and not math.isfinite(v):
            return False
        above = self.low < v if "low" in self.open_ends else self.low <= v
        below = v < self.high if "high" in self.open_ends else v <= self.high
        return above and below


MAX_EPOCHS = 10 ** 6                   # years of training: a larger number is a typo
LIMITS = {
    "epochs": Limits(1, MAX_EPOCHS, whole=True),
    "step_size": Limits(1, MAX_EPOCHS, whole=True),
    "warmup": Limits(0, MAX_EPOCHS, open_ends=("high",)),      # and shorter than the run
    "batch_size": Limits(1, TRAIN_IMAGES, whole=True),         # one batch: the whole set
    "eval_batch_size": Limits(1, TRAIN_IMAGES, whole=True),
    "log_every": Limits(1, 10 ** 9, whole=True),
    "lr": Limits(0, math.inf, open_ends=("low",)),
    "momentum": Limits(0, 1, open_ends=("high",)),             # 1 would never forget
    "beta1": Limits(0, 1, open_ends=("high",)),
    "beta2": Limits(0, 1, open_ends=("high",)),
    "weight_decay": Limits(0, math.inf),
    "label_smoothing": Limits(0, 1, open_ends=("high",)),      # 1: uniform targets, no signal
    "seed": Limits(0, 2 ** 32 - 1, whole=True),                # np.random.seed's range
    "validation": Limits(0, TRAIN_IMAGES, whole=True),         # (run_split: leave a batch)
    "train_subset": Limits(1, TRAIN_IMAGES, whole=True),       # or None: all
    "test_subset": Limits(1, TEST_IMAGES, whole=True),         # or None: all
}


class SettingError(ValueError):
    """A bad value of the setting ``name``: ``"<name> <reason>"``; the command line shows
    ``argument --<name>: <reason>``."""

    def __init__(self, name, reason):
        super().__init__(f"{name} {reason}")
        self.name, self.reason = name, reason


@dataclass
class TrainConfig:
    """Everything that decides a run's result (the device does not, on paper)."""
    model: str = "lenet"
    dataset: str = "mnist"
    epochs: int = 2
    batch_size: int = 64
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9            # SGD only
    beta1: float = 0.9               # Adam and AdamW
    beta2: float = 0.999
    weight_decay: float = 0.0        # L2 for adam and sgd, decoupled for adamw
    schedule: str = "none"           # the learning rate over the run, stepped per batch
    warmup: float = 0.0              # epochs of linear warm-up before step/cosine
    step_size: int = 1               # step schedule: epochs between drops by 10x
    label_smoothing: float = 0.0
    seed: int = 0
    # Glorot, not He: on lenet (Adam 1e-3, seed 0) He init reached 98.75% after 2 epochs,
    # Glorot 99.01-99.08% (measured, docs/explanations/results.md); minicnn.init.INITIALIZERS.
    init: str = "glorot"
    augment: bool = False
    validation: int = 0              # training images held out to choose the best epoch by
    train_subset: int | None = None  # first N training images left after validation (CI)
    test_subset: int | None = None   # first N test images; None: all 10,000
    # 256, not 1000: a batch of 1000 makes arrays of ~100 MB, which glibc maps afresh for
    # each batch (above its largest mmap threshold); the same predictions, measured faster
    # (benchmarks/README.md, "Behind the kernels' choices")
    eval_batch_size: int = 256
    log_every: int = 50              # steps between step records in the metrics log
    # Where the data was read from (the resolved absolute folder), so that resume and
    # evaluate find it again offline; not part of the result.
    data_dir: str | None = None

    def validate(self):
        """Raise ``SettingError`` (a ``ValueError``) naming the first bad setting."""
        for name, known in (("model", MODELS), ("dataset", DATASETS), ("init", INITIALIZERS),
                            ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES)):
            if getattr(self, name) not in known:
                raise SettingError(name, f"must be one of {sorted(known)}, got "
                                         f"{getattr(self, name)!r}")
        for name, limits in LIMITS.items():
            value = getattr(self, name)
            if value is not None or name not in ("train_subset", "test_subset"):
                try:
                    limits.check(value)
                except ValueError as err:
                    raise SettingError(name, str(err)) from None
        if self.warmup and self.schedule not in ("step", "cosine"):
            raise SettingError("warmup", f"goes with the step or cosine schedule, not "
                                         f"{self.schedule!r} (onecycle warms up by itself)")
        if self.warmup >= self.epochs:
            raise SettingError("warmup", f"must be shorter than the run's {self.epochs} "
                                         f"epochs, got {self.warmup!r}")
        return self

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def config_from_checkpoint(settings):
    """The ``TrainConfig`` of the settings a checkpoint stores, checked like everything
    read from a file: not a dict, an unknown key, a value of the wrong type (``"2"`` for
    an int, ``2.5`` for epochs, ``"yes"`` for a flag) or one ``validate`` refuses raises
    ``ValueError`` naming the key. A key missing takes its default (an older run)."""
    if not isinstance(settings, dict):
        raise ValueError(f"they are a {type(settings).__name__}, not a JSON object")
    types = {f.name: f.type for f in fields(TrainConfig)}
    for key, value in settings.items():
        if key not in types:
            raise ValueError(f"unknown setting {key!r} (a run of another minicnn version, or "
                             f"an edited file)")
        if not _of_type(value, types[key]):
            raise ValueError(f"setting {key!r} is {value!r}, not {_type_name(types[key])}")
    return TrainConfig(**settings).validate()


def _of_type(value, kind):
    """Whether a JSON value fits a TrainConfig field's type (``int | None`` included);
    a bool is not a number here, an int is a float, a float must be finite."""
    if isinstance(kind, types.UnionType):
        return any(_of_type(value, k) for k in kind.__args__)
    if kind is type(None) or kind is bool or kind is str:
        return isinstance(value, kind)
    if isinstance(value, bool):
        return False
    if kind is float:
        return isinstance(value, (int, float)) and math.isfinite(value)
    return isinstance(value, kind)


def _type_name(kind):
    if isinstance(kind, types.UnionType):
        return " or ".join(_type_name(k) for k in kind.__args__)
    return {type(None): "null", bool: "true or false", int: "a whole number",
            float: "a finite number", str: "text"}.get(kind, kind.__name__)


def make_optimizer(config, params):
    betas = (config.beta1, config.beta2)
    if config.optimizer == "adam":
        return Adam(params, lr=config.lr, betas=betas, weight_decay=config.weight_decay)
    if config.optimizer == "adamw":
        return AdamW(params, lr=config.lr, betas=betas, weight_decay=config.weight_decay)
    return SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)


def make_schedule(config, optimizer, steps_per_epoch):
    """The schedule of ``config.schedule`` over ``config.epochs * steps_per_epoch``
    batches (``None`` for ``"none"``); ``config.lr`` is its base (onecycle: its peak)."""
    total, warm = config.epochs * steps_per_epoch, round(config.warmup * steps_per_epoch)
    if config.schedule == "none":
        return None
    if config.schedule == "onecycle":    # beta1 cycles down to 0.85 at the peak, if above it
        return OneCycleLR(optimizer, config.lr, total, pct_start=0.25, anneal_strategy="linear",
                          base_momentum=min(0.85, config.beta1), max_momentum=config.beta1)
    if config.schedule == "step":
        schedule = StepLR(optimizer, config.step_size * steps_per_epoch, gamma=0.1)
    else:
        schedule = CosineAnnealingLR(optimizer, max(1, total - warm))
    return LinearWarmup(schedule, warm) if warm else schedule


# Named settings: ``minicnn train --recipe fast`` starts from these (options given on the
# command line still win). Measured in docs/explanations/results.md.
RECIPES = {
    "fast": dict(model="fast_cnn", epochs=1, batch_size=128, optimizer="adam", lr=0.02,
                 beta1=0.7, beta2=0.9, schedule="onecycle", init="he"),
}
