"""``minicnn evaluate RUN_DIR|MODEL_FILE [...]``: a run's (or a model file's) test accuracy and
confusion matrix, or the average of several models' probabilities and test-time augmentation
(see ``minicnn.cli.command``).

A run folder gives its last checkpoint (``--best``: its ``best.npz``). A model file
(``RUN/model.npz``, ``RUN/best.npz``, a checkpoint, or any file ``minicnn.save_model``
wrote) holds the architecture and the weights; its dataset and data folder come from the
run's settings when there are any (a checkpoint's header, else ``config.json`` beside the
file), else from ``--dataset`` (default mnist) and the usual search for the data.
"""
import os
from typing import NamedTuple

import numpy as np

from ..files.model_files import read_model_file, rebuild
from ..training.checkpoint import load_checkpoint_model, read_checkpoint, repair_run
from ..training.config import INPUT_SHAPE, TrainConfig
from ..training.ensemble import NO_SHIFT, TTA_SHIFTS, accuracy, predict_proba
from ..training.run_folder import BEST, CHECKPOINT, read_settings
from .common import CLASS_NAMES, UsageError, _data_folder, _or_usage, load_data


class Loaded(NamedTuple):
    """A model to evaluate: ``settings`` is the run's config as recorded (a dict; only
    ``{"dataset": ...}`` for a file of no run), ``which`` says which model it is."""
    model: object
    settings: dict
    name: str
    which: str
    file: str
    folder: str
    confusion_png: str

    @property
    def config(self):
        return TrainConfig.from_dict(self.settings)


def cmd_evaluate(args):
    try:
        return _evaluate(args)
    except KeyboardInterrupt:    # while the data loads or the model runs: nothing written
        raise UsageError("interrupted; nothing was written") from None


def _evaluate(args):
    from ..training.reporting import confusion_matrix, format_confusion, plot_confusion
    runs = [_or_usage(lambda: _load(path, args)) for path in args.run_dirs]
    if len({r.config.dataset for r in runs}) > 1:
        raise UsageError("the runs were trained on different datasets: "
                         + ", ".join(f"{p} ({r.config.dataset})"
                                     for p, r in zip(args.run_dirs, runs)))
    first, config = runs[0], runs[0].config
    folder = _data_folder(first.settings, args.data_dir, first.folder, splits=("test",))
    [(x_test, y_test)] = load_data(config.dataset, folder, splits=("test",))
    n = args.test_subset
    x_test, y_test = x_test[:n], y_test[:n]
    if len(runs) > 1 or args.tta:
        return _evaluate_averages(args, runs, x_test, y_test)
    # the one route to test predictions: softmax probabilities, as for ensembles and TTA
    p = predict_proba(first.model, x_test, NO_SHIFT, config.eval_batch_size)   # (N, K)
    labels = np.asarray(y_test)
    predictions = p.argmax(axis=1)
    correct = float((predictions == labels).mean())
    true_class = p[np.arange(len(labels)), labels]
    loss = float(-np.log(np.maximum(true_class, np.finfo(np.float64).tiny)).mean())
    names = CLASS_NAMES[config.dataset]
    matrix = confusion_matrix(labels, predictions, len(names))
    errors = int((labels != predictions).sum())
    print(f"{first.name} on {config.dataset}, {first.which} ({first.file})")
    print(f"test accuracy: {100 * correct:.2f}%  ({errors} errors in {len(labels)} images), "
          f"test loss {loss:.4f}\n")
    print(format_confusion(matrix, names))
    plot_confusion(matrix, names, first.confusion_png, title=f"{first.name} on "
                   f"{config.dataset}: {100 * correct:.2f}%")
    print(f"\nwrote {first.confusion_png}")
    return 0


def _evaluate_averages(args, runs, x_test, y_test):
    """Each model alone (and with TTA), then the average of all models' probabilities."""
    views = [("single", NO_SHIFT)] + ([("tta", TTA_SHIFTS)] if args.tta else [])
    total = {name: 0 for name, _ in views}
    print(f"{len(y_test)} test images; accuracy per run" + (" (plain / TTA)" if args.tta else ""))
    for path, run in zip(args.run_dirs, runs):
        scores = []
        for name, shifts in views:
            p = predict_proba(run.model, x_test, shifts, run.config.eval_batch_size)
            total[name] = total[name] + p
            scores.append(f"{100 * accuracy(p, y_test):.2f}%")
        print(f"  {path}: {run.name}, {run.which}: {' / '.join(scores)}")
    if len(runs) > 1:
        scores = [f"{100 * accuracy(total[name], y_test):.2f}%" for name, _ in views]
        print(f"average of the {len(runs)} runs' probabilities: {' / '.join(scores)}")
    return 0


def _load(path, args):
    """The ``Loaded`` model of a run folder or a model file, checked against the dataset."""
    if os.path.isdir(path):
        repair_run(path)           # model.npz and best.npz as the checkpoint says
        run = _load_run(path, args.device, args.best)
    elif not os.path.exists(path):
        raise ValueError(f"no run folder or model file {path!r}")
    elif args.best:
        folder = os.path.dirname(path) or "."
        raise ValueError(f"--best picks RUN_DIR/{BEST} of a run folder, and {path} is a file: "
                         f"evaluate {os.path.join(folder, BEST)} itself, or give the folder "
                         f"{folder}")
    else:
        run = _load_file(path, args.device, args.dataset)
    trained_on = run.settings.get("dataset", TrainConfig.dataset)
    if trained_on not in CLASS_NAMES:
        raise ValueError(f"{run.file}: its run's dataset {trained_on!r} is none of "
                         f"{sorted(CLASS_NAMES)}")
    if args.dataset is not None and args.dataset != trained_on:
        raise ValueError(f"--dataset {args.dataset}, but {path} was trained on {trained_on}")
    _check_fits(run.model, run.file, trained_on)
    return run


def _load_run(run_dir, device, best=False):
    """A run's last checkpoint, or with ``best`` its best-by-validation model."""
    if not os.path.lexists(os.path.join(run_dir, CHECKPOINT)):     # a broken link is named
        raise ValueError(f"{run_dir!r} holds no {CHECKPOINT}: no epoch has finished there yet")
    png = os.path.join(run_dir, "confusion.png")
    if not best:
        model, meta = load_checkpoint_model(run_dir, device)
        return Loaded(model, meta["config"], meta["config"]["model"],
                      f"after epoch {meta['epoch']}", os.path.join(run_dir, CHECKPOINT), run_dir,
                      png)
    path = os.path.join(run_dir, BEST)
    if not os.path.exists(path):
        raise ValueError(f"{run_dir!r} holds no {BEST}: --best needs a run trained with "
                         f"--validation N (a held-out split to choose the best epoch by)")
    header, state, _ = read_model_file(path)
    if not isinstance(header.get("best"), dict) or "epoch" not in header["best"]:
        raise ValueError(f"{path} is a model file without the 'best' section minicnn train "
                         f"writes there: not a run's best-by-validation model")
    settings = read_checkpoint(run_dir).meta["config"]
    return Loaded(rebuild(path, header["architecture"], state).to(device), settings,
                  settings["model"], _best_text(header["best"]), path, run_dir, png)


def _load_file(path, device, dataset):
    """A model file, with its run's settings when it has or sits beside them."""
    header, state, _ = read_model_file(path)
    model = rebuild(path, header["architecture"], state).to(device)
    folder = os.path.dirname(path) or "."
    training = header.get("checkpoint")
    settings = training.get("config") if isinstance(training, dict) else None
    settings = settings if isinstance(settings, dict) else read_settings(folder)
    if isinstance(training, dict) and "epoch" in training:
        which = f"after epoch {training['epoch']}"
    elif isinstance(header.get("best"), dict) and "val_acc" in header["best"]:
        which = _best_text(header["best"])
    else:
        which = "model file"
    name = (settings or {}).get("model") or os.path.basename(path)
    settings = settings or {"dataset": dataset or TrainConfig.dataset}
    png = os.path.splitext(path)[0] + "-confusion.png"
    return Loaded(model, settings, name, which, path, folder, png)


def _check_fits(model, path, dataset):
    """A model made for other images or another number of classes is refused in one line."""
    shape = getattr(model, "input_shape", None)
    if shape is not None and tuple(shape) != INPUT_SHAPE:
        raise ValueError(f"{path} is a model for inputs of shape {tuple(shape)}, and "
                         f"{dataset}'s images are {INPUT_SHAPE}: not a model for this dataset")
    classes = len(CLASS_NAMES[dataset])
    outputs = model.output_shape(INPUT_SHAPE)
    if tuple(outputs) != (classes,):
        shown = outputs[0] if len(outputs) == 1 else outputs
        raise ValueError(f"{path} gives {shown} outputs per image, and {dataset} has "
                         f"{classes} classes: not a model for this dataset")


def _best_text(best):
    """The printout for a best-by-validation model (its header's ``best`` section)."""
    return (f"best by validation, epoch {best['epoch']} "
            f"(validation accuracy {100 * best['val_acc']:.2f}%)")
