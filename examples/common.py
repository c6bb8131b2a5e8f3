"""Shared by the example scripts: a trained model and MNIST images.

``trained_model`` loads a checkpoint when given one; otherwise it trains the
model with minicnn's own Trainer once and caches the run under
``~/.cache/minicnn/example-runs`` so the next script reuses it. The cache key
holds every ``TrainConfig`` setting (model, dataset, epochs, seed, weight
initializer, optimizer, ...), so a change of a default never reuses a stale run.
"""
import dataclasses
import hashlib
import json
import os

from minicnn import load_model
from minicnn.data import default_cache_dir, load_dataset, prepare_images
from minicnn.training import TrainConfig, Trainer
from minicnn.training.run_folder import MODEL, read_settings


def cache_key(config):
    """A folder name for a ``TrainConfig``: its main settings, readable, and a hash of all."""
    settings = json.dumps(dataclasses.asdict(config), sort_keys=True)
    digest = hashlib.sha256(settings.encode()).hexdigest()[:12]
    return (f"{config.dataset}-{config.model}-{config.epochs}ep-seed{config.seed}-"
            f"{config.init}-{digest}")


def add_model_arguments(parser, model, model_help="", out="out",
                        out_help="folder for the figures"):
    """The options every example on a trained model shares: which model, from where,
    the data folder and where figures go (``out=None``: no ``--out``). ``model_from_args``
    gives the model they name."""
    parser.add_argument("--model", default=None,
                        help=f"model name (default {model}; with --checkpoint, the model its "
                             f"run recorded){model_help}")
    parser.set_defaults(default_model=model)
    parser.add_argument("--checkpoint", default=None,
                        help="a model.npz or run folder (default: train for --epochs and cache)")
    parser.add_argument("--epochs", type=int, default=1,
                        help="epochs when no --checkpoint is given (default 1)")
    parser.add_argument("--train-subset", type=int, default=None, metavar="N",
                        help="when no --checkpoint is given: train on the first N training "
                             "images (default all 60,000; e.g. 2000 for a quick look)")
    parser.add_argument("--data-dir", default=None,
                        help="folder holding mnist/ (default: MINICNN_DATA, then download)")
    if out is not None:
        parser.add_argument("--out", default=out, help=f"{out_help} (default {out})")


def model_from_args(args):
    """The model of ``add_model_arguments``' options (see ``model_name`` for ``args.model``)."""
    return trained_model(model_name(args), args.checkpoint, args.data_dir, epochs=args.epochs,
                         train_subset=args.train_subset)


def model_name(args):
    """``args.model``, used in titles and file names: --model, else the model name that
    --checkpoint's run recorded, else the script's default; it is stored back in ``args``."""
    if args.model is None:
        recorded = args.checkpoint and recorded_model_name(args.checkpoint)
        args.model = recorded or args.default_model
    return args.model


def recorded_model_name(checkpoint):
    """The model name in the ``config.json`` of ``checkpoint``'s run folder, or None."""
    folder = checkpoint if os.path.isdir(checkpoint) else os.path.dirname(checkpoint)
    try:
        settings = read_settings(folder) or {}
    except ValueError:                     # a bad config.json: the script's default model
        return None
    model = settings.get("model")
    return model if isinstance(model, str) else None


def trained_model(name="lenet", checkpoint=None, data_dir=None, epochs=1, seed=0,
                  dataset="mnist", train_subset=None, test_subset=None, progress=True):
    """An eval-mode CPU model: from ``checkpoint`` (a ``model.npz`` written by
    ``minicnn.save_model`` or a run folder), or trained for ``epochs`` (on the
    first ``train_subset`` images and tested on the first ``test_subset`` if
    given) with the default settings otherwise (``TrainConfig``) and cached."""
    if checkpoint is not None:
        path = os.path.join(checkpoint, MODEL) if os.path.isdir(checkpoint) else checkpoint
        return load_model(path).eval()
    config = TrainConfig(model=name, dataset=dataset, epochs=epochs, seed=seed,
                         train_subset=train_subset, test_subset=test_subset).validate()
    run_dir = os.path.join(default_cache_dir(), "example-runs", cache_key(config))
    if not os.path.exists(os.path.join(run_dir, MODEL)):
        subset = f" (the first {train_subset} training images)" if train_subset else ""
        print(f"no checkpoint given: training {name} on {dataset}{subset} for {epochs} "
              f"epoch(s) into {run_dir} (cached for later runs)")
        train, test = load_dataset(dataset, data_dir)
        Trainer(config, train, test, run_dir, progress=progress).fit()
    return load_model(os.path.join(run_dir, MODEL)).eval()


def stored_images(split="train", data_dir=None, dataset="mnist"):
    """The images as loaded, uint8 ``(N, 28, 28)``, and labels ``(N,)``: for scans that
    convert one batch at a time (``minicnn.data.prepare_images``)."""
    train, test = load_dataset(dataset, data_dir)
    return train if split == "train" else test


def _normalized(split, n, data_dir, dataset):
    x, y = stored_images(split, data_dir, dataset)
    x, y = x[:n], y[:n]
    return prepare_images(x), y                 # the training scaling and normalization


def test_images(n=None, data_dir=None, dataset="mnist"):
    """Normalized test images float32 ``(n, 1, 28, 28)`` and labels ``(n,)``."""
    return _normalized("test", n, data_dir, dataset)


def train_images(n=None, data_dir=None, dataset="mnist"):
    """Normalized training images float32 ``(n, 1, 28, 28)`` and labels ``(n,)``."""
    return _normalized("train", n, data_dir, dataset)
