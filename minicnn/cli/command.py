"""The ``minicnn`` command: ``train``, ``evaluate``, ``summary`` and ``explore``: the parser and
the dispatch (``train`` lives in ``cli_train.py``, ``evaluate`` in ``cli_evaluate.py``).

    minicnn train --model lenet --epochs 2 --batch-size 64 --lr 1e-3 --device cpu \\
                  --data-dir DIR --out RUN_DIR --seed 0
    minicnn train --out RUN_DIR --resume [--epochs 4]
    minicnn evaluate RUN_DIR            (or a model file: RUN_DIR/model.npz, best.npz, ...)
    minicnn summary --model lenet
    minicnn doctor
    minicnn explore RUN_DIR [--port 7860] [--host 127.0.0.1] [--no-browser]
    minicnn report-card RUN_DIR [--images 300] [--out PATH] [--device gpu]

Exit status: 0 on success, 1 on a usage or input error or a failed write (the
message says what to change), 2 for a bad option value (one line: argparse's errors
and the ranges of ``minicnn.training.config.LIMITS``, which ``TrainConfig.validate`` applies
too), 3 when training diverged (the loss became NaN or infinite, or exploded).
"""
import argparse
import os
import sys

from .. import __version__
from ..files.atomic import WriteError
from ..init import INITIALIZERS
from ..kernels import threads
from ..models import MODELS, get_model
from ..training.config import (DATASETS, MNIST_MODELS, OPTIMIZERS, RECIPES, SCHEDULES, Limits,
                               SettingError, TrainConfig)
from ..training.divergence import TrainingDiverged
from .allocator import keep_freed_memory
from .common import UsageError, _or_usage, number_option
from .evaluate import cmd_evaluate
from .report_card import cmd_report_card
from .train import _config_from_args, _not_trainable, cmd_train

DIVERGED = 3


class Parser(argparse.ArgumentParser):
    """argparse's parser, its errors on one line (``minicnn train: error: argument --lr:
    ...``) without the usage block, which ``--help`` shows. The subcommands' parsers
    are of this class too (``add_subparsers`` makes them of its parser's class)."""

    def error(self, message):
        if message.endswith("expected one argument"):     # argparse took "-1e-3" for an option
            option = message.removeprefix("argument ").split(":")[0].split("/")[-1]
            message += f" (a value that starts with '-' is written {option}=VALUE)"
        self.exit(2, f"{self.prog}: error: {message}\n")


def build_parser():
    parser = Parser(
        prog="minicnn", description="Train and inspect CNNs written from scratch (NumPy/CuPy).")
    parser.add_argument("--version", action="version", version=f"minicnn {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    # Training options default to None so that --resume can tell which ones were given.
    t = commands.add_parser("train", help="train a model on MNIST or Fashion-MNIST",
                            description="Train a model; a checkpoint is written after each epoch.")
    d = TrainConfig()
    t.add_argument("--model", type=model_name(MNIST_MODELS),
                   help=f"one of {', '.join(MNIST_MODELS)} (default {d.model}); "
                        f"the ImageNet-sized models are for `minicnn summary`")
    t.add_argument("--dataset", choices=DATASETS, help=f"(default {d.dataset})")
    t.add_argument("--epochs", type=number_option("epochs"),
                   help=f"total epochs, counted from the run's start (default {d.epochs})")
    t.add_argument("--batch-size", type=number_option("batch_size"),
                   help=f"(default {d.batch_size})")
    t.add_argument("--optimizer", choices=OPTIMIZERS, help=f"(default {d.optimizer})")
    t.add_argument("--lr", type=number_option("lr"), help=f"learning rate (default {d.lr:g})")
    t.add_argument("--momentum", type=number_option("momentum"),
                   help=f"SGD momentum (default {d.momentum})")
    t.add_argument("--beta1", type=number_option("beta1"),
                   help=f"Adam's beta1 (default {d.beta1})")
    t.add_argument("--beta2", type=number_option("beta2"),
                   help=f"Adam's beta2 (default {d.beta2})")
    t.add_argument("--weight-decay", type=number_option("weight_decay"), metavar="WD",
                   help="L2 penalty (adam, sgd) or decoupled decay (adamw) (default 0)")
    t.add_argument("--schedule", choices=SCHEDULES,
                   help="learning rate over the run, per batch: step (/10 every --step-size "
                        "epochs), cosine (to 0), onecycle (--lr is the peak) (default none)")
    t.add_argument("--warmup", type=number_option("warmup"), metavar="EPOCHS",
                   help="linear warm-up before the step or cosine schedule (default 0)")
    t.add_argument("--step-size", type=number_option("step_size"), metavar="EPOCHS",
                   help=f"epochs between the step schedule's drops (default {d.step_size})")
    t.add_argument("--label-smoothing", type=number_option("label_smoothing"), metavar="E",
                   help="target (1 - E) one-hot + E / 10, as PyTorch's (default 0)")
    t.add_argument("--recipe", choices=sorted(RECIPES),
                   help="start from named settings: fast = " + ", ".join(
                       f"{k}={v}" for k, v in RECIPES["fast"].items()) + " (options given win)")
    t.add_argument("--seed", type=number_option("seed"),
                   help=f"seeds the weights, shuffling, augmentation and dropout "
                        f"(default {d.seed})")
    t.add_argument("--init", choices=INITIALIZERS, help=f"weight initializer (default {d.init})")
    t.add_argument("--augment", action="store_const", const=True,
                   help="random shifts (up to 2 px) and rotations (up to 10 degrees)")
    t.add_argument("--validation", type=number_option("validation"), metavar="N",
                   help="hold N training images out (a seeded random subset, taken before "
                        "--train-subset), evaluate them each epoch and keep the best model "
                        "by their accuracy in RUN_DIR/best.npz (default 0: none)")
    t.add_argument("--train-subset", type=number_option("train_subset"), metavar="N",
                   help="train on the first N images (after --validation's are held out)")
    t.add_argument("--test-subset", type=number_option("test_subset"), metavar="N",
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
                            description="Evaluate a run's last checkpoint, or a model file, on "
                                        "the test set; writes RUN_DIR/confusion.png (for a "
                                        "file X.npz: X-confusion.png beside it).")
    e.add_argument("run_dirs", metavar="RUN_DIR", nargs="+",
                   help="a run folder or a model file (RUN_DIR/model.npz, best.npz, a file of "
                        "minicnn.save_model); several: also the average of their probabilities")
    e.add_argument("--dataset", choices=DATASETS,
                   help="for a model file without its run's config.json beside it (default "
                        "mnist); a run's own dataset may not be changed")
    e.add_argument("--test-subset", type=number_option("test_subset"), metavar="N",
                   help="only the first N test images")
    e.add_argument("--best", action="store_true",
                   help="the run's best model by validation accuracy (RUN_DIR/best.npz, "
                        "trained with --validation) instead of its last checkpoint")
    e.add_argument("--tta", action="store_true",
                   help="also test-time augmentation: the mean over the image and 4 one-pixel "
                        "shifts")
    _common(e)

    doctor = commands.add_parser(
        "doctor", help="versions, the kernels each device runs, and every layer checked on "
                       "every engine (start here on a new machine)",
        description="Print the versions, which kernels each device runs, and a table of "
                    "every layer type's forward and backward on every engine: the worst "
                    "relative difference against the reference and the median time.")
    doctor.add_argument("--repeats", type=number_option(Limits(1, 1000, whole=True)),
                        default=5,
                        help="timed runs per layer and engine (default 5)")

    s = commands.add_parser("summary", help="layers, output shapes, parameters and MACs")
    s.add_argument("--model", default="lenet", type=model_name(MODELS),
                   help=f"one of {sorted(MODELS)} (default lenet)")

    from ..explore.command import add_arguments as explore_arguments
    explore_arguments(commands.add_parser(
        "explore", help="look inside a run's model in the browser (pip install -e .[explore])",
        description="A local web app on RUN_DIR/model.npz: draw a digit, see its feature "
                    "maps, attribution maps and units."))

    r = commands.add_parser(
        "report-card", help="every attribution method's sanity, faithfulness and speed on a run",
        description="Sanity check, deletion and insertion AUC, identity residual and time per "
                    "image of every attribution method on RUN_DIR/model.npz; writes "
                    "RUN_DIR/report-card.md and .png (cached in RUN_DIR/report-card-cache/).")
    r.add_argument("run_dir", metavar="RUN_DIR", help="a run folder (made by minicnn train)")
    r.add_argument("--images", type=number_option("test_subset"), default=300, metavar="N",
                   help="the first N test images (default 300)")
    r.add_argument("--sanity-images", type=number_option("test_subset"), default=48,
                   metavar="M",
                   help="the cascading randomization on the first M of them (default 48)")
    r.add_argument("--out", metavar="PATH",
                   help="the markdown file (default RUN_DIR/report-card.md); the figure "
                        "goes beside it with .png")
    r.add_argument("--no-progress", action="store_true", help="no progress bar")
    _common(r)
    return parser


def model_name(known):
    """An argparse type: a model name among ``known`` (``minicnn train``: those for MNIST;
    an ImageNet-sized one is pointed to ``minicnn summary``)."""
    def parse(name):
        if name in known:
            return name
        if known is MNIST_MODELS:
            raise argparse.ArgumentTypeError(_not_trainable(name))
        raise argparse.ArgumentTypeError(f"unknown model {name!r}; choose from {sorted(known)}")
    return parse


def _common(p):
    p.add_argument("--device", choices=("cpu", "gpu"), default="cpu", help="(default cpu)")
    p.add_argument("--data-dir", metavar="DIR",
                   help="folder with the dataset files (or with mnist/ and fashion-mnist/); "
                        "default: $MINICNN_DATA, then the download cache")


def main(argv=None):
    """Entry point of the ``minicnn`` console script; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("choose a command: train, evaluate, summary, explore, report-card or doctor "
                     "(minicnn --help says what each does)")
    if args.command == "train":
        _check_together(args)
    keep_freed_memory()      # a step reuses the last one's memory, no page faults (allocator.py)
    try:
        if args.command != "summary":    # the thread count's settings, before any work
            _or_usage(threads.num_threads)
        status = {"train": cmd_train, "evaluate": cmd_evaluate, "summary": cmd_summary,
                  "explore": cmd_explore, "report-card": cmd_report_card,
                  "doctor": cmd_doctor}[args.command](args)
        sys.stdout.flush()          # a closed pipe is seen here rather than at exit
        return status
    except BrokenPipeError:         # `minicnn ... | head`: the reader stopped; nothing to add
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())   # for exit's flush
        return 1
    except UsageError as err:
        print(f"minicnn {args.command}: error: {err}", file=sys.stderr)
        return 1
    except TrainingDiverged as err:
        print(f"minicnn train: stopped: {err}", file=sys.stderr)
        return DIVERGED
    except WriteError as err:       # a full disk, a folder made read-only mid-run
        print(f"minicnn {args.command}: error: {err}", file=sys.stderr)
        return 1
    except MemoryError as err:      # NumPy's says what it could not allocate
        advice = "; lower --batch-size" if args.command == "train" else ""
        print(f"minicnn {args.command}: error: out of memory ({err}){advice}", file=sys.stderr)
        return 1


def _check_together(args):
    """Settings that are each in range but do not go together (``--warmup`` without
    its schedule, or as long as the run) are bad option values too: checked here by
    ``TrainConfig.validate``, before anything is read or written. (A resumed run
    keeps its own settings; ``cmd_train`` compares them.)"""
    if args.resume:
        return
    given = _config_from_args(args)
    try:
        TrainConfig(**{**RECIPES.get(args.recipe, {}), **given}).validate()
    except SettingError as err:
        option = "--" + err.name.replace("_", "-")
        print(f"minicnn train: error: argument {option}: {err.reason}", file=sys.stderr)
        raise SystemExit(2) from None


# -- summary --------------------------------------------------------------------------
def cmd_summary(args):
    model = _or_usage(lambda: get_model(args.model))
    print(f"{args.model}:")
    print(model.summary())
    return 0


# -- doctor ---------------------------------------------------------------------------
def cmd_doctor(args):
    from .doctor import run
    return run(args.repeats)


# -- explore --------------------------------------------------------------------------
def cmd_explore(args):
    from ..explore.command import run
    return run(args)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
