"""The progress of one training epoch, shown while it runs (stderr).

On a terminal: a tqdm bar with the running mean loss, the running accuracy and
the speed. In a log (stderr redirected to a file or a pipe): a plain line about
every tenth of the epoch, instead of a bar redrawn hundreds of times.
"""
import sys


class EpochProgress:
    """One epoch's progress on stderr: a tqdm bar on a terminal; in a log (stderr is
    not a terminal) a plain line about every tenth of the epoch, not a bar redrawn
    hundreds of times. ``update`` takes the running mean loss and accuracy."""

    def __init__(self, total, desc, enabled):
        from tqdm import tqdm
        self.stream, self.total, self.desc = sys.stderr, total, desc
        terminal = enabled and getattr(self.stream, "isatty", lambda: False)()
        self.lines = enabled and not terminal
        self.next_line = 1                               # in tenths of the epoch
        self.bar = tqdm(total=total, desc=desc, unit="batch", disable=not terminal,
                        leave=False, dynamic_ncols=True, file=self.stream)

    def update(self, done, loss, accuracy, images_per_s):
        values = dict(loss=f"{loss:.4f}", acc=f"{100 * accuracy:.2f}%",
                      img_s=f"{images_per_s:.0f}")
        if not self.bar.disable:
            self.bar.set_postfix(values, refresh=False)
            self.bar.update(done - self.bar.n)
            if done == self.total:
                self.bar.refresh()                       # the epoch's final mean is shown
        if self.lines and (10 * done >= self.next_line * self.total or done == self.total):
            self.next_line = 10 * done // self.total + 1
            print(f"{self.desc}: {done}/{self.total} batches, loss {loss:.4f}, "
                  f"acc {100 * accuracy:.2f}%, {images_per_s:.0f} images/s",
                  file=self.stream, flush=True)

    def close(self):
        self.bar.close()
