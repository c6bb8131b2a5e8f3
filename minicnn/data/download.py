"""Downloading files into a folder from a list of mirrors, md5-checked, one process at a time.

Mirrors are base URLs; a file's URL is the base plus its name. They are tried
in order, and a mirror that fails once (refused, timed out, HTTP error, wrong
md5) is skipped for the remaining files of that download, so a dead mirror
costs one timeout, not one per file. Each file is announced (which file, from
where) and shows a tqdm progress bar on a terminal.

``mirror_list`` reads the override: the ``mirrors`` argument, else
``$MINICNN_MIRRORS`` (separated by spaces or commas), else the dataset's own
list. An entry may be an ``http(s)://`` or ``file://`` URL or a local folder
(a university proxy, a copy on a shared disk); ``{name}`` in it stands for the
dataset's name. Whatever the source, a file is kept only if its md5 is the
published one; a ``file://`` path that is not a regular file (a FIFO, ``/dev/zero``)
and a source that sends more than ``MAX_DOWNLOAD_BYTES`` fail that mirror at once.

The destination folder belongs to one process while it downloads
(``minicnn.files.locks.FolderLock``): a second one is refused at once. Holding the
lock, the downloader first removes the ``.tmp-*`` files a killed download
left behind (``remove_stale_temporaries``).
"""
import hashlib
import http.client
import os
import pathlib
import re
import sys
import urllib.parse
import urllib.request

from tqdm.auto import tqdm

from ..files.atomic import atomic_write
from ..files.locks import FolderLock, remove_stale_temporaries
from ..files.regular import NotRegularFile, check_regular

DOWNLOAD_TIMEOUT_S = 30      # seconds one socket operation may take before a mirror is skipped
_CHUNK = 1 << 16
# No dataset file is larger (Fashion-MNIST's biggest is 26 MB): a mirror that streams
# more is cut off and skipped, instead of filling the disk.
MAX_DOWNLOAD_BYTES = 1 << 28


class DownloadError(RuntimeError):
    """No mirror could deliver a file; the message says what to do instead."""


class _MirrorFailed(Exception):
    """A mirror did not deliver (network error, HTTP error, wrong md5); unlike an
    error writing the file here, the next mirror may do better."""


def mirror_list(name, default, mirrors=None):
    """The base URLs to try for dataset ``name``: ``mirrors`` (a list, or a string like
    ``$MINICNN_MIRRORS``), else ``$MINICNN_MIRRORS``, else ``default``. Local folders
    become ``file://`` URLs; every base ends in ``/``."""
    if mirrors is None:
        mirrors = os.environ.get("MINICNN_MIRRORS") or None
    if mirrors is None:
        return list(default)
    if isinstance(mirrors, (str, os.PathLike)):
        mirrors = os.fspath(mirrors).replace(",", " ").split()
    bases = []
    for entry in mirrors:
        entry = os.fspath(entry).replace("{name}", name)
        scheme = re.match(r"([A-Za-z][A-Za-z0-9+.-]+):/", entry)    # (C:/ is a folder)
        if scheme and (scheme[1].lower() not in ("http", "https", "ftp", "file")
                       or "://" not in entry):
            raise ValueError(f"the mirror {entry!r} (MINICNN_MIRRORS or mirrors=) is neither "
                             f"an http://, https://, ftp:// or file:// URL nor a folder")
        if "://" not in entry:
            entry = pathlib.Path(entry).expanduser().resolve().as_uri()
        bases.append(entry if entry.endswith("/") else entry + "/")
    if not bases:
        raise ValueError("the mirror list is empty (MINICNN_MIRRORS or mirrors=)")
    return bases


def download_files(folder, md5s, mirrors, *, title, timeout=None, hint=""):
    """Download into ``folder`` each file of ``md5s`` (name -> md5) that it lacks.

    ``timeout``: seconds per socket operation (default ``DOWNLOAD_TIMEOUT_S``).
    Raises ``DownloadError`` (its message lists each mirror's failure, then
    ``hint``) when every mirror has failed, and ``FolderBusy`` when another
    process is downloading into ``folder``.
    """
    timeout = DOWNLOAD_TIMEOUT_S if timeout is None else timeout
    with FolderLock(folder, "download"):
        stale = remove_stale_temporaries(folder)
        if stale:
            _say(f"removed {len(stale)} unfinished download(s) left in {folder}")
        missing = {f: md5 for f, md5 in md5s.items()        # some may have come meanwhile
                   if not os.path.exists(os.path.join(folder, f))}
        if missing:
            _say(f"{title}: downloading {len(missing)} file(s) into {folder}")
        failed = {}                              # mirror -> why it is skipped from now on
        for fname, md5 in missing.items():
            dest = os.path.join(folder, fname)
            for base in mirrors:
                if base in failed:
                    continue
                url = base + fname
                _say(f"downloading {title} {fname} from {url}")
                try:
                    _download_verified(url, dest, md5, timeout)
                    break
                except _MirrorFailed as err:
                    failed[base] = f"{url}: {err}"
                    _say(f"  failed ({err}); skipping {base} for the remaining files")
            else:
                raise DownloadError(
                    f"could not download {title} file {fname}; tried:\n"
                    + "\n".join(f"  {why}" for why in failed.values()) + f"\n{hint}")


def _download_verified(url, dest, md5, timeout):
    """Stream ``url`` into ``dest`` atomically, keeping it only if its md5 matches:
    an interrupted or wrong download leaves nothing behind."""
    def stream(out):
        digest, received = hashlib.md5(), 0
        _check_local(url)
        response = _from_mirror(_urlopen, url, timeout)
        with response:
            size = getattr(response, "headers", {}).get("Content-Length")
            with tqdm(total=int(size) if size else None, unit="B", unit_scale=True,
                      unit_divisor=1024, desc=os.path.basename(dest), file=sys.stderr,
                      disable=None) as bar:     # disable=None: a bar only on a terminal
                while chunk := _from_mirror(response.read, _CHUNK):
                    received += len(chunk)
                    if received > MAX_DOWNLOAD_BYTES:
                        raise _MirrorFailed(f"sent more than {MAX_DOWNLOAD_BYTES:,} bytes, "
                                            f"more than any dataset file holds")
                    digest.update(chunk)
                    out.write(chunk)
                    bar.update(len(chunk))
        if digest.hexdigest() != md5:   # raising here removes the temporary file
            raise _MirrorFailed(f"md5 mismatch: expected {md5}, got {digest.hexdigest()}")
    atomic_write(dest, stream)


def _check_local(url):
    """A ``file://`` mirror's file must be a regular file: opening a FIFO would block
    for ever, and ``/dev/zero`` would stream without end."""
    if url.startswith("file:"):
        try:
            check_regular(urllib.request.url2pathname(urllib.parse.urlparse(url).path),
                          "mirror file")
        except NotRegularFile as err:
            raise _MirrorFailed(str(err)) from None


def _from_mirror(call, *args):
    """``call(*args)``, its network errors as ``_MirrorFailed``."""
    try:
        return call(*args)
    except (OSError, http.client.HTTPException) as err:
        # URLError, HTTPError, timeouts and refused connections are all OSErrors.
        raise _MirrorFailed(str(err)) from None


def _urlopen(url, timeout):
    """Open ``url`` for reading; the tests replace this with an in-memory fake."""
    return urllib.request.urlopen(url, timeout=timeout)


def _say(line):
    print(line, file=sys.stderr, flush=True)
