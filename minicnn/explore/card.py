"""The report card on the explorer's page: ``RUN_DIR/report-card.md`` when it exists, and a
``CardJob`` that computes it in a background thread on request.

The job calls the command's own function, ``studies.report_card_run.write_run_card``:
the page and ``minicnn report-card`` make the same card, share its cache
(``RUN_DIR/report-card-cache/``, so a card the command began is finished fast here and
the other way round) and take the same lock, the run folder's. A second explorer, or the
command, running at the same time is refused in one line (shown on the page) instead of
writing beside it. The card loads its own copy of the model from ``RUN_DIR/model.npz``:
the page's passes never interleave with it.
"""
import os
import threading
import time

from ..files.atomic import WriteError
from ..files.locks import FolderBusy
from ..studies.report_card_run import (CACHE, CARD, IMAGES, SANITY_IMAGES, CardError,
                                       write_run_card)
from .scan import lower_priority


def read_card(run_dir):
    """``RUN_DIR/report-card.md`` as Markdown for the page (its headings two levels down,
    under the page's own), ``None`` when there is none, or one line saying why it cannot
    be read."""
    path = os.path.join(run_dir, CARD)
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as err:
        return f"**{path} cannot be read** ({getattr(err, 'strerror', None) or err})"
    return "\n".join("##" + line if line.startswith("#") else line
                     for line in text.splitlines())


class CardJob:
    """``CardJob(run_dir, (test_images, test_labels)).start()`` computes the card of the
    first ``images`` test images (sanity on ``sanity_images``) in a thread, once at a
    time; ``state`` is "idle", "running", "done" or "failed", ``message`` one line about
    the last run, ``progress()`` ``(done, total, method)`` and ``seconds()`` the time
    since it started (or its run time, once done)."""

    def __init__(self, run_dir, test_data, device="cpu", images=IMAGES,
                 sanity_images=SANITY_IMAGES):
        self.run_dir, self.test_data, self.device = run_dir, test_data, device
        self.images, self.sanity_images = images, sanity_images
        self.state, self.message, self.notes = "idle", "", []
        self._progress, self._started, self._ended = (0, 0, ""), None, None
        self._guard = threading.Lock()
        self.thread = None

    def start(self):
        """Start the card unless it is running; whether it started."""
        with self._guard:
            if self.state == "running":
                return False
            self.state, self.message, self._progress = "running", "", (0, 0, "starting")
            self._started, self._ended = time.perf_counter(), None
            self.thread = threading.Thread(target=self._run, name="minicnn-explore-card",
                                           daemon=True)
            self.thread.start()
            return True

    def progress(self):
        return self._progress

    def seconds(self):
        if self._started is None:
            return 0.0
        return (self._ended or time.perf_counter()) - self._started

    def _run(self):
        lower_priority()
        try:
            written = write_run_card(self.run_dir, *self.test_data, self.images,
                                     self.sanity_images, self.device,
                                     progress=self._step, log=self.notes.append)
            message, state = (f"written in {written.seconds:.0f} s ({written.cached} of "
                              f"{written.methods} methods from the cache "
                              f"{os.path.join(self.run_dir, CACHE)})"), "done"
        except (CardError, FolderBusy, WriteError) as err:
            message, state = str(err), "failed"
        except Exception as err:           # said on the page; the page keeps working
            message, state = f"{type(err).__name__}: {err}", "failed"
        self._ended = time.perf_counter()
        self.message, self.state = message, state

    def _step(self, done, total, name):
        self._progress = (done, total, name)


__all__ = ["CardJob", "read_card", "CARD", "CACHE"]
