"""Training a model on MNIST-like data: the loop, the evaluation pass, checkpoints and resume.

A run lives in one folder (``run_folder.py`` names its files): ``config.json`` (its
settings, for people), ``checkpoint.npz`` and ``model.npz`` (see ``checkpoint.py``),
``metrics.jsonl`` (``reporting.py``) and ``curves.png``; the checkpoint is rewritten atomically after each epoch. A run with a
validation split (``config.validation``) also keeps ``best.npz``, its best model by
validation accuracy (``minicnn.training.validation``).

One step: ``logits = model(x)``, ``loss = cross_entropy(logits, y)``, backward
from ``dloss/dlogits`` through every layer, then the optimizer's update.

Resuming is exact on the CPU: 1 epoch + resume + 1 epoch gives bit-for-bit the
weights of 2 straight epochs (the checkpoint holds all the state, see minicnn.training.checkpoint).
"""
import os
import time
from dataclasses import asdict

import numpy as np

from ..backend import as_numpy, check_device, get_array_module
from ..files.locks import FolderLock, remove_stale_temporaries
from ..layers import BatchNorm1D, SoftmaxCrossEntropy
from ..models import get_model
from .checkpoint import read_checkpoint, restore, write_checkpoint
from .config import INPUT_SHAPE, TrainConfig, make_optimizer, make_schedule
from .divergence import CHECK_EVERY, TrainingDiverged, check_labels, check_loss
from .inference import eval_forward
from .progress import EpochProgress
from .reporting import MetricsLog, plot_learning_curves
from .run_folder import CHECKPOINT, CURVES, METRICS, check_run_folder, write_settings
from .validation import is_better, run_split


def make_batches(images, labels, batch_size, device, train, config):
    """The one place that builds batch iterators, so training and evaluation
    normalize the same way. ``train``: shuffled (and augmented if configured), and a
    last batch of one image dropped (batch norm cannot estimate a variance from one
    image; each epoch drops another, the order being shuffled). Evaluation keeps all."""
    from ..data import Augment, BatchIterator
    single_left = train and len(labels) > 1 and len(labels) % batch_size == 1
    return BatchIterator(images, labels, batch_size, shuffle=train, seed=config.seed,
                         augment=Augment() if (train and config.augment) else None,
                         drop_last=single_left, device=device)


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


class Trainer:
    """``Trainer(config, train_data, test_data, run_dir).fit()`` trains and returns
    the epoch records. ``train_data``/``test_data`` are ``(images uint8 (N, 28, 28),
    labels int (N,))``, the full sets: the configured subsets are taken here, so a
    resumed run takes the same ones. ``callbacks``: functions called as
    ``cb(epoch, model)`` after each epoch's checkpoint (e.g. ``viz.FeatureEvolution``);
    ``fit`` does not call them for epoch 0, call them yourself for the initial weights.
    ``lock``: a held ``FolderLock`` of ``run_dir`` (the command line takes it before
    loading the data); by default ``fit`` takes the lock itself, for the whole run.
    ``progress``: a tqdm bar on a terminal, a few plain lines per epoch in a log.
    """

    def __init__(self, config, train_data, test_data, run_dir, device="cpu", progress=True,
                 callbacks=(), lock=None):
        self.config = config.validate()
        self.lock = lock
        self.callbacks = list(callbacks)
        self.device = check_device(device)
        self.run_dir = os.fspath(run_dir)
        self.progress = progress
        self.model = get_model(config.model, seed=config.seed, init=config.init).to(device)
        if self.model.input_shape != INPUT_SHAPE:
            raise ValueError(f"model {config.model!r} takes {self.model.input_shape} inputs, "
                             f"not MNIST's {INPUT_SHAPE}")
        norms = [m for m in self.model.modules() if isinstance(m, BatchNorm1D)]
        if norms and (config.batch_size == 1 or config.train_subset == 1):
            raise ValueError(f"model {config.model!r} has {norms[0].label()}, which needs at "
                             f"least 2 images in each training batch to estimate a variance: "
                             f"use --batch-size 2 or more (and --train-subset 2 or more)")
        self.optimizer = make_optimizer(config, self.model.parameters())
        # Label values are checked here, once; the loss checks only shapes and dtypes.
        self.loss_fn = SoftmaxCrossEntropy(check=False, label_smoothing=config.label_smoothing)
        (x, y), (xt, yt) = train_data, test_data
        n, nt = config.train_subset, config.test_subset
        # The validation split first, from the whole training set; then the subset.
        self.train_indices, self.val_indices = run_split(len(y), config)
        self.val_batches, self.best = None, None     # best: see minicnn.training.validation
        if config.validation:                        # (without: plain slices, no copies)
            xv, yv = x[self.val_indices], y[self.val_indices]
            x, y, n = x[self.train_indices], y[self.train_indices], None
            check_labels(yv, "validation")
            self.val_batches = make_batches(xv, yv, config.eval_batch_size, device, False,
                                            config)
        check_labels(y[:n], "training")
        check_labels(yt[:nt], "test")
        self.train_batches = make_batches(x[:n], y[:n], config.batch_size, device, True, config)
        self.test_batches = make_batches(xt[:nt], yt[:nt], config.eval_batch_size, device,
                                         False, config)
        self.schedule = make_schedule(config, self.optimizer, len(self.train_batches))
        self.epoch, self.step, self.seconds, self.records = 0, 0, 0.0, []

    # -- checkpoints (minicnn.training.checkpoint) ---------------------------------------------
    @classmethod
    def resume(cls, run_dir, train_data, test_data, device="cpu", epochs=None, progress=True,
               callbacks=(), checkpoint=None):
        """A trainer continuing the run in ``run_dir`` from its last checkpoint;
        ``epochs`` (total, counted from the run's start) may extend the run.
        ``checkpoint``: ``read_checkpoint(run_dir)`` if the caller has read it already."""
        checkpoint = read_checkpoint(run_dir) if checkpoint is None else checkpoint
        config = TrainConfig.from_dict(checkpoint.meta["config"])
        if epochs is not None and int(epochs) != config.epochs and \
                config.schedule in ("cosine", "onecycle"):
            raise ValueError(f"the run in {run_dir} has the {config.schedule} schedule, which "
                             f"spans its {config.epochs} epochs: it cannot be extended to "
                             f"{epochs} (start a new run with --epochs {epochs})")
        config.epochs = config.epochs if epochs is None else int(epochs)
        return restore(checkpoint, cls(config, train_data, test_data, run_dir, device, progress,
                                       callbacks))

    def save_checkpoint(self):
        """Write ``checkpoint.npz``, ``model.npz`` (and ``best.npz`` in an epoch that
        improved on the best validation result) after an epoch, together."""
        write_checkpoint(self)

    # -- the loop --------------------------------------------------------------------
    def fit(self):
        """Train up to ``config.epochs`` (counted from the run's start); after each
        epoch evaluate, log, checkpoint and redraw the curves. Returns the epoch records.
        Holds the run folder's lock throughout (``FolderBusy`` if another process has
        it) and first removes the ``.tmp-*`` files a killed run left there; a folder
        that is not a run's (``minicnn.training.run_folder``) raises ``ForeignFolder`` untouched.
        Raises ``TrainingDiverged`` when the loss becomes NaN or infinite or explodes,
        and ``minicnn.files.atomic.WriteError`` naming the file when a write fails."""
        lock = self.lock if self.lock is not None else FolderLock(self.run_dir, "training run")
        took = not lock.held
        if took:
            check_run_folder(self.run_dir)
            lock.acquire()
        try:
            remove_stale_temporaries(self.run_dir)
            # Overflow on the way to a diverged loss is reported by the loss checks,
            # in one message; numpy's own warnings would only add noise before it.
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                return self._fit()
        finally:
            if took:
                lock.release()

    def _fit(self):
        if self.epoch > self.config.epochs:    # config.json would then contradict the run
            raise ValueError(f"epochs={self.config.epochs} is fewer than the {self.epoch} "
                             f"epochs the run in {self.run_dir} has already trained; epochs "
                             f"is the run's total, counted from its start")
        write_settings(self.run_dir, asdict(self.config))
        log = MetricsLog(os.path.join(self.run_dir, METRICS), self.records)
        while self.epoch < self.config.epochs:
            start = time.perf_counter()
            train = self._checked(lambda: self._train_epoch(log, start), "training")
            val = self._checked(lambda: self._evaluate(self.val_batches, "validation"),
                                "validation") if self.val_batches is not None else None
            test = self._checked(lambda: self._evaluate(self.test_batches, "test"), "evaluation")
            self.epoch += 1
            self.seconds += time.perf_counter() - start
            record = dict(kind="epoch", epoch=self.epoch, step=self.step, loss=train["loss"],
                          train_acc=train["accuracy"], test_acc=test["accuracy"],
                          test_loss=test["loss"], seconds=round(self.seconds, 3),
                          train_seconds=round(train["seconds"], 3),
                          images_per_s=round(train["images_per_s"], 1))
            if val is not None:
                # best.npz is written with the checkpoint (save_checkpoint)
                if is_better(val, self.best):
                    self.best = dict(epoch=self.epoch, val_acc=val["accuracy"],
                                     val_loss=val["loss"])
                record.update(val_acc=val["accuracy"], val_loss=val["loss"],
                              best_epoch=self.best["epoch"])
            log.append(record)
            self.records = log.records
            self.save_checkpoint()
            plot_learning_curves(self.records, os.path.join(self.run_dir, CURVES))
            self._echo(f"epoch {self.epoch}/{self.config.epochs}: loss {train['loss']:.4f}  "
                       f"train acc {100 * train['accuracy']:.2f}%  "
                       + (f"val acc {100 * val['accuracy']:.2f}% (best: epoch "
                          f"{self.best['epoch']})  " if val is not None else "")
                       + f"test acc {100 * test['accuracy']:.2f}% ({len(test['labels'])} images)  "
                       f"{train['seconds']:.1f} s, {train['images_per_s']:.0f} images/s")
            for callback in self.callbacks:
                callback(self.epoch, self.model)
        return [r for r in self.records if r["kind"] == "epoch"]

    def _evaluate(self, batches, name):
        result = evaluate(self.model, batches)
        check_loss(result["loss"], f"the {name} loss")
        return result

    def _train_epoch(self, log, epoch_start):
        """One epoch. Each step's loss and correct count go into device arrays; every
        ``CHECK_EVERY`` steps, at each step record and at the end, the new ones are
        read back at once, checked, summed in step order (so the sums are exactly
        those of reading each step at once) and shown."""
        self.model.train()
        self.train_batches.set_epoch(self.epoch)   # shuffle/augment from (seed, epoch)
        cfg, start, total = self.config, time.perf_counter(), len(self.train_batches)
        xp = get_array_module(self.train_batches.labels)
        losses, corrects = xp.zeros(total, dtype=xp.float64), xp.zeros(total, dtype=xp.int64)
        sizes, read = [], 0                            # batch sizes; steps read back so far
        sums = dict(loss=0.0, correct=0, seen=0)      # this epoch
        window = dict(loss=0.0, correct=0, seen=0)     # since the last step record
        bar = EpochProgress(total, f"epoch {self.epoch + 1}/{cfg.epochs}", self.progress)
        try:
            for i, (x, y) in enumerate(self.train_batches):
                # Slices: array into array on the device, never a Python number.
                losses[i:i + 1], corrects[i:i + 1] = self._train_step(x, y)
                sizes.append(len(y))
                self.step += 1
                if (i + 1) % CHECK_EVERY and i + 1 < total and self.step % cfg.log_every:
                    continue
                first = self.step - (i - read)         # the step number of losses[read]
                for j, (loss, correct) in enumerate(zip(as_numpy(losses[read:i + 1]).tolist(),
                                                        as_numpy(corrects[read:i + 1]).tolist())):
                    check_loss(loss, f"the loss at step {first + j}", (first, self.step))
                    for acc in (sums, window):
                        acc["loss"] += loss * sizes[read + j]
                        acc["correct"] += correct
                        acc["seen"] += sizes[read + j]
                read = i + 1
                bar.update(read, sums["loss"] / sums["seen"], sums["correct"] / sums["seen"],
                           sums["seen"] / (time.perf_counter() - start))
                if self.step % cfg.log_every == 0:
                    log.append(dict(kind="step", epoch=self.epoch + 1, step=self.step,
                                    loss=window["loss"] / window["seen"],
                                    train_acc=window["correct"] / window["seen"], test_acc=None,
                                    seconds=round(self.seconds + time.perf_counter()
                                                  - epoch_start, 3)))
                    window = dict(loss=0.0, correct=0, seen=0)
        finally:
            bar.close()
        seconds = time.perf_counter() - start
        return dict(loss=sums["loss"] / sums["seen"], accuracy=sums["correct"] / sums["seen"],
                    seconds=seconds, images_per_s=sums["seen"] / seconds)

    def _train_step(self, x, y):
        """One optimizer step on a batch ``x (B, 1, 28, 28)``, ``y (B,)``; returns the
        batch's mean loss and number of correct predictions as device scalars (not
        read back: see ``_train_epoch``)."""
        self.optimizer.zero_grad()
        logits = self.model.forward(x)
        loss = self.loss_fn(logits, y)
        # no dL/dimages; each layer's cache dropped once its backward is done (peak memory)
        self.model.backward(self.loss_fn.backward(), input_grad=False, release=True)
        self.optimizer.step()
        if self.schedule is not None:
            self.schedule.step()        # the learning rate of the next batch
        return loss, (logits.argmax(axis=1) == y).sum()

    def _checked(self, fn, phase):
        """Run ``fn``, turning a NaN/inf/exploded loss into ``TrainingDiverged`` with advice."""
        try:
            return fn()
        except FloatingPointError as err:
            where = os.path.join(self.run_dir, CHECKPOINT)
            last = (f"the last good checkpoint is {where} (epoch {self.epoch})" if self.epoch
                    else "no checkpoint was written")
            raise TrainingDiverged(
                f"training diverged during {phase} in epoch {self.epoch + 1} ({err}). With "
                f"{self.config.optimizer} at lr={self.config.lr:g}, the loss became NaN, "
                f"infinite or huge: lower the learning rate (--lr). Stopped; {last}.") from None

    def _echo(self, line):
        from tqdm import tqdm
        tqdm.write(line)
