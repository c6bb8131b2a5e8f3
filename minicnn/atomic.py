"""Writing a file so that a reader (or a crash) never sees half of it.

``atomic_write`` writes into a temporary file in the destination's folder and
renames it over the destination: within one folder ``os.replace`` is atomic, so
the destination is either the old file, absent, or the complete new one.
Checkpoints, saved models, run logs, figures and downloads all go through it.
"""
import os
import tempfile


def atomic_write(path, write):
    """Call ``write(file)`` on a temporary binary file next to ``path``, then rename
    it to ``path``. If ``write`` raises (a failed checksum, Ctrl-C), the temporary
    file is removed and ``path`` is left as it was."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    suffix = os.path.splitext(path)[1]   # some writers (matplotlib) go by the suffix
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=suffix)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())         # the bytes are on disk before the rename
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual mode
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise


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
