"""Writing a file so that a reader (or a crash) never sees half of it.

``atomic_write`` writes into a temporary file in the destination's folder and
renames it over the destination: within one folder ``os.replace`` is atomic, so
the destination is either the old file, absent, or the complete new one.
Checkpoints, saved models, run logs, figures and downloads all go through it.

A write that fails (a full disk, a read-only folder) raises ``WriteError``, an
``OSError`` whose message names the file; the temporary file is removed and the
destination keeps its previous content. A process killed mid-write leaves its
``.tmp-*`` file behind: ``minicnn.files.locks.remove_stale_temporaries`` clears those
on the next start. Files that belong together are written with ``atomic_write_all``
(all temporaries first, then the renames back to back) inside
``interrupts_deferred`` (Ctrl-C and SIGTERM wait until the renames are done).
"""
import contextlib
import os
import signal
import tempfile
import threading

TEMP_PREFIX = ".tmp-"


class WriteError(OSError):
    """A file could not be written; ``str(err)`` is one line naming it."""

    def __str__(self):
        return self.strerror


def write_error(path, err):
    """``err`` (an ``OSError`` met while writing ``path``) as a ``WriteError``."""
    if isinstance(err, WriteError):
        return err
    reason = err.strerror or str(err) or type(err).__name__
    return WriteError(err.errno, f"could not write {os.fspath(path)}: {reason}")


def atomic_write(path, write):
    """Call ``write(file)`` on a temporary binary file next to ``path``, then rename
    it to ``path``. If ``write`` raises (a failed checksum, Ctrl-C, a full disk), the
    temporary file is removed and ``path`` is left as it was; an ``OSError``
    becomes a ``WriteError`` naming ``path``."""
    atomic_write_all([(path, write)])


def atomic_write_all(writes):
    """``atomic_write`` for files that belong together (a checkpoint and its model):
    every ``(path, write)`` of ``writes`` goes into its temporary file first, and only
    when all are complete are they renamed, in the given order, back to back, so the
    window in which some are new and some old is a few renames wide. A failure before
    the renames leaves every destination as it was. Wrap the call in
    ``interrupts_deferred`` so that Ctrl-C cannot land in that window either."""
    staged = []                          # (temporary, destination), in order
    try:
        for path, write in writes:
            path = os.fspath(path)
            staged.append((_write_temporary(path, write), path))
        for i, (tmp, path) in enumerate(staged):
            try:
                os.replace(tmp, path)
            except OSError as err:
                raise write_error(path, err) from None
            staged[i] = (None, path)
    finally:
        for tmp, _ in staged:            # what was not renamed (a failure, an exception)
            if tmp is not None and os.path.exists(tmp):
                os.remove(tmp)


def _write_temporary(path, write):
    """``write(file)`` into a new complete temporary file next to ``path`` (on disk,
    with the usual mode); returns its name, or removes it and raises."""
    folder = os.path.dirname(os.path.abspath(path))
    suffix = os.path.splitext(path)[1]   # some writers (matplotlib) go by the suffix
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix=suffix)
    except OSError as err:
        raise write_error(path, err) from None
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())         # the bytes are on disk before the rename
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        return tmp
    except BaseException as err:
        if os.path.exists(tmp):
            os.remove(tmp)
        if isinstance(err, OSError):
            raise write_error(path, err) from None
        raise


@contextlib.contextmanager
def interrupts_deferred(signals=("SIGINT", "SIGTERM")):
    """Hold Ctrl-C (SIGINT) and SIGTERM until the block ends, then deliver them as they
    would have been: for writes that must happen together. Only the main thread can
    handle signals; elsewhere (and for a signal that is ignored, or whose handler is not
    Python's to restore) the block runs as it is."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received, previous = [], {}
    for name in signals:
        number = getattr(signal, name, None)
        if number is not None and signal.getsignal(number) not in (None, signal.SIG_IGN):
            previous[number] = signal.signal(number, lambda n, _: received.append(n))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for number in dict.fromkeys(received):
            signal.raise_signal(number)


def check_writable(folder):
    """Make ``folder`` if needed and write (then delete) a small file there; raise
    ``WriteError`` naming the folder if that fails. For a check before long work."""
    folder = os.fspath(folder)
    try:
        os.makedirs(folder, exist_ok=True)
        fd, probe = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX)
        try:
            os.write(fd, b"minicnn")
            os.fsync(fd)
        finally:
            os.close(fd)
            os.remove(probe)
    except OSError as err:
        reason = err.strerror or str(err)
        raise WriteError(err.errno, f"cannot write to the folder {folder}: {reason}") from None


def save_figure(fig, path, dpi=100, **options):
    """Write a matplotlib ``Figure`` to ``path`` atomically, in the format its suffix
    names (``.png`` if none), unless ``path`` is None; ``options`` go to
    ``fig.savefig``. Returns ``fig``, so a drawing function ends in
    ``return save_figure(fig, path)``.

    The one way minicnn saves a figure: nothing here touches pyplot or the
    backend, so drawing functions can return their figure for a notebook too.
    """
    if path is not None:
        fmt = os.path.splitext(os.fspath(path))[1][1:].lower() or "png"
        atomic_write(path, lambda f: fig.savefig(f, format=fmt, dpi=dpi, **options))
    return fig


def _umask():
    mask = os.umask(0)     # the only way to read it is to set it
    os.umask(mask)
    return mask
