"""A run's checkpoint: a minicnn model file plus what it takes to continue training.

``RUN_DIR/checkpoint.npz`` is written by the one model-file writer
(``serialization.write_model_file``), so ``minicnn.load_model`` reads it like any
saved model. Besides the architecture and the weights it holds

    header "checkpoint"     config, epoch, step, seconds, records (the metrics log),
                            optimizer_steps, dropout_states (each Dropout's RNG state),
                            schedule (the learning-rate schedule's state, or null),
                            best (epoch, val_acc, val_loss of best.npz, or null:
                            see minicnn.training.validation)
    arrays "optimizer/K"    the optimizer's buffers (SGD momentum, Adam moments), by
                            the keys of ``Optimizer.state_dict()["buffers"]``

``RUN_DIR/model.npz`` is the model part alone, for the examples (``--checkpoint
RUN/model.npz``), the explorer and ``load_model``; its header section "run" stamps
the epoch and step it belongs to. The checkpoint, ``best.npz`` (in an epoch that
improved on the best validation result) and ``model.npz`` are written to temporary
files first, then renamed back to back, checkpoint first, with Ctrl-C and SIGTERM held
meanwhile: they never disagree, except after a SIGKILL in the microseconds between two
renames, which the next command in the folder mends (``repair_run``).
On resume the checkpoint is read once (``read_checkpoint``), every entry checked
(``minicnn.training.checkpoint_checks``, ``Optimizer.load_state_dict``), and handed on.

Checkpoints of minicnn's first format (``minicnn-checkpoint-1``: a ``__meta__``
entry, no model header) are refused with a line that says so; the ``model.npz``
of such a run folder still loads.
"""
import os
from dataclasses import asdict
from typing import NamedTuple

import numpy as np

from ..files.atomic import atomic_write_all, interrupts_deferred
from ..files.locks import FolderBusy, FolderLock
from ..files.model_files import (ModelFileError, model_file_writer, read_header, read_model_file,
                                 rebuild)
from ..layers import Dropout
from .checkpoint_checks import check_section
from .run_folder import BEST, CHECKPOINT, MODEL

OPTIMIZER = "optimizer/"


class Checkpoint(NamedTuple):
    """``meta``: the header's "checkpoint" section plus its ``"architecture"``;
    ``model_state``: the weights by ``state_dict`` name; ``optimizer_state``:
    ``{"steps", "buffers"}`` as ``Optimizer.load_state_dict`` takes it."""
    meta: dict
    model_state: dict
    optimizer_state: dict


def dropout_layers(model):
    return [m for m in model.modules() if isinstance(m, Dropout)]


def write_checkpoint(trainer):
    """Write a ``Trainer``'s state to ``checkpoint.npz`` (weights, optimizer buffers and
    steps, Dropout RNG states, config, counters, metrics), its model to ``model.npz``
    and, in an epoch that improved on the best validation result, to ``best.npz``: all
    three complete in temporary files first, then renamed back to back, checkpoint
    first, with Ctrl-C and SIGTERM held until the renames are done (``repair_run``
    mends the files after a SIGKILL between two renames)."""
    model, opt = trainer.model, trainer.optimizer.state_dict()
    section = dict(config=asdict(trainer.config), epoch=trainer.epoch, step=trainer.step,
                   seconds=trainer.seconds, records=trainer.records,
                   optimizer_steps=opt["steps"],
                   dropout_states=[d.generator.bit_generator.state for d in dropout_layers(model)],
                   schedule=None if trainer.schedule is None else trainer.schedule.state_dict(),
                   best=trainer.best)
    folder = trainer.run_dir
    with interrupts_deferred():
        atomic_write_all(_writes(folder, model, section,
                                 {OPTIMIZER + k: v for k, v in opt["buffers"].items()}))


def _writes(folder, model, section, buffers=None):
    """The ``(path, write)`` pairs of a checkpoint: the checkpoint itself, best.npz when
    the best epoch is this one, model.npz stamped with the epoch and step."""
    writes = [(os.path.join(folder, CHECKPOINT),
               model_file_writer(model, {"checkpoint": section}, buffers))]
    best = section.get("best")
    if best is not None and best["epoch"] == section["epoch"]:
        writes.append((os.path.join(folder, BEST), model_file_writer(model, {"best": best})))
    stamp = {"epoch": section["epoch"], "step": section["step"]}
    writes.append((os.path.join(folder, MODEL), model_file_writer(model, {"run": stamp})))
    return writes


def read_checkpoint(run_dir):
    """The ``Checkpoint`` in ``run_dir/checkpoint.npz``, read once and checked (see
    ``minicnn.training.checkpoint_checks``); a broken, foreign or lying file raises
    ``ModelFileError`` (a ``ValueError``) naming it and the entry."""
    path = os.path.join(os.fspath(run_dir), CHECKPOINT)
    if not os.path.lexists(path):
        raise FileNotFoundError(f"no checkpoint at {path}: is {run_dir} a minicnn run folder "
                                f"(made by `minicnn train --out {run_dir}`)?")
    header, weights, extras = read_model_file(path)
    section = header.get("checkpoint")
    if not isinstance(section, dict):
        raise ModelFileError(f"{path} is a minicnn model file, not a checkpoint: it holds no "
                             f"training state to resume or evaluate (load it with "
                             f"minicnn.load_model)")
    check_section(section, header["architecture"], path)
    for name, value in {**weights, **extras}.items():
        if value.dtype.kind == "f" and not bool(np.isfinite(value).all()):
            raise ModelFileError(f"{path} is not a valid minicnn checkpoint: its entry "
                                 f"{name!r} holds NaN or infinite values")
    buffers = {k[len(OPTIMIZER):]: v for k, v in extras.items() if k.startswith(OPTIMIZER)}
    return Checkpoint(dict(section, architecture=header["architecture"]), weights,
                      {"steps": section["optimizer_steps"], "buffers": buffers})


def load_checkpoint_model(run_dir, device="cpu"):
    """``(model, meta)``: the model saved in a run's checkpoint, with its weights, on
    ``device``, and the checkpoint's ``meta``."""
    meta, model_state, _ = read_checkpoint(run_dir)
    path = os.path.join(os.fspath(run_dir), CHECKPOINT)
    return rebuild(path, meta["architecture"], model_state).to(device), meta


def restore(checkpoint, trainer):
    """Put a checkpoint's weights, optimizer state, Dropout RNG states and counters into
    ``trainer`` (built from the checkpoint's config) and return it; a mismatch is named."""
    meta, model_state, optimizer_state = checkpoint
    try:
        own = trainer.model.state_dict()
        for name, value in model_state.items():
            if name in own and value.dtype != own[name].dtype:
                raise ValueError(f"its entry {name!r} is {value.dtype}, the model's is "
                                 f"{own[name].dtype}")
        trainer.model.load_state_dict(model_state)
        trainer.optimizer.load_state_dict(optimizer_state, entry_prefix=OPTIMIZER)
        for i, (layer, state) in enumerate(zip(dropout_layers(trainer.model),
                                               meta["dropout_states"])):
            rng = layer.generator.bit_generator
            try:
                rng.state = state
            except (KeyError, TypeError, ValueError, OverflowError) as err:
                raise ValueError(f"its 'dropout_states' entry {i} is not a "
                                 f"{type(rng).__name__} state ({err})") from None
        if trainer.schedule is not None:      # sets the optimizer's lr (and beta1) too
            trainer.schedule.load_state_dict(meta.get("schedule") or
                                             {"t": meta["step"], "base_lr": trainer.config.lr})
    except (KeyError, IndexError, TypeError, ValueError) as err:
        raise ModelFileError(
            f"{os.path.join(trainer.run_dir, CHECKPOINT)} does not match the model "
            f"{trainer.config.model!r} its settings build: "
            f"{err.args[0] if err.args else err}") from None
    trainer.epoch, trainer.step = meta["epoch"], meta["step"]
    trainer.seconds, trainer.records = meta["seconds"], meta["records"]
    trainer.best = meta.get("best")      # the best-by-validation epoch so far, or None
    return trainer


def repair_run(run_dir, locked=False, checkpoint=None):
    """Mend a run folder after a SIGKILL between the renames of ``write_checkpoint``:
    rewrite ``model.npz`` from ``checkpoint.npz`` when its stamp (epoch, step) differs
    or it is missing, and ``best.npz`` when the checkpoint's best epoch is its own epoch
    but ``best.npz`` says otherwise. Every command that opens a run folder (train,
    evaluate, explore) calls it first. Without ``locked`` it takes the folder's lock and
    does nothing when it cannot (a training holds it and writes the files itself, or the
    folder is read-only); a checkpoint that cannot be read is left to its reader, which
    says why. ``checkpoint``: the folder's ``Checkpoint`` if the caller has read it
    already (then it is not read again). Returns the names of the files rewritten."""
    run_dir = os.fspath(run_dir)
    if not os.path.isfile(os.path.join(run_dir, CHECKPOINT)):
        return []
    lock = None if locked else FolderLock(run_dir, "minicnn process")
    try:
        if lock is not None:
            lock.acquire()
        section = checkpoint.meta if checkpoint is not None else \
            read_header(os.path.join(run_dir, CHECKPOINT))["checkpoint"]
        best, stale = section.get("best"), []
        if _stale(os.path.join(run_dir, MODEL), "run",
                  {"epoch": section["epoch"], "step": section["step"]}):
            stale.append(MODEL)
        if isinstance(best, dict) and best.get("epoch") == section["epoch"] and \
                _stale(os.path.join(run_dir, BEST), "best", best):
            stale.append(BEST)
        if stale:
            if checkpoint is None:
                model, meta = load_checkpoint_model(run_dir)
            else:
                meta = checkpoint.meta
                model = rebuild(os.path.join(run_dir, CHECKPOINT), meta["architecture"],
                                checkpoint.model_state)
            writes = [w for w in _writes(run_dir, model, meta) if os.path.basename(w[0]) in stale]
            with interrupts_deferred():
                atomic_write_all(writes)
        return stale
    except (FolderBusy, OSError, ValueError, KeyError, TypeError):
        return []
    finally:
        if lock is not None:
            lock.release()


def _stale(path, key, expected):
    """Whether the model file at ``path`` must be rewritten: it is missing, or its header
    section ``key`` is a dict other than ``expected``. A file without the section (from
    an older minicnn) or one that cannot be read is left alone."""
    if not os.path.lexists(path):
        return True
    try:
        found = read_header(path).get(key)
    except (OSError, ValueError):
        return False
    return isinstance(found, dict) and found != expected
