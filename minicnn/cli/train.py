"""``minicnn train``: a new run into ``--out``, or ``--resume`` of one (the parser:
``minicnn.cli.command``)."""
import contextlib
import os
import signal
import threading
import time
from dataclasses import asdict, fields

from ..files.locks import FolderBusy
from ..files.model_files import read_header
from ..models import MODELS
from ..training.checkpoint import read_checkpoint, repair_run
from ..training.config import INPUT_SHAPE, MNIST_MODELS, RECIPES, TrainConfig
from ..training.run_folder import CHECKPOINT, ForeignFolder, RunFolder
from ..training.trainer import Trainer
from .common import UsageError, _data_folder, _or_usage, load_data


def _config_from_args(args):
    """The options given on the command line, by TrainConfig field name."""
    names = [f.name for f in fields(TrainConfig) if f.name != "data_dir"]  # see _data_folder
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def cmd_train(args):
    given = _config_from_args(args)
    if args.recipe:
        if args.resume:
            raise UsageError("--recipe starts a run; a resumed run keeps its own settings")
        given = {**RECIPES[args.recipe], **given}
    if "model" in given and given["model"] not in MNIST_MODELS:
        raise UsageError(_not_trainable(given["model"]))
    if args.out is None:
        if args.resume:
            raise UsageError("--resume needs --out RUN_DIR: the run folder to continue")
        args.out = os.path.join("runs", f"{given.get('model', TrainConfig.model)}-"
                                        f"{time.strftime('%Y%m%d-%H%M%S')}")
    if args.resume and not os.path.isdir(args.out):
        raise UsageError(f"--resume: no checkpoint in {args.out!r}, no such folder (train "
                         f"without --resume first, or point --out at an existing run folder)")
    folder = _take_run_folder(args.out)    # before any data is loaded or model built
    state = {"phase": "loading the data"}
    try:
        with _sigterm_as_interrupt():
            return _train(args, given, folder.lock, state)
    except KeyboardInterrupt:
        raise UsageError(_interrupted(args, folder, state)) from None
    finally:
        folder.release()
        if not args.resume:
            folder.abandon()   # removes what it added, if no epoch finished


@contextlib.contextmanager
def _sigterm_as_interrupt():
    """SIGTERM (``kill``, a job scheduler) stops training as Ctrl-C does: one line, the
    writes of an epoch completed, temporary files removed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(*_):
        raise KeyboardInterrupt
    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def _interrupted(args, folder, state):
    """The line for Ctrl-C: what is kept, and ``--resume`` only with a checkpoint."""
    where = f"interrupted while {state['phase']}"
    try:
        epoch = read_header(os.path.join(args.out, CHECKPOINT))["checkpoint"]["epoch"]
    except (OSError, ValueError, KeyError, TypeError):
        epoch = None
    if epoch is not None:
        return (f"{where}; the checkpoint after epoch {epoch} is kept: continue with "
                f"`minicnn train --out {args.out} --resume`")
    gone = "removed" if folder.made else "left as it was"
    return (f"{where}, before the first epoch ended: nothing is kept to resume ({args.out} "
            f"{gone}); start again with the same command")


def _not_trainable(name):
    if name not in MODELS:
        return f"unknown model {name!r}; choose from {list(MNIST_MODELS)}"
    return (f"model {name!r} is ImageNet-sized, not for MNIST's {INPUT_SHAPE} images: train "
            f"one of {list(MNIST_MODELS)} (`minicnn summary --model {name}` describes it)")


def _take_run_folder(out):
    """The ``RunFolder`` of ``out``, taken: ours to write (a new or empty folder, or a
    run's), locked, its temporaries removed, writable."""
    folder = RunFolder(out)
    try:
        folder.take()
    except (FolderBusy, ForeignFolder) as err:
        raise UsageError(str(err)) from None
    except OSError as err:
        raise UsageError(f"cannot write to the run folder {out}: {err.strerror or err} "
                         f"(choose another --out)") from None
    return folder


def _plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _train(args, given, lock, state):
    has_checkpoint = os.path.exists(os.path.join(args.out, CHECKPOINT))
    if args.resume:
        if not has_checkpoint:
            raise UsageError(f"--resume: no checkpoint in {args.out!r} (train without --resume "
                             f"first, or point --out at an existing run folder)")
        checkpoint = _or_usage(lambda: read_checkpoint(args.out))   # read once, handed on
        repair_run(args.out, locked=True, checkpoint=checkpoint)   # after a kill mid-write
        saved, done = checkpoint.meta["config"], checkpoint.meta["epoch"]
        # A resumed run keeps its settings; only the total number of epochs may change.
        changed = {k: (saved.get(k), v) for k, v in given.items()
                   if k != "epochs" and saved.get(k) != v}
        if changed:
            raise UsageError("--resume keeps the run's settings, but these differ from it: "
                             + ", ".join(f"--{k.replace('_', '-')} (run: {old!r}, given: {new!r})"
                                         for k, (old, new) in changed.items()))
        total = given.get("epochs", saved["epochs"])
        if total < done:
            raise UsageError(f"--epochs {total}: the run in {args.out} has already trained "
                             f"{_plural(done, 'epoch')}; --epochs is the run's total, counted "
                             f"from its start (give more than {done} to continue it)")
        if total == done:
            print(f"nothing to do: the run in {args.out} has already trained "
                  f"{_plural(done, 'epoch')}; pass --epochs N (a larger total) to continue it")
            return 0
        folder = _data_folder(saved, args.data_dir, args.out)
        data = load_data(saved["dataset"], folder)
        trainer = _or_usage(lambda: Trainer.resume(
            args.out, *data, device=args.device, epochs=given.get("epochs"),
            progress=not args.no_progress, checkpoint=checkpoint))
        trainer.lock, trainer.config.data_dir = lock, folder
        print(f"resuming {args.out} after epoch {trainer.epoch} of {trainer.config.epochs}")
    else:
        if has_checkpoint:
            raise UsageError(f"{args.out!r} already holds a run; pass --resume to continue it "
                             f"or choose another --out")
        config = _or_usage(lambda: TrainConfig(**given).validate())
        config.data_dir = _data_folder(asdict(config), args.data_dir, args.out)
        data = load_data(config.dataset, config.data_dir)
        trainer = _or_usage(lambda: Trainer(config, *data, args.out, device=args.device,
                                            progress=not args.no_progress, lock=lock))
    c = trainer.config
    print(f"training {c.model} on {c.dataset} ({trainer.train_batches.num_samples} images, "
          f"test {trainer.test_batches.num_samples}) for {_plural(c.epochs, 'epoch')} on "
          f"{args.device}: {c.optimizer} lr={c.lr:g}, batch {c.batch_size}, init {c.init}, "
          f"seed {c.seed}" + (", augmented" if c.augment else "")
          + (f", validation {c.validation} held out" if c.validation else "")
          + (f", schedule {c.schedule}" if c.schedule != "none" else ""))
    state["phase"] = "training"
    records = trainer.fit()
    if records:
        print(f"done: test accuracy {100 * records[-1]['test_acc']:.2f}% after epoch "
              f"{records[-1]['epoch']}; run folder {args.out} (minicnn evaluate {args.out})")
    return 0
