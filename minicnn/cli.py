"""The ``minicnn`` command: ``train``, ``evaluate`` and ``summary``.

    minicnn train --model lenet --epochs 2 --batch-size 64 --lr 1e-3 --device cpu \\
                  --data-dir DIR --out RUN_DIR --seed 0
    minicnn train --out RUN_DIR --resume [--epochs 4]
    minicnn evaluate RUN_DIR
    minicnn summary --model lenet
    minicnn explore RUN_DIR [--port 7860] [--host 127.0.0.1] [--no-browser]

Exit status: 0 on success, 1 on a usage or input error or a failed write (the
message says what to change), 2 for argparse's own errors (a bad option value),
3 when training diverged (the loss became NaN or infinite, or exploded).
"""
import argparse
import os
import sys
import time
from dataclasses import asdict, fields

from . import __version__
from .atomic import WriteError, check_writable
from .init import INITIALIZERS
from .locks import FolderBusy, FolderLock, remove_stale_temporaries
from .models import MODELS, get_model
from .checkpoint import CHECKPOINT, load_checkpoint_model, read_checkpoint
from .config import RECIPES, SCHEDULES
from .serialization import read_model_file, rebuild
from .validation import BEST
from .train import (DATASETS, INPUT_SHAPE, MNIST_MODELS, OPTIMIZERS, TrainConfig, Trainer,
                    TrainingDiverged, evaluate, make_batches)

CLASS_NAMES = {
    "mnist": [str(d) for d in range(10)],
    "fashion-mnist": ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal",
                      "Shirt", "Sneaker", "Bag", "Ankle boot"],
}
DIVERGED = 3


class UsageError(Exception):
    """A bad argument or a missing input; printed as ``minicnn: error: ...``."""


def build_parser():
    parser = argparse.ArgumentParser(
        prog="minicnn", description="Train and inspect CNNs written from scratch (NumPy/CuPy).")
    parser.add_argument("--version", action="version", version=f"minicnn {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Training options default to None so that --resume can tell which ones were given.
    t = commands.add_parser("train", help="train a model on MNIST or Fashion-MNIST",
                            description="Train a model; a checkpoint is written after each epoch.")
    d = TrainConfig()
    t.add_argument("--model", help=f"one of {', '.join(MNIST_MODELS)} (default {d.model}); "
                   f"the ImageNet-sized models are for `minicnn summary`")
    t.add_argument("--dataset", choices=DATASETS, help=f"(default {d.dataset})")
    t.add_argument("--epochs", type=at_least_one,
                   help=f"total epochs, counted from the run's start (default {d.epochs})")
    t.add_argument("--batch-size", type=at_least_one, help=f"(default {d.batch_size})")
    t.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default {d.optimizer})")
    t.add_argument("--lr", type=float, help=f"learning rate (default {d.lr:g})")
    t.add_argument("--momentum", type=float, help=f"SGD momentum (default {d.momentum})")
    t.add_argument("--beta1", type=float, help=f"Adam's beta1 (default {d.beta1})")
    t.add_argument("--beta2", type=float, help=f"Adam's beta2 (default {d.beta2})")
    t.add_argument("--weight-decay", type=float, metavar="WD",
                   help="L2 penalty (adam, sgd) or decoupled decay (adamw) (default 0)")
    t.add_argument("--schedule", choices=SCHEDULES,
                   help="learning rate over the run, per batch: step (/10 every --step-size "
                        "epochs), cosine (to 0), onecycle (--lr is the peak) (default none)")
    t.add_argument("--warmup", type=float, metavar="EPOCHS",
                   help="linear warm-up before the step or cosine schedule (default 0)")
    t.add_argument("--step-size", type=at_least_one, metavar="EPOCHS",
                   help=f"epochs between the step schedule's drops (default {d.step_size})")
    t.add_argument("--label-smoothing", type=float, metavar="E",
                   help="target (1 - E) one-hot + E / 10, as PyTorch's (default 0)")
    t.add_argument("--recipe", choices=sorted(RECIPES),
                   help="start from named settings: fast = " + ", ".join(
                       f"{k}={v}" for k, v in RECIPES["fast"].items()) + " (options given win)")
    t.add_argument("--seed", type=int, help=f"seeds the weights, shuffling, augmentation and "
                   f"dropout (default {d.seed})")
    t.add_argument("--init", choices=INITIALIZERS, help=f"weight initializer (default {d.init})")
    t.add_argument("--augment", action="store_const", const=True,
                   help="random shifts (up to 2 px) and rotations (up to 10 degrees)")
    t.add_argument("--validation", type=at_least_zero, metavar="N",
                   help="hold N training images out (a seeded random subset, taken before "
                        "--train-subset), evaluate them each epoch and keep the best model "
                        "by their accuracy in RUN_DIR/best.npz (default 0: none)")
    t.add_argument("--train-subset", type=at_least_one, metavar="N",
                   help="train on the first N images (after --validation's are held out)")
    t.add_argument("--test-subset", type=at_least_one, metavar="N",
                   help="evaluate on the first N test images (default: all 10,000)")
    _common(t)
    t.add_argument("--out", metavar="RUN_DIR",
                   help="run folder for checkpoints, metrics and plots "
                        "(default runs/MODEL-DATE-TIME)")
    t.add_argument("--resume", action="store_true",
                   help="continue the run in --out from its last checkpoint; "
                        "--epochs may extend it")
    t.add_argument("--no-progress", action="store_true", help="no progress bar")

    e = commands.add_parser("evaluate", help="test accuracy and confusion matrix of a run",
                            description="Evaluate a run's last checkpoint on the test set; "
                                        "writes RUN_DIR/confusion.png.")
    e.add_argument("run_dirs", metavar="RUN_DIR", nargs="+",
                   help="a run folder; several: also the average of their probabilities")
    e.add_argument("--test-subset", type=at_least_one, metavar="N",
                   help="only the first N test images")
    e.add_argument("--best", action="store_true",
                   help="the run's best model by validation accuracy (RUN_DIR/best.npz, "
                        "trained with --validation) instead of its last checkpoint")
    e.add_argument("--tta", action="store_true",
                   help="also test-time augmentation: the mean over the image and 4 one-pixel "
                        "shifts")
    _common(e)

    s = commands.add_parser("summary", help="layers, output shapes, parameters and MACs")
    s.add_argument("--model", default="lenet", help=f"one of {sorted(MODELS)} (default lenet)")

    from .explore.command import add_arguments as explore_arguments
    explore_arguments(commands.add_parser(
        "explore", help="look inside a run's model in the browser (pip install -e .[explore])",
        description="A local web app on RUN_DIR/model.npz: draw a digit, see its feature "
                    "maps, attribution maps and units."))
    return parser


def at_least_one(text):
    """argparse type: a whole number >= 1 (sizes and counts)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def at_least_zero(text):
    """argparse type: a whole number >= 0 (0: none)."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {value}")
    return value


def _common(p):
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="(default cpu)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder with the dataset files (or with mnist/ and fashion-mnist/); "
                        "default: $MINICNN_DATA, then the download cache")


def main(argv=None):
    """Entry point of the ``minicnn`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    import matplotlib
    matplotlib.use("Agg")    # the CLI only writes figures to files; the library never picks a backend
    try:
        return {"train": cmd_train, "evaluate": cmd_evaluate, "summary": cmd_summary,
                "explore": cmd_explore}[args.command](args)
    except UsageError as err:
        print(f"minicnn {args.command}: error: {err}", file=sys.stderr)
        return 1
    except TrainingDiverged as err:
        print(f"minicnn train: stopped: {err}", file=sys.stderr)
        return DIVERGED
    except WriteError as err:       # a full disk, a folder made read-only mid-run
        print(f"minicnn {args.command}: error: {err}", file=sys.stderr)
        return 1


# -- train ----------------------------------------------------------------------------
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
    lock = _take_run_folder(args.out)      # before any data is loaded or model built
    try:
        return _train(args, given, lock)
    finally:
        lock.release()


def _not_trainable(name):
    if name not in MODELS:
        return f"unknown model {name!r}; choose from {list(MNIST_MODELS)}"
    return (f"model {name!r} is ImageNet-sized, not for MNIST's {INPUT_SHAPE} images: train "
            f"one of {list(MNIST_MODELS)} (`minicnn summary --model {name}` describes it)")


def _take_run_folder(out):
    """The run folder's lock, after checking that the folder can be written, and
    with the temporary files of a killed run removed."""
    try:
        lock = FolderLock(out, "training run").acquire()
    except FolderBusy as err:
        raise UsageError(str(err)) from None
    except OSError as err:
        raise UsageError(f"cannot write to the run folder {out}: {err.strerror or err} "
                         f"(choose another --out)") from None
    try:
        remove_stale_temporaries(out)
        check_writable(out)
    except OSError as err:
        lock.release()
        raise UsageError(f"cannot write to the run folder {out}: {err.strerror or err} "
                         f"(choose another --out)") from None
    return lock


def _plural(n, word):
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _train(args, given, lock):
    has_checkpoint = os.path.exists(os.path.join(args.out, CHECKPOINT))
    if args.resume:
        if not has_checkpoint:
            raise UsageError(f"--resume: no checkpoint in {args.out!r} (train without --resume "
                             f"first, or point --out at an existing run folder)")
        checkpoint = _or_usage(lambda: read_checkpoint(args.out))   # read once, handed on
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
    try:
        records = trainer.fit()
    except KeyboardInterrupt:
        raise UsageError(f"interrupted after epoch {trainer.epoch}; continue with "
                         f"`minicnn train --out {args.out} --resume`") from None
    if records:
        print(f"done: test accuracy {100 * records[-1]['test_acc']:.2f}% after epoch "
              f"{records[-1]['epoch']}; run folder {args.out} (minicnn evaluate {args.out})")
    return 0


def load_data(dataset, data_dir, splits=("train", "test")):
    """``minicnn.data.load_data``, its ``DataError`` (the one line that says what to do)
    printed as a usage error."""
    from .data import DataError
    from .data import load_data as load
    try:
        return load(dataset, data_dir, splits=splits)
    except DataError as err:
        raise UsageError(str(err)) from None


def _data_folder(config, data_dir, run_dir, splits=("train", "test")):
    """The absolute folder to read a run's data from: ``--data-dir`` when given,
    else the folder the run recorded (``config["data_dir"]``), else the usual search
    ($MINICNN_DATA, then the download cache). Only the files of ``splits`` are needed."""
    from .data import DataError, find_data
    recorded = config.get("data_dir") if data_dir is None else None
    try:
        return find_data(config["dataset"], recorded or data_dir, splits=splits)
    except DataError as err:
        if not recorded:
            raise UsageError(str(err)) from None
        raise UsageError(f"the run's data folder {recorded} (recorded in "
                         f"{os.path.join(run_dir, 'config.json')}) no longer serves it: "
                         f"{str(err).removeprefix('--data-dir: ')}; pass --data-dir DIR "
                         f"to read the data from elsewhere") from None


def _or_usage(build):
    """Turn the ValueErrors and RuntimeErrors of bad settings (unknown model, no GPU)
    into UsageErrors."""
    try:
        return build()
    except (ValueError, RuntimeError) as err:
        raise UsageError(str(err)) from None


# -- evaluate -------------------------------------------------------------------------
def cmd_evaluate(args):
    from .reporting import confusion_matrix, format_confusion, plot_confusion
    for run_dir in args.run_dirs:
        if not os.path.isdir(run_dir):
            raise UsageError(f"no run folder {run_dir!r} (make one with "
                             f"`minicnn train --out {run_dir}`)")
    runs = [_or_usage(lambda: _load_run(run_dir, args.device, args.best))
            for run_dir in args.run_dirs]
    configs = [TrainConfig.from_dict(meta["config"]) for _, meta in runs]
    if len({c.dataset for c in configs}) > 1:
        raise UsageError("the runs were trained on different datasets: "
                         + ", ".join(f"{r} ({c.dataset})" for r, c in zip(args.run_dirs, configs)))
    run_dir, (model, meta), config = args.run_dirs[0], runs[0], configs[0]
    folder = _data_folder(meta["config"], args.data_dir, run_dir, splits=("test",))
    [(x_test, y_test)] = load_data(config.dataset, folder, splits=("test",))
    n = args.test_subset
    x_test, y_test = x_test[:n], y_test[:n]
    if len(runs) > 1 or args.tta:
        return _evaluate_averages(args, runs, configs, x_test, y_test)
    batches = make_batches(x_test, y_test, config.eval_batch_size, args.device, False, config)
    result = evaluate(model, batches)
    names = CLASS_NAMES[config.dataset]
    matrix = confusion_matrix(result["labels"], result["predictions"], len(names))
    errors = int((result["labels"] != result["predictions"]).sum())
    print(f"{config.model} on {config.dataset}, {_which(meta)} ({meta['file']})")
    print(f"test accuracy: {100 * result['accuracy']:.2f}%  ({errors} errors in "
          f"{len(result['labels'])} images), test loss {result['loss']:.4f}\n")
    print(format_confusion(matrix, names))
    png = os.path.join(run_dir, "confusion.png")
    plot_confusion(matrix, names, png, title=f"{config.model} on {config.dataset}: "
                   f"{100 * result['accuracy']:.2f}%")
    print(f"\nwrote {png}")
    return 0


def _evaluate_averages(args, runs, configs, x_test, y_test):
    """Each run alone (and with TTA), then the average of all runs' probabilities."""
    from .ensemble import NO_SHIFT, TTA_SHIFTS, accuracy, predict_proba
    views = [("single", NO_SHIFT)] + ([("tta", TTA_SHIFTS)] if args.tta else [])
    total = {name: 0 for name, _ in views}
    print(f"{len(y_test)} test images; accuracy per run" + (" (plain / TTA)" if args.tta else ""))
    for run_dir, (model, meta), config in zip(args.run_dirs, runs, configs):
        scores = []
        for name, shifts in views:
            p = predict_proba(model, x_test, shifts, config.eval_batch_size)
            total[name] = total[name] + p
            scores.append(f"{100 * accuracy(p, y_test):.2f}%")
        print(f"  {run_dir}: {config.model}, {_which(meta)}: {' / '.join(scores)}")
    if len(runs) > 1:
        scores = [f"{100 * accuracy(total[name], y_test):.2f}%" for name, _ in views]
        print(f"average of the {len(runs)} runs' probabilities: {' / '.join(scores)}")
    return 0


def _load_run(run_dir, device, best=False):
    """``(model, meta)``: the run's last checkpoint, or with ``best`` its best-by-validation
    model; ``meta`` holds the run's ``config``, the model's ``epoch`` and ``file``, and
    ``best_model`` (best.npz's section: its validation accuracy) for the best model."""
    if not os.path.exists(os.path.join(run_dir, CHECKPOINT)):
        raise ValueError(f"{run_dir!r} holds no {CHECKPOINT}: no epoch has finished there yet")
    if not best:
        model, meta = load_checkpoint_model(run_dir, device)
        return model, dict(meta, file=os.path.join(run_dir, CHECKPOINT))
    path = os.path.join(run_dir, BEST)
    if not os.path.exists(path):
        raise ValueError(f"{run_dir!r} holds no {BEST}: --best needs a run trained with "
                         f"--validation N (a held-out split to choose the best epoch by)")
    header, state, _ = read_model_file(path)
    if not isinstance(header.get("best"), dict) or "epoch" not in header["best"]:
        raise ValueError(f"{path} is a model file without the 'best' section minicnn train "
                         f"writes there: not a run's best-by-validation model")
    meta = read_checkpoint(run_dir).meta
    return (rebuild(path, header["architecture"], state).to(device),
            dict(config=meta["config"], epoch=header["best"]["epoch"],
                 best_model=header["best"], file=path))


def _which(meta):
    """Which model of the run was loaded, for the printout."""
    if "best_model" not in meta:      # (a checkpoint's own "best" is the best so far)
        return f"after epoch {meta['epoch']}"
    return (f"best by validation, epoch {meta['epoch']} "
            f"(validation accuracy {100 * meta['best_model']['val_acc']:.2f}%)")


# -- summary --------------------------------------------------------------------------
def cmd_summary(args):
    model = _or_usage(lambda: get_model(args.model))
    print(f"{args.model}:")
    print(model.summary())
    return 0


# -- explore --------------------------------------------------------------------------
def cmd_explore(args):
    from .explore.command import run
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
