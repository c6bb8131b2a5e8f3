"""What a checkpoint's training state must be, checked before any of it is used.

A checkpoint can lie: edited by hand, damaged where the zip checksums do not look,
written by another version. ``check_section`` checks the header's ``"checkpoint"``
section on its own (types and ranges of every field, the settings through
``minicnn.training.config.config_from_checkpoint``, and how the fields fit each other and the
architecture); ``minicnn.training.checkpoint.restore`` then checks the arrays against the model
the settings build (``Optimizer.load_state_dict`` checks the optimizer's buffers). The
first entry that does not fit is named in one line (``ModelFileError``).
"""
import math

from ..files.model_files import ModelFileError
from ..layers import LAYER_TYPES, Dropout
from .config import config_from_checkpoint

# The numbers each kind of metrics record holds (see minicnn.training.reporting); others may be
# there too (validation, timing) but these are read back by the curves and the CLI.
RECORD_NUMBERS = {"step": ("loss", "train_acc", "seconds"),
                  "epoch": ("loss", "train_acc", "test_acc", "test_loss", "seconds")}


def check_section(section, architecture, path):
    """Raise ``ModelFileError`` naming the first field of ``section`` (the header's
    "checkpoint" section) that is missing, of the wrong type or out of range."""
    def fail(key, why):
        return ModelFileError(f"{path} is not a valid minicnn checkpoint: its training "
                              f"state's {key!r} {why}")
    try:
        config = config_from_checkpoint(section.get("config"))
    except ValueError as err:
        raise ModelFileError(f"{path} is not a valid minicnn checkpoint: its settings "
                             f"('config') are refused: {err}") from None
    for key in ("epoch", "step", "optimizer_steps"):
        if not _whole(section.get(key)):
            raise fail(key, f"is {section.get(key)!r}, not a whole number >= 0")
    epoch, step = section["epoch"], section["step"]
    if epoch > config.epochs:
        raise fail("epoch", f"is {epoch}, past the {config.epochs} epochs of its settings")
    if section["optimizer_steps"] != step:
        raise fail("optimizer_steps", f"is {section['optimizer_steps']}, but the run took "
                                      f"{step} steps (one optimizer step each)")
    if not _number(section.get("seconds")):
        raise fail("seconds", f"is {section.get('seconds')!r}, not a number >= 0")
    _check_records(section.get("records"), epoch, step, lambda why: fail("records", why))
    dropouts = _count_dropouts(architecture)
    states = section.get("dropout_states")
    if not isinstance(states, list) or len(states) != dropouts or \
            not all(isinstance(s, dict) for s in states):
        raise fail("dropout_states", f"is not a list of {dropouts} RNG state(s), one per "
                                     f"Dropout layer of its model")
    _check_schedule(section.get("schedule"), config, step, lambda why: fail("schedule", why))
    _check_best(section.get("best"), config, epoch, lambda why: fail("best", why))
    return config


def _whole(value):
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _number(value, low=0.0, high=math.inf):
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value) and low <= value <= high)


def _check_records(records, epoch, step, fail):
    """A list of dicts of the two kinds, numbers where numbers go; the epoch records
    are exactly epochs 1..``epoch``, and no record is past ``step``."""
    if not isinstance(records, list):
        raise fail(f"is {type(records).__name__}, not a list of records")
    epochs = []
    for i, record in enumerate(records):
        if not isinstance(record, dict) or record.get("kind") not in RECORD_NUMBERS:
            raise fail(f"entry {i} is not a record (a dict of kind 'step' or 'epoch')")
        kind = record["kind"]
        if not (_whole(record.get("epoch")) and _whole(record.get("step"))) \
                or record["step"] > step:
            raise fail(f"entry {i} ({kind}) has no valid 'epoch' and 'step'")
        for key in RECORD_NUMBERS[kind]:
            if not _number(record.get(key)):
                raise fail(f"entry {i} ({kind}) has no valid {key!r}")
        if kind == "epoch":
            epochs.append(record["epoch"])
    if epochs != list(range(1, epoch + 1)):
        raise fail(f"hold epoch records {epochs}, not those of the {epoch} epochs trained")


def _count_dropouts(spec):
    count, stack = 0, [spec]
    while stack:
        node = stack.pop()
        cls = LAYER_TYPES.get(node.get("type"))
        count += cls is not None and issubclass(cls, Dropout)
        stack += node.get("children", [])
    return count


def _check_schedule(state, config, step, fail):
    """``None`` without a schedule; with one, ``{"t", "base_lr"}`` where ``t`` is the
    number of steps (the trainer steps the schedule once per batch) and ``base_lr`` the
    run's learning rate. (A checkpoint without the state, from before it was saved,
    still resumes: its schedule is rebuilt from the step count.)"""
    if state is None:
        return
    if config.schedule == "none":
        raise fail(f"is {state!r}, but the run has no schedule")
    if not isinstance(state, dict) or set(state) != {"t", "base_lr"}:
        raise fail(f"is {state!r}, not {{'t': steps, 'base_lr': lr}}")
    if state["t"] != step or not _whole(state["t"]):
        raise fail(f"has t={state['t']!r}, but the run took {step} steps")
    if not _number(state["base_lr"]) or state["base_lr"] != config.lr:
        raise fail(f"has base_lr={state['base_lr']!r}, not the run's lr {config.lr!r}")


def _check_best(best, config, epoch, fail):
    """The best epoch by validation so far: ``None`` before the first epoch or without a
    validation split; else ``{"epoch" (1..epoch), "val_acc" (0..1), "val_loss" (>= 0)}``."""
    if not config.validation or not epoch:
        if best is not None:
            raise fail(f"is {best!r}, but the run has no validation result yet"
                       if config.validation else
                       f"is {best!r}, but the run has no validation split")
        return
    if not isinstance(best, dict) or set(best) != {"epoch", "val_acc", "val_loss"}:
        raise fail(f"is {best!r}, not {{'epoch', 'val_acc', 'val_loss'}}")
    if not (_whole(best["epoch"]) and 1 <= best["epoch"] <= epoch
            and _number(best["val_acc"], 0, 1) and _number(best["val_loss"])):
        raise fail(f"is {best!r}: an epoch in 1..{epoch}, an accuracy in [0, 1] and a "
                   f"loss >= 0 were expected")
