"""A run's checkpoint: a minicnn model file plus what it takes to continue training.

``RUN_DIR/checkpoint.npz`` is written by the one model-file writer
(``serialization.write_model_file``), so ``minicnn.load_model`` reads it like any
saved model. Besides the architecture and the weights it holds

    header "checkpoint"     config, epoch, step, seconds, records (the metrics log),
                            optimizer_steps, dropout_states (each Dropout's RNG state),
                            schedule (the learning-rate schedule's state, or null),
                            best (epoch, val_acc, val_loss of best.npz, or null:
                            see minicnn.validation)
    arrays "optimizer/K"    the optimizer's buffers (SGD momentum, Adam moments), by
                            the keys of ``Optimizer.state_dict()["buffers"]``

``RUN_DIR/model.npz`` is the model part alone, written by the same writer right
after, for the examples (``--checkpoint RUN/model.npz``) and ``load_model``.
On resume the checkpoint is read once (``read_checkpoint``) and handed on.

Checkpoints of minicnn's first format (``minicnn-checkpoint-1``: a ``__meta__``
entry, no model header) are refused with a line that says so; the ``model.npz``
of such a run folder still loads.
"""
import os
from dataclasses import asdict
from typing import NamedTuple

from .layers import Dropout
from .serialization import ModelFileError, read_model_file, rebuild, write_model_file

CHECKPOINT, MODEL = "checkpoint.npz", "model.npz"
OPTIMIZER = "optimizer/"
# what the "checkpoint" section must hold, and of which type
SECTION = {"config": dict, "epoch": int, "step": int, "seconds": (int, float), "records": list,
           "optimizer_steps": int, "dropout_states": list}


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
    """Write a ``Trainer``'s state to ``checkpoint.npz`` (one atomic file: weights,
    optimizer buffers and steps, Dropout RNG states, config, counters, metrics), then
    its model to ``model.npz``."""
    model, opt = trainer.model, trainer.optimizer.state_dict()
    section = dict(config=asdict(trainer.config), epoch=trainer.epoch, step=trainer.step,
                   seconds=trainer.seconds, records=trainer.records,
                   optimizer_steps=opt["steps"],
                   dropout_states=[d.generator.bit_generator.state for d in dropout_layers(model)],
                   schedule=None if trainer.schedule is None else trainer.schedule.state_dict(),
                   best=trainer.best)
    write_model_file(os.path.join(trainer.run_dir, CHECKPOINT), model, {"checkpoint": section},
                     {OPTIMIZER + k: v for k, v in opt["buffers"].items()})
    write_model_file(os.path.join(trainer.run_dir, MODEL), model)


def read_checkpoint(run_dir):
    """The ``Checkpoint`` in ``run_dir/checkpoint.npz``, read once; a broken or
    foreign file raises ``ModelFileError`` (a ``ValueError``) naming it."""
    path = os.path.join(os.fspath(run_dir), CHECKPOINT)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path}: is {run_dir} a minicnn run folder "
                                f"(made by `minicnn train --out {run_dir}`)?")
    header, weights, extras = read_model_file(path)
    section = header.get("checkpoint")
    if not isinstance(section, dict):
        raise ModelFileError(f"{path} is a minicnn model file, not a checkpoint: it holds no "
                             f"training state to resume or evaluate (load it with "
                             f"minicnn.load_model)")
    for key, kind in SECTION.items():
        if not isinstance(section.get(key), kind):
            raise ModelFileError(f"{path} is not a valid minicnn checkpoint: its training "
                                 f"state has no valid {key!r}")
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
        trainer.model.load_state_dict(model_state)
        trainer.optimizer.load_state_dict(optimizer_state)
        for layer, state in zip(dropout_layers(trainer.model), meta["dropout_states"]):
            layer.generator.bit_generator.state = state
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
