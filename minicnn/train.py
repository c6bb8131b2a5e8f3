"""Training a model on MNIST-like data: the loop, the evaluation pass, checkpoints and resume.

A run lives in one folder::

    RUN_DIR/config.json      the run's settings (for people; the checkpoint holds its own copy)
    RUN_DIR/checkpoint.npz   everything needed to continue, rewritten atomically after each epoch
    RUN_DIR/model.npz        the latest weights + architecture, readable by minicnn.load_model
    RUN_DIR/metrics.jsonl    the metrics log (see minicnn.reporting)
    RUN_DIR/curves.png       learning curves, redrawn after each epoch

One step: ``logits = model(x)``, ``loss = cross_entropy(logits, y)``, backward
from ``dloss/dlogits`` through every layer, then the optimizer's update.

Resuming is exact on the CPU: the checkpoint holds the weights, the optimizer's
buffers and step count, and every Dropout generator's state, and the batch
iterator derives each epoch's shuffle and augmentation from (seed, epoch) alone.
So 1 epoch + resume + 1 epoch gives bit-for-bit the weights of 2 straight epochs.
"""
import inspect
import json
import math
import os
import time
from dataclasses import asdict, dataclass, fields

import numpy as np

from .backend import as_numpy, check_device
from .inference import eval_forward
from .init import INITIALIZERS
from .layers import Dropout, SoftmaxCrossEntropy
from .models import MODELS, get_model
from .optim import SGD, Adam
from .reporting import MetricsLog, plot_learning_curves, write_json
from .serialization import architecture, atomic_savez, build, save_model

CHECKPOINT, MODEL, METRICS, CURVES, CONFIG = (
    "checkpoint.npz", "model.npz", "metrics.jsonl", "curves.png", "config.json")
CHECKPOINT_FORMAT = "minicnn-checkpoint-1"
OPTIMIZERS = ("adam", "sgd")
DATASETS = ("mnist", "fashion-mnist")
INPUT_SHAPE = (1, 28, 28)


class TrainingDiverged(FloatingPointError):
    """The loss became NaN or infinite; the message says where and what to do."""


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
    seed: int = 0
    # Glorot, not He: on lenet (Adam 1e-3, seed 0) He init reached 98.75% after 2 epochs,
    # Glorot 99.01-99.08% (measured, README). See minicnn.init.INITIALIZERS.
    init: str = "glorot"
    augment: bool = False
    train_subset: int | None = None  # first N training images (quick runs, CI)
    test_subset: int | None = None   # first N test images; None: all 10,000
    eval_batch_size: int = 1000
    log_every: int = 50              # steps between step records in the metrics log

    def validate(self):
        """Raise ``ValueError`` naming the first bad setting."""
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; choose from {sorted(MODELS)}")
        if self.dataset not in DATASETS:
            raise ValueError(f"unknown dataset {self.dataset!r}; choose from {list(DATASETS)}")
        if self.init not in INITIALIZERS:
            raise ValueError(f"unknown init {self.init!r}; choose from {list(INITIALIZERS)}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; "
                             f"choose from {list(OPTIMIZERS)}")
        for name in ("epochs", "batch_size", "eval_batch_size", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        for name in ("train_subset", "test_subset"):
            if getattr(self, name) is not None and int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        return self

    @classmethod
    def from_dict(cls, d):
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in known})


def make_optimizer(config, params):
    if config.optimizer == "adam":
        return Adam(params, lr=config.lr)
    return SGD(params, lr=config.lr, momentum=config.momentum)


def make_batches(images, labels, batch_size, device, train, config):
    """The one place that builds batch iterators, so training and evaluation
    normalize the same way. ``train``: shuffled (and augmented if configured)."""
    from .data import Augment, BatchIterator
    return BatchIterator(images, labels, batch_size, shuffle=train, seed=config.seed,
                         augment=Augment() if (train and config.augment) else None,
                         device=device)


def evaluate(model, batches):
    """One pass over ``batches`` in eval mode (no dropout); the model's mode is
    restored afterwards. Returns ``loss`` (mean), ``accuracy``, and NumPy
    ``predictions (N,)`` and ``labels (N,)``."""
    loss_fn = SoftmaxCrossEntropy()
    total_loss, predictions, labels = 0.0, [], []
    for logits, y in eval_forward(model, batches):             # logits (B, 10)
        total_loss += float(loss_fn(logits, y)) * len(y)
        predictions.append(as_numpy(logits.argmax(axis=1)))
        labels.append(as_numpy(y))
    predictions, labels = np.concatenate(predictions), np.concatenate(labels)
    return dict(loss=total_loss / len(labels), accuracy=float((predictions == labels).mean()),
                predictions=predictions, labels=labels)


# -- checkpoints -------------------------------------------------------------------
def dropout_layers(model):
    return [m for m in model.modules() if isinstance(m, Dropout)]


def read_checkpoint(run_dir):
    """``(meta, model_state, optimizer_state)`` from ``run_dir/checkpoint.npz``."""
    path = os.path.join(os.fspath(run_dir), CHECKPOINT)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}: is {run_dir} a minicnn run folder "
                                f"(made by `minicnn train --out {run_dir}`)?")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    meta = json.loads(str(arrays.pop("__meta__")))
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ValueError(f"{path}: unsupported checkpoint format {meta.get('format')!r}")
    model_state = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    buffers = {k[len("optim/"):]: v for k, v in arrays.items() if k.startswith("optim/")}
    return meta, model_state, {"steps": meta["optimizer_steps"], "buffers": buffers}


def load_checkpoint_model(run_dir, device="cpu"):
    """The model saved in a run's checkpoint, with its weights, on ``device``."""
    meta, model_state, _ = read_checkpoint(run_dir)
    return build(meta["architecture"]).load_state_dict(model_state).to(device), meta


class Trainer:
    """``Trainer(config, train_data, test_data, run_dir).fit()`` trains and returns
    the epoch records. ``train_data``/``test_data`` are ``(images uint8 (N, 28, 28),
    labels int (N,))``, the full sets: the configured subsets are taken here, so a
    resumed run takes the same ones. ``callbacks``: functions called as
    ``cb(epoch, model)`` after each epoch's checkpoint (e.g. ``viz.FeatureEvolution``);
    ``fit`` does not call them for epoch 0, call them yourself for the initial weights.
    """

    def __init__(self, config, train_data, test_data, run_dir, device="cpu", progress=True,
                 callbacks=()):
        self.config = config.validate()
        self.callbacks = list(callbacks)
        self.device = check_device(device)
        self.run_dir = os.fspath(run_dir)
        self.progress = progress
        # The ImageNet-sized models take no init argument (and are refused just below).
        takes_init = "init" in inspect.signature(MODELS[config.model]).parameters
        self.model = get_model(config.model, seed=config.seed,
                               **({"init": config.init} if takes_init else {})).to(device)
        if self.model.input_shape != INPUT_SHAPE:
            raise ValueError(f"model {config.model!r} takes {self.model.input_shape} inputs, "
                             f"not MNIST's {INPUT_SHAPE}")
        self.optimizer = make_optimizer(config, self.model.parameters())
        self.loss_fn = SoftmaxCrossEntropy()
        (x, y), (xt, yt) = train_data, test_data
        n, nt = config.train_subset, config.test_subset
        self.train_batches = make_batches(x[:n], y[:n], config.batch_size, device, True, config)
        self.test_batches = make_batches(xt[:nt], yt[:nt], config.eval_batch_size, device,
                                         False, config)
        self.epoch, self.step, self.seconds, self.records = 0, 0, 0.0, []

    # -- resume ----------------------------------------------------------------------
    @classmethod
    def resume(cls, run_dir, train_data, test_data, device="cpu", epochs=None, progress=True,
               callbacks=()):
        """A trainer continuing the run in ``run_dir`` from its last checkpoint;
        ``epochs`` (total, counted from the run's start) may extend the run."""
        meta, model_state, optim_state = read_checkpoint(run_dir)
        config = TrainConfig.from_dict(meta["config"])
        if epochs is not None:
            config.epochs = int(epochs)
        trainer = cls(config, train_data, test_data, run_dir, device, progress, callbacks)
        trainer.model.load_state_dict(model_state)
        trainer.optimizer.load_state_dict(optim_state)
        for layer, state in zip(dropout_layers(trainer.model), meta["dropout_states"]):
            layer.generator.bit_generator.state = state
        trainer.epoch, trainer.step = meta["epoch"], meta["step"]
        trainer.seconds, trainer.records = meta["seconds"], meta["records"]
        return trainer

    def save_checkpoint(self):
        """Write ``checkpoint.npz`` (one atomic file: weights, optimizer, RNG states,
        metrics, config) and then ``model.npz``."""
        opt = self.optimizer.state_dict()
        meta = dict(format=CHECKPOINT_FORMAT, config=asdict(self.config),
                    architecture=architecture(self.model), epoch=self.epoch, step=self.step,
                    seconds=self.seconds, records=self.records,
                    optimizer_steps=opt["steps"],
                    dropout_states=[d.generator.bit_generator.state
                                    for d in dropout_layers(self.model)])
        arrays = {"__meta__": np.array(json.dumps(meta))}
        arrays.update({f"model/{k}": v for k, v in self.model.state_dict().items()})
        arrays.update({f"optim/{k}": v for k, v in opt["buffers"].items()})
        atomic_savez(os.path.join(self.run_dir, CHECKPOINT), arrays)
        save_model(self.model, os.path.join(self.run_dir, MODEL))

    # -- the loop --------------------------------------------------------------------
    def fit(self):
        """Train up to ``config.epochs`` (counted from the run's start); after each
        epoch evaluate, log, checkpoint and redraw the curves. Returns the epoch records.
        Raises ``TrainingDiverged`` when the loss becomes NaN or infinite."""
        os.makedirs(self.run_dir, exist_ok=True)
        write_json(os.path.join(self.run_dir, CONFIG), asdict(self.config))
        log = MetricsLog(os.path.join(self.run_dir, METRICS), self.records)
        while self.epoch < self.config.epochs:
            start = time.perf_counter()
            train = self._train_epoch(log, start)
            test = self._checked(lambda: evaluate(self.model, self.test_batches), "evaluation")
            self.epoch += 1
            self.seconds += time.perf_counter() - start
            log.append(dict(kind="epoch", epoch=self.epoch, step=self.step, loss=train["loss"],
                            train_acc=train["accuracy"], test_acc=test["accuracy"],
                            test_loss=test["loss"], seconds=round(self.seconds, 3),
                            train_seconds=round(train["seconds"], 3),
                            images_per_s=round(train["images_per_s"], 1)))
            self.records = log.records
            self.save_checkpoint()
            plot_learning_curves(self.records, os.path.join(self.run_dir, CURVES))
            self._echo(f"epoch {self.epoch}/{self.config.epochs}: loss {train['loss']:.4f}  "
                       f"train acc {100 * train['accuracy']:.2f}%  "
                       f"test acc {100 * test['accuracy']:.2f}% ({len(test['labels'])} images)  "
                       f"{train['seconds']:.1f} s, {train['images_per_s']:.0f} images/s")
            for callback in self.callbacks:
                callback(self.epoch, self.model)
        return [r for r in self.records if r["kind"] == "epoch"]

    def _train_epoch(self, log, epoch_start):
        from tqdm import tqdm
        self.model.train()
        self.train_batches.set_epoch(self.epoch)   # shuffle/augment from (seed, epoch)
        cfg, start = self.config, time.perf_counter()
        sums = dict(loss=0.0, correct=0, seen=0)      # this epoch
        window = dict(loss=0.0, correct=0, seen=0)     # since the last step record
        bar = tqdm(self.train_batches, desc=f"epoch {self.epoch + 1}/{cfg.epochs}",
                   unit="batch", disable=not self.progress, leave=False, dynamic_ncols=True)
        for x, y in bar:
            loss, correct = self._checked(lambda: self._train_step(x, y), "training")
            self.step += 1
            for acc in (sums, window):
                acc["loss"] += loss * len(y)
                acc["correct"] += correct
                acc["seen"] += len(y)
            rate = sums["seen"] / (time.perf_counter() - start)
            bar.set_postfix(loss=f"{loss:.4f}", acc=f"{100 * sums['correct'] / sums['seen']:.2f}%",
                            img_s=f"{rate:.0f}", refresh=False)
            if self.step % cfg.log_every == 0:
                log.append(dict(kind="step", epoch=self.epoch + 1, step=self.step,
                                loss=window["loss"] / window["seen"],
                                train_acc=window["correct"] / window["seen"], test_acc=None,
                                seconds=round(self.seconds + time.perf_counter() - epoch_start, 3)))
                window = dict(loss=0.0, correct=0, seen=0)
        bar.close()
        seconds = time.perf_counter() - start
        return dict(loss=sums["loss"] / sums["seen"], accuracy=sums["correct"] / sums["seen"],
                    seconds=seconds, images_per_s=sums["seen"] / seconds)

    def _train_step(self, x, y):
        """One optimizer step on a batch ``x (B, 1, 28, 28)``, ``y (B,)``;
        returns the batch's mean loss and number of correct predictions."""
        self.optimizer.zero_grad()
        logits = self.model.forward(x)
        loss = float(self.loss_fn(logits, y))     # raises FloatingPointError on NaN logits
        if not math.isfinite(loss):
            raise FloatingPointError(f"the loss is {loss}")
        self.model.backward(self.loss_fn.backward())
        self.optimizer.step()
        return loss, int((logits.argmax(axis=1) == y).sum())

    def _checked(self, fn, phase):
        """Run ``fn``, turning a NaN/inf failure into ``TrainingDiverged`` with advice."""
        try:
            return fn()
        except FloatingPointError as err:
            where = os.path.join(self.run_dir, CHECKPOINT)
            last = (f"the last good checkpoint is {where} (epoch {self.epoch})" if self.epoch
                    else "no checkpoint was written")
            raise TrainingDiverged(
                f"training diverged during {phase} in epoch {self.epoch + 1}, after step "
                f"{self.step} ({err}). With {self.config.optimizer} at lr={self.config.lr:g}, "
                f"the loss became NaN or infinite: lower the learning rate (--lr). "
                f"Stopped; {last}.") from None

    def _echo(self, line):
        from tqdm import tqdm
        tqdm.write(line)
