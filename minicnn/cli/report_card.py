"""``minicnn report-card RUN_DIR``: every attribution method's sanity, faithfulness, identity
residual and speed on a run's model (``minicnn.studies.report_card``), written to
``RUN_DIR/report-card.md`` and ``report-card.png`` (or ``--out PATH`` and the ``.png``
beside it). Each method's numbers are cached in ``RUN_DIR/report-card-cache/``, keyed by
the weights and the settings, so a second card of the same run is fast.

The run folder's lock (``minicnn.files.locks``) is held throughout: the card reads the run's
model and writes into its folder, which must not happen while ``minicnn train`` is
writing new weights there (the card would describe a model that is gone by the time it
is written), nor beside another report card.
"""
import datetime
import json
import os
import sys
import time

from ..files.atomic import atomic_write, check_writable
from ..files.locks import FolderBusy, FolderLock, remove_stale_temporaries
from ..training.run_folder import CONFIG, MODEL
from .common import UsageError, _data_folder, _or_usage, load_data

CARD, CACHE = "report-card.md", "report-card-cache"


def cmd_report_card(args):
    run_dir = args.run_dir
    if not os.path.exists(os.path.join(run_dir, MODEL)):
        raise UsageError(f"no {MODEL} in {run_dir!r}: pass a run folder made by "
                         f"`minicnn train --out RUN_DIR` (after its first epoch)")
    out = args.out or os.path.join(run_dir, CARD)
    png = os.path.splitext(out)[0] + ".png"
    check_writable(os.path.dirname(os.path.abspath(out)))
    try:
        lock = FolderLock(run_dir, "minicnn process").acquire()
    except FolderBusy as err:
        raise UsageError(str(err)) from None
    try:
        remove_stale_temporaries(run_dir)
        return _write_card(args, run_dir, out, png)
    finally:
        lock.release()


def _write_card(args, run_dir, out, png):
    from ..backend import as_numpy, to_device
    from ..data import prepare_images
    from ..kernels.threads import num_threads
    from ..studies.report_card import SETTINGS, card_key, card_methods, report_card
    from ..studies.report_card_page import draw_card, format_card
    from ..studies.sanity import parameter_layers
    from ..viz import class_probabilities
    model = _or_usage(lambda: _load(run_dir, args.device))
    config = _config(run_dir)
    folder = _data_folder(config, args.data_dir, run_dir, splits=("test",))
    [(images, labels)] = load_data(config["dataset"], folder, splits=("test",))
    n = min(args.images, len(images))
    x = to_device(prepare_images(images[:n]), args.device)
    m = min(args.sanity_images, n)
    names = list(card_methods(model))
    cache = os.path.join(run_dir, CACHE)
    key = card_key(model, x, m, SETTINGS, args.device)
    bar, start, cpu = _progress(len(names), not args.no_progress), time.perf_counter(), \
        time.process_time()
    read = []
    card = report_card(model, x, cache, m, SETTINGS, args.device, progress=bar.step,
                       log=lambda line: print(line, file=sys.stderr), from_cache=read)
    cached = len(read)
    bar.close()
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    predicted = as_numpy(class_probabilities(model, x)).argmax(axis=1)
    accuracy = float((predicted == labels[:n]).mean())
    top_down = parameter_layers(model)[::-1]
    stages = ["trained"] + [f"up to {i} {type(model.layers[i]).__name__}" for i in top_down]
    header = [f"# Report card: {config.get('model', 'model')} in `{run_dir}`", "",
              f"- model: `{os.path.join(run_dir, MODEL)}` (weights and settings key `{key}`), "
              f"{100 * accuracy:.2f}% on these {n} images",
              f"- images: the first {n} test images of {config['dataset']}, each explained "
              f"for its predicted class; sanity on the first {m}",
              f"- settings: {', '.join(f'{k}={v}' for k, v in SETTINGS.items())}",
              f"- made {datetime.datetime.now().isoformat(timespec='seconds')} on "
              f"{args.device} ({num_threads()} minicnn threads) in {seconds:.0f} s wall, "
              f"{cpu:.0f} s of CPU time; "
              f"{cached} of {len(names)} methods read from the cache (their times are from "
              f"the run that computed them)"]
    text = format_card(card, header)
    atomic_write(out, lambda f: f.write(text.encode()))
    draw_card(card, stages, f"report card: {config.get('model', 'model')}, {n} test images",
              path=png)
    print(f"wrote {out} and {png} ({seconds:.0f} s; {cached} of {len(names)} methods from "
          f"the cache in {os.path.join(cache, key)})")
    return 0


def _load(run_dir, device):
    from .. import load_model
    from ..backend import check_device
    check_device(device)
    return load_model(os.path.join(run_dir, MODEL)).to(device)


def _config(run_dir):
    path = os.path.join(run_dir, CONFIG)
    try:
        with open(path) as f:
            config = json.load(f)
    except (OSError, ValueError) as err:
        raise UsageError(f"cannot read {path} ({err}): the card needs the run's dataset; "
                         f"is {run_dir!r} a folder made by `minicnn train`?") from None
    if not isinstance(config, dict) or "dataset" not in config:
        raise UsageError(f"{path} names no dataset: not a run folder made by `minicnn train`")
    return config


class _progress:
    """A tqdm bar over the methods on a terminal; a line per method in a log."""

    def __init__(self, total, enabled):
        from tqdm import tqdm
        terminal = enabled and getattr(sys.stderr, "isatty", lambda: False)()
        self.lines, self.done, self.total = enabled and not terminal, 0, total
        self.bar = tqdm(total=total, desc="report card", unit="method", disable=not terminal,
                        file=sys.stderr, dynamic_ncols=True, leave=False)

    def step(self, name):
        if self.done:
            self.bar.update(1)
        self.done += 1
        self.bar.set_postfix_str(name)
        if self.lines:
            print(f"report card: method {self.done}/{self.total}: {name}", file=sys.stderr,
                  flush=True)

    def close(self):
        self.bar.update(self.total - self.bar.n)
        self.bar.close()
