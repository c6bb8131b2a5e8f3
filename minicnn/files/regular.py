"""Opening the files minicnn reads: regular files only.

A FIFO where a data file, model file or checkpoint is expected would block its reader
for ever (opening a FIFO waits for a writer), and ``/dev/zero`` would feed it without
end. ``open_regular`` opens without blocking (``O_NONBLOCK``), then asks the open file
what it is (``fstat``), so nothing can be swapped in between the check and the read; a
FIFO, a device or a socket raises ``NotRegularFile`` (a ``ValueError`` whose message
names the path and what it is) at once, a folder ``IsADirectoryError`` as ``open``
does. Links are followed: a link to a regular file is a regular file.
"""
import errno
import os
import stat

KINDS = ((stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
         (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))


class NotRegularFile(ValueError):
    """A path names something other than a regular file; the message says what."""


def kind(mode):
    """What a ``st_mode`` other than a regular file's is, in words."""
    return next((name for test, name in KINDS if test(mode)), "not a regular file")


def not_regular(path, mode, what="file"):
    return NotRegularFile(f"{os.fspath(path)} is {kind(mode)}, not a regular file: minicnn "
                          f"reads a {what} only from a regular file (replace it with one)")


def open_regular(path, what="file"):
    """``path`` opened for reading (binary), if it is a regular file; else
    ``NotRegularFile`` at once. ``FileNotFoundError``, ``PermissionError`` and
    ``IsADirectoryError`` are raised as ``open`` raises them. ``what`` names the
    expected file in the message ("model file")."""
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_BINARY", 0)
    fd = os.open(os.fspath(path), flags)
    try:
        mode = os.fstat(fd).st_mode
        if stat.S_ISDIR(mode):             # as open() says it
            raise IsADirectoryError(errno.EISDIR, os.strerror(errno.EISDIR), os.fspath(path))
        if not stat.S_ISREG(mode):
            raise not_regular(path, mode, what)
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)      # a regular file: back to ordinary reads
        f = os.fdopen(fd, "rb")
        f.raw.name = os.fspath(path)       # as open() names it (not the descriptor)
        return f
    except BaseException:
        os.close(fd)
        raise


def check_regular(path, what="file"):
    """Raise ``NotRegularFile`` if ``path`` exists and is not a regular file (following
    links), without opening it; for a check before something else opens it."""
    try:
        mode = os.stat(os.fspath(path)).st_mode
    except OSError:
        return
    if not stat.S_ISREG(mode):
        raise not_regular(path, mode, what)
