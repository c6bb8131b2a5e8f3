"""A run folder's report card: ``write_run_card`` runs ``report_card`` on ``RUN_DIR/model.npz``
and writes ``RUN_DIR/report-card.md`` and ``report-card.png``.

``minicnn report-card`` and the explorer's "compute the report card" button both call it,
so they make the same card and share one cache, ``RUN_DIR/report-card-cache/`` (each
method's numbers keyed by the weights, the images and the settings: a second card is
fast). The run folder's lock (``minicnn.files.locks``) is held throughout: the card reads the
run's model and writes into its folder, which must not happen while ``minicnn train``
writes new weights there (the card would describe a model that is gone), nor beside a
second card (a second explorer, or the command).
"""
import datetime
import os
import time
from dataclasses import dataclass

from ..files.atomic import atomic_write, check_writable
from ..files.locks import FolderLock, remove_stale_temporaries
from ..training.run_folder import CONFIG, MODEL, read_settings

CARD, CACHE = "report-card.md", "report-card-cache"
IMAGES, SANITY_IMAGES = 300, 48        # the first N test images; sanity on the first M


class CardError(ValueError):
    """The run cannot be carded (no model, no config.json, no GPU); ``str(err)`` is one line."""


@dataclass
class CardWritten:
    """What ``write_run_card`` wrote: the two files, its wall ``seconds``, how many of
    the ``methods`` were read from the ``cache`` folder (``RUN_DIR/report-card-cache/KEY``)."""
    out: str
    png: str
    seconds: float
    cached: int
    methods: int
    cache: str


def write_run_card(run_dir, test_images, test_labels, images=IMAGES,
                   sanity_images=SANITY_IMAGES, device="cpu", out=None, progress=None,
                   log=print):
    """Write the card of ``run_dir``'s model on the first ``images`` of ``test_images``
    (uint8 ``(N, 28, 28)``, the run's dataset's test set; ``test_labels (N,)`` for the
    accuracy line), the sanity check on the first ``sanity_images``, to ``out`` (default
    ``RUN_DIR/report-card.md``) and the ``.png`` beside it; returns a ``CardWritten``.

    ``progress(done, total, name)`` is called before each method; ``log(line)`` says an
    unreadable cache file. Raises ``CardError`` for a run that cannot be carded,
    ``minicnn.files.locks.FolderBusy`` while another process holds the run folder and
    ``minicnn.files.atomic.WriteError`` where ``out`` cannot be written, each one line.
    """
    out = out or os.path.join(run_dir, CARD)
    check_writable(os.path.dirname(os.path.abspath(out)))
    with FolderLock(run_dir, "minicnn process"):
        remove_stale_temporaries(run_dir)
        config, model = run_config(run_dir), _load(run_dir, device)
        return _write(run_dir, config, model, test_images, test_labels, images, sanity_images,
                      device, out, progress, log)


def _write(run_dir, config, model, test_images, test_labels, n, m, device, out, progress, log):
    from ..backend import as_numpy, to_device
    from ..data import prepare_images
    from ..kernels.threads import num_threads
    from ..viz import class_probabilities
    from .report_card import SETTINGS, card_key, card_methods, report_card
    from .report_card_page import draw_card, format_card
    from .sanity import parameter_layers
    n = min(n, len(test_images))
    x = to_device(prepare_images(test_images[:n]), device)
    m = min(m, n)
    names = list(card_methods(model))
    key = card_key(model, x, m, SETTINGS, device)
    counted = None if progress is None else _counting(progress, len(names))
    start, cpu, read = time.perf_counter(), time.process_time(), []
    report = report_card(model, x, os.path.join(run_dir, CACHE), m, SETTINGS, device,
                         progress=counted, log=log, from_cache=read)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    predicted = as_numpy(class_probabilities(model, x)).argmax(axis=1)
    accuracy = float((predicted == test_labels[:n]).mean())
    stages = ["trained"] + [f"up to {i} {type(model.layers[i]).__name__}"
                            for i in parameter_layers(model)[::-1]]
    header = [f"# Report card: {config.get('model', 'model')} in `{run_dir}`", "",
              f"- model: `{os.path.join(run_dir, MODEL)}` (weights and settings key `{key}`), "
              f"{100 * accuracy:.2f}% on these {n} images",
              f"- images: the first {n} test images of {config['dataset']}, each explained "
              f"for its predicted class; sanity on the first {m}",
              f"- settings: {', '.join(f'{k}={v}' for k, v in SETTINGS.items())}",
              f"- made {datetime.datetime.now().isoformat(timespec='seconds')} on "
              f"{device} ({num_threads()} minicnn threads) in {seconds:.0f} s wall, "
              f"{cpu:.0f} s of CPU time; "
              f"{len(read)} of {len(names)} methods read from the cache (their times are from "
              f"the run that computed them)"]
    text = format_card(report, header)
    atomic_write(out, lambda f: f.write(text.encode()))
    png = os.path.splitext(out)[0] + ".png"
    draw_card(report, stages, f"report card: {config.get('model', 'model')}, {n} test images",
              path=png)
    return CardWritten(out, png, seconds, len(read), len(names),
                       os.path.join(run_dir, CACHE, key))


def _counting(progress, total):
    """``progress(done, total, name)`` as ``report_card``'s ``progress(name)``."""
    done = iter(range(total))
    return lambda name: progress(next(done), total, name)


def _load(run_dir, device):
    from .. import load_model
    from ..backend import check_device
    try:
        check_device(device)
        return load_model(os.path.join(run_dir, MODEL)).to(device)
    except (ValueError, RuntimeError) as err:      # a bad file, no GPU: one line each
        raise CardError(str(err)) from None


def run_config(run_dir):
    """``RUN_DIR/config.json`` as a dict with a ``"dataset"``; ``CardError`` otherwise."""
    path = os.path.join(run_dir, CONFIG)
    try:
        config = read_settings(run_dir)
    except ValueError as err:
        raise CardError(f"{err}: the card needs the run's dataset") from None
    if config is None or "dataset" not in config:
        raise CardError(f"{path} {'names no dataset' if config else 'is missing'}: "
                        f"is {run_dir!r} a folder made by `minicnn train`?")
    return config


__all__ = ["write_run_card", "run_config", "CardWritten", "CardError", "CARD", "CACHE",
           "IMAGES", "SANITY_IMAGES"]
