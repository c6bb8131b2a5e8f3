"""MNIST and Fashion-MNIST: find the files, download them if needed, check them.

Both datasets come as four gzip'ed IDX files (``FILES``), two per split
(``SPLIT_FILES``); a loader asked for some ``splits`` needs and reads only
theirs (``splits=("test",)``: the two ``t10k-*`` files). Each file may also be
there unpacked (``train-images-idx3-ubyte``, no ``.gz``); the ``.gz`` wins when
both are. The folder is the first of:

1. the ``root`` argument (the CLI's ``--data-dir``): a folder holding the
   files directly, or one with ``mnist/`` / ``fashion-mnist/`` inside;
2. ``$MINICNN_DATA``, with the same two layouts;
3. the cache ``~/.cache/minicnn/<name>`` (``$MINICNN_CACHE/<name>`` or the
   ``cache_dir`` argument move it);
4. system folders (Debian installs Fashion-MNIST in
   ``/usr/share/datasets/fashion-mnist``).

A ``root`` or a ``MINICNN_DATA`` that was given but does not hold the files is
an error naming the folder (and the variable), never a quiet fall-back to a
download. When nothing is found and ``download=True``, the missing files are
downloaded into the cache (``minicnn.data.download``: mirrors, their override
``MINICNN_MIRRORS`` / ``mirrors=``, the lock, the progress bar); a file only
appears in the cache once complete and its published md5 checked.

Checks of local files: MNIST ``.gz`` files against their published md5s;
unpacked MNIST files against the md5 of the published files' unpacked bytes
(``unpacked_md5``, computed from files that match the published md5s).
Debian recompressed its Fashion-MNIST files, so their md5s differ from the
published ones and nothing is published for the unpacked bytes: local
Fashion-MNIST files, packed or not, are checked by their IDX headers and sizes
(downloads are still md5-checked). Both datasets get the shape and label
checks. Only a file in the download cache is worth deleting to download it
again; a bad file in the user's own folder must be replaced.
"""
import hashlib
import os

import numpy as np

from .download import DownloadError, download_files, mirror_list  # noqa: F401 (DownloadError: re-exported)
from .idx import parse_idx, read_idx_bytes

# role -> file name; the same four names for both datasets.
FILES = {
    "train_images": "train-images-idx3-ubyte.gz",
    "train_labels": "train-labels-idx1-ubyte.gz",
    "test_images": "t10k-images-idx3-ubyte.gz",
    "test_labels": "t10k-labels-idx1-ubyte.gz",
}
SPLITS = ("train", "test")
SPLIT_FILES = {split: (FILES[f"{split}_images"], FILES[f"{split}_labels"]) for split in SPLITS}
SIZES = {"train": 60000, "test": 10000}  # images per split, both datasets
IMAGE_SHAPE = (28, 28)
NUM_CLASSES = 10

DATASETS = {
    "mnist": {
        "title": "MNIST",
        "mirrors": [
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        "md5": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
        # md5 of each published .gz file's unpacked bytes (computed from files that
        # match the published md5s above), to check a folder of unpacked files.
        "unpacked_md5": {
            "train-images-idx3-ubyte": "6bbc9ace898e44ae57da46a324031adb",
            "train-labels-idx1-ubyte": "a25bea736e30d166cdddb491f175f624",
            "t10k-images-idx3-ubyte": "2646ac647ad5339dbf082846283269ea",
            "t10k-labels-idx1-ubyte": "27ae3e4e09519cfbb04c329615203637",
        },
        "check_local_md5": True,
        "system_dirs": [],
    },
    "fashion-mnist": {
        "title": "Fashion-MNIST",
        "mirrors": [
            "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/",
            "https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/master/data/fashion/",
        ],
        "md5": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
        # Debian's recompressed copies have other md5s: check headers and sizes.
        "unpacked_md5": {},
        "check_local_md5": False,
        "system_dirs": ["/usr/share/datasets/fashion-mnist"],
    },
}


class DatasetError(ValueError):
    """A dataset file exists but its content is wrong (checksum, shape, labels)."""


class ChecksumError(DatasetError):
    """A file's md5 is not the published one."""


class DataError(Exception):
    """``load_data`` could not hand out the data; the one message says why and what to do."""


def load_mnist(root=None, download=True, **options):
    """MNIST digits as ``(x_train, y_train), (x_test, y_test)``.

    ``x_*``: uint8 ``(N, 28, 28)``, 0 = background; ``y_*``: int64 ``(N,)`` in
    0..9; N = 60000 for train, 10000 for test. See the module docstring for
    where the files are looked for and how they are checked; ``options`` are
    ``load_dataset``'s.
    """
    return load_dataset("mnist", root, download, **options)


def load_fashion_mnist(root=None, download=True, **options):
    """Fashion-MNIST (10 kinds of clothing), same layout as ``load_mnist``."""
    return load_dataset("fashion-mnist", root, download, **options)


def load_dataset(name, root=None, download=True, *, cache_dir=None, splits=SPLITS,
                 mirrors=None, timeout=None):
    """``"mnist"`` or ``"fashion-mnist"``: one ``(x, y)`` pair per split in ``splits``,
    in that order (see ``load_mnist`` for the arrays). Only the files of those
    splits are looked for and read: ``splits=("test",)`` needs just the two
    ``t10k-*`` files. ``mirrors`` (a list of URLs or folders) replaces the
    download mirrors, ``timeout`` (seconds) how long a silent mirror is waited for."""
    splits = _check_splits(splits)
    folder, in_cache = _resolve(name, root, download, cache_dir, splits, mirrors, timeout)
    pairs = []
    for split in splits:
        x, y = (_read_checked(name, _locate(folder, f), in_cache) for f in SPLIT_FILES[split])
        _check_split(name, folder, split, x, y)
        pairs.append((x, y.astype(np.int64)))
    return tuple(pairs)


def load_data(dataset, data_dir=None, *, splits=SPLITS):
    """``load_dataset(dataset, data_dir, splits=splits)`` for a command line or a
    notebook: every way it can fail (no such folder, files missing or corrupt, no
    network, the cache busy) is one ``DataError`` whose message says what to do."""
    return _or_data_error(load_dataset, dataset, data_dir, splits)


def find_data(dataset, data_dir=None, *, splits=SPLITS):
    """The absolute folder ``load_data`` reads (``find_dataset``, downloading if
    needed), its failures as ``DataError``: what a run records to find its data again."""
    return _or_data_error(find_dataset, dataset, data_dir, splits)


def _or_data_error(function, dataset, data_dir, splits):
    try:
        return function(dataset, data_dir, splits=splits)
    except (OSError, ValueError, RuntimeError) as err:
        message = str(err)
        if data_dir is not None and isinstance(err, FileNotFoundError):
            message = (f"--data-dir: {message} (without --data-dir, minicnn reads "
                       f"$MINICNN_DATA, then the download cache)")
        raise DataError(message) from None


def default_cache_dir():
    """``$MINICNN_CACHE`` if set, else ``~/.cache/minicnn``."""
    return os.environ.get("MINICNN_CACHE") or os.path.join(
        os.path.expanduser("~"), ".cache", "minicnn")


def find_dataset(name, root=None, download=True, *, cache_dir=None, splits=SPLITS,
                 mirrors=None, timeout=None):
    """The absolute path of the folder that holds the files ``splits`` of ``name``
    need, downloading them into the cache if needed (see the module docstring for
    the order); the arguments are ``load_dataset``'s."""
    return _resolve(name, root, download, cache_dir, _check_splits(splits), mirrors,
                    timeout)[0]


def _resolve(name, root, download, cache_dir, splits, mirrors, timeout):
    """``(folder, in_cache)``: the absolute folder, and whether it is the download cache
    (the only folder whose bad files may be deleted to download them again)."""
    spec = _spec(name)
    needed = [f for split in splits for f in SPLIT_FILES[split]]
    if root is not None:
        return os.path.abspath(_given_folder(name, root, needed)), False
    if os.environ.get("MINICNN_DATA"):      # a setting is used or refused, never skipped
        folder = _given_folder(name, os.environ["MINICNN_DATA"], needed, "MINICNN_DATA")
        return os.path.abspath(folder), False
    cache = os.path.abspath(_cache_folder(name, cache_dir))
    for folder in [cache, *spec["system_dirs"]]:
        if not _missing(folder, needed):
            return os.path.abspath(folder), folder == cache
    if not download:
        raise FileNotFoundError(
            f"{spec['title']} not found (looked in {', '.join([cache, *spec['system_dirs']])})"
            f" and download=False. {_how_to_provide(name)}")
    download_dataset(name, cache, files=needed, mirrors=mirrors, timeout=timeout)
    return cache, True


def _given_folder(name, root, needed, variable=None):
    """``root`` itself or ``root/name``, whichever holds the ``needed`` files; else a
    FileNotFoundError naming the folder, the missing files and the ``variable`` (if
    the folder came from one)."""
    title, root = _spec(name)["title"], os.fspath(root)
    sub = os.path.join(root, name)
    for folder in (root, sub):
        if not _missing(folder, needed):
            return folder
    described = sub if os.path.isdir(sub) else root
    missing = _missing(described, needed)
    if not os.path.isdir(root):
        problem = (f"{root!r} is not a folder (expected one that holds the {title} files, "
                   f"or its subfolder {name}/)")
    elif len(missing) < len(needed):
        problem = (f"{title} in {described!r} is incomplete: missing {', '.join(missing)} "
                   f"(.gz or unpacked)")
    else:
        problem = (f"{title} not found in {root!r}: expected the files {', '.join(needed)} "
                   f"(.gz or unpacked) there or in its subfolder {name}/")
    if variable is None:
        raise FileNotFoundError(problem)
    raise FileNotFoundError(f"{variable}: {problem}; correct {variable}, unset it to "
                            f"download into the cache, or pass --data-dir DIR")


def download_dataset(name, folder, files=None, *, mirrors=None, timeout=None):
    """Download the missing ``files`` (default: all four) of ``name`` into ``folder``,
    md5-checked; ``mirrors`` and ``timeout`` as in ``minicnn.data.download``."""
    spec = _spec(name)
    try:
        download_files(folder, {f: spec["md5"][f] for f in files or FILES.values()},
                       mirror_list(name, spec["mirrors"], mirrors), title=spec["title"],
                       timeout=timeout, hint=_how_to_provide(name))
    except OSError as err:      # the mirrors' errors are DownloadErrors: this one is local
        raise OSError(f"cannot write the download cache {folder} ({err}); set MINICNN_CACHE "
                      f"to a writable folder with room for {spec['title']}") from None


def _read_checked(name, path, in_cache):
    """Read one file (.gz or unpacked), checking its md5 where the dataset's local files
    have one. Only a file in the download cache may be deleted to download it again."""
    spec = _spec(name)
    data = read_idx_bytes(path)        # a regular file, its size checked before reading
    fname = os.path.basename(path)
    packed = fname.endswith(".gz")
    actual = hashlib.md5(data).hexdigest()
    for other, other_spec in DATASETS.items():     # the same names: a mix-up is easy
        if other != name and actual in (other_spec["md5"].get(fname),
                                        other_spec["unpacked_md5"].get(fname)):
            raise DatasetError(f"{path} is the {other_spec['title']} file, not "
                               f"{spec['title']}'s: give the folder that holds {name}/")
    if spec["check_local_md5"]:
        expected = (spec["md5"] if packed else spec["unpacked_md5"])[fname]
        if actual != expected:
            fix = ("Delete it to download it again." if in_cache else
                   "Replace it with an original copy.")
            which = "the published checksum" if packed else "that of the published file, unpacked"
            raise ChecksumError(
                f"{path}: md5 is {actual}, expected {expected} ({which}); "
                f"the file is corrupt or not the original {spec['title']} file. {fix}")
    return parse_idx(data, name=path)


def _check_split(name, folder, split, x, y):
    """Shapes, dtypes and label values of one split, which IDX alone cannot promise."""
    n = SIZES[split]
    where = f"{_spec(name)['title']} in {folder}, {split} split"
    if x.dtype != np.uint8 or x.shape != (n, *IMAGE_SHAPE):
        raise DatasetError(f"{where}: images are {x.dtype} {x.shape}, "
                           f"expected uint8 {(n, *IMAGE_SHAPE)}")
    if y.dtype != np.uint8 or y.shape != (n,):
        raise DatasetError(f"{where}: labels are {y.dtype} {y.shape}, expected uint8 ({n},)")
    if y.max() >= NUM_CLASSES:
        raise DatasetError(f"{where}: label {int(y.max())} out of range 0..{NUM_CLASSES - 1}")


def _check_splits(splits):
    if isinstance(splits, str) or not splits or any(s not in SPLITS for s in splits):
        raise ValueError(f"splits={splits!r}: expected a non-empty tuple of "
                         f"{' and '.join(map(repr, SPLITS))}, e.g. ('test',)")
    return tuple(splits)


def _locate(folder, fname):
    """``folder/fname`` (``*.gz``), or the same file unpacked if only that is there.
    Anything there counts, a FIFO or a device too: reading it is refused with a line
    that says what it is, instead of calling the file missing (or downloading it)."""
    packed = os.path.join(folder, fname)
    unpacked = packed[:-len(".gz")]
    return unpacked if not os.path.exists(packed) and os.path.exists(unpacked) else packed


def _missing(folder, needed):
    """The names in ``needed`` that ``folder`` lacks."""
    return [f for f in needed if not os.path.exists(_locate(folder, f))]


def _cache_folder(name, cache_dir):
    return os.path.join(cache_dir or default_cache_dir(), name)


def _spec(name):
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def _how_to_provide(name):
    return (f"Without network access, put the four files ({', '.join(FILES.values())}) "
            f"in a folder and pass it with --data-dir DIR (root=DIR in Python), or set "
            f"MINICNN_DATA to a folder that holds {name}/ with those files; or set "
            f"MINICNN_MIRRORS to a proxy URL or a folder that serves them.")
