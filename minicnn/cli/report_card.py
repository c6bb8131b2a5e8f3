"""``minicnn report-card RUN_DIR``: every attribution method's sanity, faithfulness, identity
residual and speed on a run's model (``minicnn.studies.report_card``), written to
``RUN_DIR/report-card.md`` and ``report-card.png`` (or ``--out PATH`` and the ``.png``
beside it). Each method's numbers are cached in ``RUN_DIR/report-card-cache/``, keyed by
the weights and the settings, so a second card of the same run is fast.

The card itself is ``minicnn.studies.report_card_run.write_run_card``, which the explorer's
button calls too (one cache, one code path); it holds the run folder's lock
(``minicnn.files.locks``) throughout, so a run still training is refused in one line. This module
finds the run's test images and shows the progress.
"""
import os
import sys

from ..training.run_folder import MODEL
from .common import UsageError, _data_folder, _or_usage, load_data


def cmd_report_card(args):
    from ..files.locks import FolderBusy
    from ..studies.report_card_run import CardError, run_config, write_run_card
    run_dir = args.run_dir
    if not os.path.exists(os.path.join(run_dir, MODEL)):
        raise UsageError(f"no {MODEL} in {run_dir!r}: pass a run folder made by "
                         f"`minicnn train --out RUN_DIR` (after its first epoch)")
    config = _or_usage(lambda: run_config(run_dir))
    folder = _data_folder(config, args.data_dir, run_dir, splits=("test",))
    [(images, labels)] = load_data(config["dataset"], folder, splits=("test",))
    bar = _progress(not args.no_progress)
    try:
        done = write_run_card(run_dir, images, labels, args.images, args.sanity_images,
                              args.device, args.out, progress=bar.step,
                              log=lambda line: print(line, file=sys.stderr))
    except (CardError, FolderBusy) as err:
        raise UsageError(str(err)) from None
    finally:
        bar.close()
    print(f"wrote {done.out} and {done.png} ({done.seconds:.0f} s; {done.cached} of "
          f"{done.methods} methods from the cache in {done.cache})")
    return 0


class _progress:
    """A tqdm bar over the methods on a terminal; a line per method in a log."""

    def __init__(self, enabled):
        from tqdm import tqdm
        terminal = enabled and getattr(sys.stderr, "isatty", lambda: False)()
        self.lines = enabled and not terminal
        self.bar = tqdm(total=0, desc="report card", unit="method", disable=not terminal,
                        file=sys.stderr, dynamic_ncols=True, leave=False)

    def step(self, done, total, name):
        self.bar.total = total
        self.bar.update(done - self.bar.n)
        self.bar.set_postfix_str(name)
        if self.lines:
            print(f"report card: method {done + 1}/{total}: {name}", file=sys.stderr,
                  flush=True)

    def close(self):
        self.bar.update(self.bar.total - self.bar.n)
        self.bar.close()
