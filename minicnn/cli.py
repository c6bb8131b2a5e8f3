"""The ``minicnn`` command: ``train``, ``evaluate``, ``summary`` and ``explore``: the parser and
the dispatch (``train`` lives in ``cli_train.py``, ``evaluate`` in ``cli_evaluate.py``).

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
import sys

from . import __version__
from .allocator import keep_freed_memory
from .atomic import WriteError
from .cli_common import UsageError, _or_usage
from .cli_evaluate import cmd_evaluate
from .cli_train import cmd_train
from .config import RECIPES, SCHEDULES
from .init import INITIALIZERS
from .models import MODELS, get_model
from .train import DATASETS, MNIST_MODELS, OPTIMIZERS, TrainConfig, TrainingDiverged

DIVERGED = 3


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


def whole_number(minimum):
    """An argparse type: a whole number >= ``minimum`` (1 for sizes and counts, 0 where 0
    means none)."""
    def parse(text):
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a whole number >= {minimum}, got {text!r}") from None
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {value}")
        return value
    return parse


at_least_one, at_least_zero = whole_number(1), whole_number(0)


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
    keep_freed_memory()      # a step reuses the last one's memory, no page faults (allocator.py)
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
