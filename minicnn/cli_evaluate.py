"""``minicnn evaluate RUN [RUN ...]``: a run's test accuracy and confusion matrix, or the
runs' averaged probabilities and test-time augmentation (see ``minicnn.cli``)."""
import os

from .checkpoint import CHECKPOINT, load_checkpoint_model, read_checkpoint, repair_run
from .cli_common import CLASS_NAMES, UsageError, _data_folder, _or_usage, load_data
from .serialization import read_model_file, rebuild
from .train import TrainConfig, evaluate, make_batches
from .validation import BEST


def cmd_evaluate(args):
    try:
        return _evaluate(args)
    except KeyboardInterrupt:    # while the data loads or the model runs: nothing written
        raise UsageError("interrupted; nothing was written") from None


def _evaluate(args):
    from .reporting import confusion_matrix, format_confusion, plot_confusion
    for run_dir in args.run_dirs:
        if not os.path.isdir(run_dir):
            raise UsageError(f"no run folder {run_dir!r} (make one with "
                             f"`minicnn train --out {run_dir}`)")
        repair_run(run_dir)        # model.npz and best.npz as the checkpoint says
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
    if not os.path.lexists(os.path.join(run_dir, CHECKPOINT)):     # a broken link is named
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
