"""A run folder is the user's choice of folder: when minicnn may write into it, and what
it leaves there when a run fails before its first checkpoint.

minicnn writes only into a folder that is **new**, **empty**, or **a run folder of its
own**: one that holds nothing but the files a run writes (``RUN_FILES``, and the
temporary files of a killed write), or one that holds ``.minicnn.lock`` together with a
run's ``checkpoint.npz``, ``config.json`` or ``metrics.jsonl`` (files of the user's
beside those are left alone). Any other folder is refused (``ForeignFolder``) before
anything is written there, the lock file included, and only files named as
``minicnn.files.locks.is_temporary`` says are ever cleaned up.

``RunFolder(out).take()`` checks the folder, takes its lock (``minicnn.files.locks``) and
notes what was there; ``abandon()`` after a run that failed before its first checkpoint
removes what the run added (and the folders the run made), nothing else.
``write_settings`` and ``read_settings`` are the one writer and reader of a run's
``config.json``.
"""
import json
import os

from ..files.atomic import atomic_write, check_writable
from ..files.locks import LOCK_FILE, FolderLock, is_temporary, remove_stale_temporaries

CHECKPOINT, MODEL, BEST = "checkpoint.npz", "model.npz", "best.npz"
METRICS, CURVES, CONFIG = "metrics.jsonl", "curves.png", "config.json"
# Everything a run (train, evaluate, explore) writes into its folder.
RUN_FILES = (CHECKPOINT, MODEL, BEST, METRICS, CURVES, CONFIG, "confusion.png", "explore",
             LOCK_FILE)


JSON_KINDS = {"list": "array", "str": "string", "int": "number", "float": "number",
              "bool": "boolean", "NoneType": "null"}


def write_settings(folder, settings):
    """``settings`` (a dict) as ``folder/config.json``, indented JSON, atomically."""
    text = json.dumps(settings, indent=2) + "\n"
    atomic_write(os.path.join(os.fspath(folder), CONFIG), lambda f: f.write(text.encode()))


def read_settings(folder):
    """The run's settings, ``folder/config.json``, as a dict; ``None`` when there is no
    such file. A file that cannot be read, or holds no JSON object, raises ``ValueError``
    in one line naming it."""
    path = os.path.join(os.fspath(folder), CONFIG)
    try:
        with open(path, encoding="utf-8") as f:
            settings = json.load(f)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as err:         # UnicodeDecodeError is a ValueError
        reason = (str(err).splitlines() or [""])[0] or type(err).__name__
        raise ValueError(f"{path} cannot be read as a run's settings ({reason}): mend it, "
                         f"or remove it") from None
    if not isinstance(settings, dict):
        kind = JSON_KINDS.get(type(settings).__name__, "value")
        raise ValueError(f"{path} holds a JSON {kind}, not a run's settings (a JSON object): "
                         f"mend it, or remove it")
    return settings


class ForeignFolder(ValueError):
    """``--out`` names a file, or a folder that holds files but no run of minicnn's."""


def check_run_folder(folder):
    """Raise ``ForeignFolder`` (one line) unless minicnn may write into ``folder``
    (see the module docstring); a folder that does not exist yet may be made."""
    folder = os.fspath(folder)
    if not folder:
        raise ForeignFolder("--out is empty: give the run folder a name (e.g. runs/lenet-1)")
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise ForeignFolder(f"--out {folder} is a file, not a folder: choose a new or empty "
                            f"folder for the run")
    if not os.path.isdir(folder):
        return
    entries = sorted(os.listdir(folder))
    if all(e in RUN_FILES or is_temporary(e) for e in entries):
        return                                   # empty, or only a run's files
    if LOCK_FILE in entries and {CHECKPOINT, CONFIG, METRICS} & set(entries):
        return                                   # a run, with files of the user's beside it
    others = [e for e in entries if e not in RUN_FILES and not is_temporary(e)]
    shown = ", ".join(repr(e) for e in others[:3]) + (", ..." if len(others) > 3 else "")
    raise ForeignFolder(f"--out {folder} holds files that are not a minicnn run ({shown}): "
                        f"minicnn writes only into a new or empty folder or a run folder of "
                        f"its own, and leaves this one untouched; choose another --out")


class RunFolder:
    """``RunFolder(out).take()`` ... ``release()``; ``abandon()`` after a failed start."""

    def __init__(self, path, what="training run"):
        self.path = os.fspath(path)
        self.lock = FolderLock(self.path, what)
        self.made, self.before = [], set()       # folders this run makes, deepest first

    def take(self):
        """Check the folder is ours to write (``ForeignFolder``), take its lock
        (``FolderBusy``), remove our temporaries and check it can be written
        (``OSError``); returns ``self``. Nothing is left behind when this fails."""
        check_run_folder(self.path)
        folder = os.path.abspath(self.path)
        while not os.path.lexists(folder):       # runs/lenet-...: maybe runs/ too
            self.made.append(folder)
            folder = os.path.dirname(folder)
        self.before = set() if self.made else set(os.listdir(self.path))
        try:
            self.lock.acquire()
        except BaseException:                    # busy or unwritable: touch nothing more
            _remove_empty(self.made)
            raise
        try:
            remove_stale_temporaries(self.path)
            check_writable(self.path)
        except BaseException:
            self.abandon()
            raise
        return self

    def release(self):
        self.lock.release()

    def abandon(self):
        """After a run that wrote no checkpoint: remove the files it added (the run's
        own names only) and the folders the run made, if empty; release the lock first.
        A folder holding a checkpoint is left alone."""
        self.release()
        if not os.path.isdir(self.path) or os.path.exists(os.path.join(self.path, CHECKPOINT)):
            return
        added = [e for e in os.listdir(self.path) if e not in self.before
                 and (e in RUN_FILES or is_temporary(e)) and e != LOCK_FILE]
        for name in added + ([LOCK_FILE] if LOCK_FILE not in self.before else []):
            path = os.path.join(self.path, name)
            if os.path.isfile(path) and not os.path.islink(path):     # the lock file last
                os.remove(path)
        _remove_empty(self.made)


def _remove_empty(folders):
    """Remove ``folders`` (deepest first) that are still empty; stop at the first that is
    not (something else came meanwhile)."""
    for folder in folders:
        try:
            os.rmdir(folder)
        except OSError:
            return
