"""A folder that belongs to one process at a time.

``FolderLock(folder)`` takes an exclusive operating-system lock (``flock``) on
``folder/.minicnn.lock``. The OS drops the lock when its process exits in any
way, a crash or ``kill -9`` included, so a lock left behind by a dead process
never blocks the next run: the lock *file* stays, but nobody holds it. A
second process asking for a held lock is refused at once (no waiting) with
``FolderBusy``, whose message names the folder and the process that holds it.

Used for run folders (one training at a time) and the download cache (one
download at a time). While it holds the lock, a process may also remove the
``.tmp-*`` files an interrupted ``atomic_write`` left there (only names of
exactly that shape, see ``is_temporary``): no one else can be writing them.
"""
import glob
import os
import re

try:
    import fcntl
except ImportError:            # Windows: byte-range locks from msvcrt instead
    fcntl = None
    import msvcrt

LOCK_FILE = ".minicnn.lock"
TEMP_PATTERN = ".tmp-*"        # what minicnn.files.atomic.atomic_write names its temporary files
TEMP_NAME = re.compile(r"\.tmp-[a-z0-9_]{8}(\.[A-Za-z0-9]{1,8})?")    # exactly, see is_temporary


class FolderBusy(RuntimeError):
    """Another process holds the folder's lock."""


class FolderLock:
    """``with FolderLock(folder, "training run"): ...``; or ``acquire()`` / ``release()``."""

    def __init__(self, folder, what="minicnn process"):
        self.folder, self.what = os.fspath(folder), what
        self.path = os.path.join(self.folder, LOCK_FILE)
        self._fd = None

    def acquire(self):
        os.makedirs(self.folder, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            _lock(fd)
        except OSError:
            holder = _read_pid(fd)
            os.close(fd)
            raise FolderBusy(f"{self.folder} is in use by another {self.what}"
                             f"{f' (process {holder})' if holder else ''}; wait for it to "
                             f"finish or use another folder") from None
        os.ftruncate(fd, 0)                     # say who holds it, for the message above
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self):
        if self._fd is not None:
            os.close(self._fd)                  # closing drops the lock
            self._fd = None

    @property
    def held(self):
        return self._fd is not None

    def __enter__(self):
        return self.acquire()

    def __exit__(self, *exc):
        self.release()


def is_temporary(name):
    """Whether the file name ``name`` is one ``atomic_write`` gives its temporary files:
    ``.tmp-`` and ``tempfile.mkstemp``'s 8 random characters, then the destination's
    suffix (``.tmp-k3j4h5g6.npz``); a user's ``.tmp-notes.txt`` is not."""
    return TEMP_NAME.fullmatch(name) is not None


def remove_stale_temporaries(folder):
    """Delete the temporary files a killed ``atomic_write`` left in ``folder`` (regular
    files named as ``is_temporary`` says, nothing else); call it only while holding the
    folder's ``FolderLock``, in a folder of minicnn's own. Returns their paths."""
    folder, stale = os.fspath(folder), []
    for path in sorted(glob.glob(os.path.join(folder, TEMP_PATTERN))):
        if is_temporary(os.path.basename(path)) and os.path.isfile(path) \
                and not os.path.islink(path):
            try:
                os.remove(path)
                stale.append(path)
            except FileNotFoundError:
                pass
    return stale


def _lock(fd):
    if fcntl is not None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)    # OSError (EWOULDBLOCK) if held
    else:
        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)


def _read_pid(fd):
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 32).decode().strip()
    except OSError:
        return ""
