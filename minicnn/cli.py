"""The ``minicnn`` command: ``train``, ``evaluate`` and ``summary``.

    minicnn train --model lenet --epochs 2 --batch-size 64 --lr 1e-3 --device cpu \\
                  --data-dir DIR --out RUN_DIR --seed 0
    minicnn train --out RUN_DIR --resume [--epochs 4]
    minicnn evaluate RUN_DIR
    minicnn summary --model lenet
    minicnn explore RUN_DIR [--port 7860] [--host 127.0.0.1] [--no-browser]

Exit status: 0 on success, 1 on a usage or input error (the message says
what to change), 2 for argparse's own errors, 3 when training diverged (NaN loss).
"""
import argparse
import os
import sys
import time
from dataclasses import fields

from .init import INITIALIZERS
from .models import MODELS, get_model
from .train import (CHECKPOINT, DATASETS, OPTIMIZERS, TrainConfig, Trainer, TrainingDiverged,
                    evaluate, load_checkpoint_model, make_batches, read_checkpoint)

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
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    # Training options default to None so that --resume can tell which ones were given.
    t = commands.add_parser("train", help="train a model on MNIST or Fashion-MNIST",
                            description="Train a model; a checkpoint is written after each epoch.")
    d = TrainConfig()
    t.add_argument("--model", help=f"one of {sorted(MODELS)} (default {d.model})")
    t.add_argument("--dataset", choices=DATASETS, help=f"(default {d.dataset})")
    t.add_argument("--epochs", type=int, help=f"total epochs (default {d.epochs})")
    t.add_argument("--batch-size", type=int, help=f"(default {d.batch_size})")
    t.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default {d.optimizer})")
    t.add_argument("--lr", type=float, help=f"learning rate (default {d.lr:g})")
    t.add_argument("--momentum", type=float, help=f"SGD momentum (default {d.momentum})")
    t.add_argument("--seed", type=int, help=f"seeds the weights, shuffling, augmentation and "
                   f"dropout (default {d.seed})")
    t.add_argument("--init", choices=INITIALIZERS, help=f"weight initializer (default {d.init})")
    t.add_argument("--augment", action="store_const", const=True,
                   help="random shifts (up to 2 px) and rotations (up to 10 degrees)")
    t.add_argument("--train-subset", type=int, metavar="N", help="train on the first N images")
    t.add_argument("--test-subset", type=int, metavar="N",
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
    e.add_argument("run_dir", metavar="RUN_DIR")
    e.add_argument("--test-subset", type=int, metavar="N", help="only the first N test images")
    _common(e)

    s = commands.add_parser("summary", help="layers, output shapes, parameters and MACs")
    s.add_argument("--model", default="lenet", help=f"one of {sorted(MODELS)} (default lenet)")

    from .explore.command import add_arguments as explore_arguments
    explore_arguments(commands.add_parser(
        "explore", help="look inside a run's model in the browser (pip install -e .[explore])",
        description="A local web app on RUN_DIR/model.npz: draw a digit, see its feature "
                    "maps, attribution maps and units."))
    return parser


def _common(p):
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="(default cpu)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder with the dataset files (or with mnist/ and fashion-mnist/); "
                        "default: $MINICNN_DATA, then the download cache")


def main(argv=None):
    """Entry point of the ``minicnn`` console script; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        return {"train": cmd_train, "evaluate": cmd_evaluate, "summary": cmd_summary,
                "explore": cmd_explore}[args.command](args)
    except UsageError as err:
        print(f"minicnn {args.command}: error: {err}", file=sys.stderr)
        return 1
    except TrainingDiverged as err:
        print(f"minicnn train: stopped: {err}", file=sys.stderr)
        return DIVERGED


# -- train ----------------------------------------------------------------------------
def _config_from_args(args):
    """The options given on the command line, by TrainConfig field name."""
    names = [f.name for f in fields(TrainConfig)]
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def cmd_train(args):
    given = _config_from_args(args)
    if args.out is None:
        if args.resume:
            raise UsageError("--resume needs --out RUN_DIR: the run folder to continue")
        args.out = os.path.join("runs", f"{given.get('model', TrainConfig.model)}-"
                                        f"{time.strftime('%Y%m%d-%H%M%S')}")
    has_checkpoint = os.path.exists(os.path.join(args.out, CHECKPOINT))
    if args.resume:
        if not has_checkpoint:
            raise UsageError(f"--resume: no checkpoint in {args.out!r} (train without --resume "
                             f"first, or point --out at an existing run folder)")
        saved = read_checkpoint(args.out)[0]["config"]
        # A resumed run keeps its settings; only the total number of epochs may change.
        changed = {k: (saved.get(k), v) for k, v in given.items()
                   if k != "epochs" and saved.get(k) != v}
        if changed:
            raise UsageError("--resume keeps the run's settings, but these differ from it: "
                             + ", ".join(f"--{k.replace('_', '-')} (run: {old!r}, given: {new!r})"
                                         for k, (old, new) in changed.items()))
        data = load_data(saved["dataset"], args.data_dir)
        trainer = _or_usage(lambda: Trainer.resume(
            args.out, *data, device=args.device, epochs=given.get("epochs"),
            progress=not args.no_progress))
        print(f"resuming {args.out} after epoch {trainer.epoch} of {trainer.config.epochs}")
    else:
        if has_checkpoint:
            raise UsageError(f"{args.out!r} already holds a run; pass --resume to continue it "
                             f"or choose another --out")
        config = _or_usage(lambda: TrainConfig(**given).validate())
        data = load_data(config.dataset, args.data_dir)
        trainer = _or_usage(lambda: Trainer(config, *data, args.out, device=args.device,
                                            progress=not args.no_progress))
    c = trainer.config
    print(f"training {c.model} on {c.dataset} ({trainer.train_batches.num_samples} images, "
          f"test {trainer.test_batches.num_samples}) for {c.epochs} epochs on {args.device}: "
          f"{c.optimizer} lr={c.lr:g}, batch {c.batch_size}, init {c.init}, seed {c.seed}"
          + (", augmented" if c.augment else ""))
    try:
        records = trainer.fit()
    except KeyboardInterrupt:
        raise UsageError(f"interrupted after epoch {trainer.epoch}; continue with "
                         f"`minicnn train --out {args.out} --resume`") from None
    if records:
        print(f"done: test accuracy {100 * records[-1]['test_acc']:.2f}% after epoch "
              f"{records[-1]['epoch']}; run folder {args.out} (minicnn evaluate {args.out})")
    return 0


def load_data(dataset, data_dir):
    """``(train, test)`` for a dataset name; a missing folder becomes a UsageError with a hint."""
    from .data import load_dataset
    if data_dir is not None and not os.path.isdir(data_dir):
        raise UsageError(f"--data-dir {data_dir!r} is not a folder; pass --data-dir DIR "
                         f"(a folder with the dataset files or with {dataset}/ inside) "
                         f"or set MINICNN_DATA")
    try:
        return load_dataset(dataset, root=data_dir)
    except (OSError, ValueError, RuntimeError) as err:  # not found, no network, corrupt files
        hint = "" if "--data-dir" in str(err) else (
            f"\n(pass --data-dir DIR or set MINICNN_DATA to a folder holding {dataset}/)")
        raise UsageError(f"{err}{hint}") from None


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
    if not os.path.isdir(args.run_dir):
        raise UsageError(f"no run folder {args.run_dir!r} (make one with "
                         f"`minicnn train --out {args.run_dir}`)")
    model, meta = _or_usage(lambda: _load_run(args.run_dir, args.device))
    config = TrainConfig.from_dict(meta["config"])
    _, (x_test, y_test) = load_data(config.dataset, args.data_dir)
    n = args.test_subset
    batches = make_batches(x_test[:n], y_test[:n], config.eval_batch_size, args.device,
                           False, config)
    result = evaluate(model, batches)
    names = CLASS_NAMES[config.dataset]
    matrix = confusion_matrix(result["labels"], result["predictions"], len(names))
    errors = int((result["labels"] != result["predictions"]).sum())
    print(f"{config.model} on {config.dataset}, after epoch {meta['epoch']} "
          f"({os.path.join(args.run_dir, CHECKPOINT)})")
    print(f"test accuracy: {100 * result['accuracy']:.2f}%  ({errors} errors in "
          f"{len(result['labels'])} images), test loss {result['loss']:.4f}\n")
    print(format_confusion(matrix, names))
    png = os.path.join(args.run_dir, "confusion.png")
    plot_confusion(matrix, names, png, title=f"{config.model} on {config.dataset}: "
                   f"{100 * result['accuracy']:.2f}%")
    print(f"\nwrote {png}")
    return 0


def _load_run(run_dir, device):
    if not os.path.exists(os.path.join(run_dir, CHECKPOINT)):
        raise ValueError(f"{run_dir!r} holds no {CHECKPOINT}: no epoch has finished there yet")
    return load_checkpoint_model(run_dir, device)


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
