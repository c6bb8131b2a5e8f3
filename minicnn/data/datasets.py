"""MNIST and Fashion-MNIST: find the four files, download them if needed, check them.

Both datasets come as four gzip'ed IDX files (``FILES``). A loader looks for
a folder holding all four, in this order:

1. the ``root`` argument (the CLI's ``--data-dir``): a folder holding the
   four files directly, or one with ``mnist/`` / ``fashion-mnist/`` inside;
2. ``$MINICNN_DATA/<name>`` (``MINICNN_DATA`` holds ``mnist/`` and
   ``fashion-mnist/``);
3. the cache ``~/.cache/minicnn/<name>`` (``$MINICNN_CACHE/<name>`` or the
   ``cache_dir`` argument move it);
4. system folders (Debian installs Fashion-MNIST in
   ``/usr/share/datasets/fashion-mnist``).

A ``root`` that was given but holds no dataset is an error (a typo in
``--data-dir`` should not quietly fall back to a download). When nothing is
found and ``download=True``, the missing files are downloaded into the
cache: mirrors are tried in turn, each file's published md5 is checked, and
a file only appears in the cache once complete and verified.

Checks: MNIST files are checked against their published md5s wherever they
come from. Debian recompressed its Fashion-MNIST files, so their md5s differ
from the published ones; local Fashion-MNIST files are checked by their IDX
headers and sizes instead (downloads are still md5-checked). Both datasets
get the shape and label checks.
"""
import hashlib
import os

import numpy as np

from .download import DownloadError, download_files, mirror_list
from .idx import parse_idx

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
    folder = find_dataset(name, root, download, cache_dir=cache_dir, splits=splits,
                          mirrors=mirrors, timeout=timeout)
    in_cache = _same_folder(folder, _cache_folder(name, cache_dir))
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
    try:
        return load_dataset(dataset, data_dir, splits=splits)
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
    """The folder that holds the files ``splits`` of ``name`` need, downloading them
    into the cache if needed (see the module docstring for the order); the
    arguments are ``load_dataset``'s."""
    spec = _spec(name)
    needed = [f for split in _check_splits(splits) for f in SPLIT_FILES[split]]
    if root is not None:
        return _given_folder(name, root, needed)
    if os.environ.get("MINICNN_DATA"):      # a setting is used or refused, never skipped
        return _given_folder(name, os.environ["MINICNN_DATA"], needed, "MINICNN_DATA")
    cache = _cache_folder(name, cache_dir)
    candidates = [cache, *spec["system_dirs"]]
    for folder in candidates:
        if not _missing(folder, needed):
            return folder
    if not download:
        raise FileNotFoundError(
            f"{spec['title']} not found (looked in {', '.join(candidates)}) and "
            f"download=False. {_how_to_provide(name)}")
    download_dataset(name, cache, files=needed, mirrors=mirrors, timeout=timeout)
    return cache


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
    download_files(folder, {f: spec["md5"][f] for f in files or FILES.values()},
                   mirror_list(name, spec["mirrors"], mirrors), title=spec["title"],
                   timeout=timeout, hint=_how_to_provide(name))


def _read_checked(name, path, in_cache):
    """Read one file (.gz or unpacked), checking its md5 where the dataset's local files
    have one. Only a file in the download cache may be deleted to download it again."""
    spec = _spec(name)
    with open(path, "rb") as f:
        data = f.read()
    if spec["check_local_md5"]:
        fname = os.path.basename(path)
        packed = fname.endswith(".gz")
        expected = (spec["md5"] if packed else spec["unpacked_md5"])[fname]
        actual = hashlib.md5(data).hexdigest()
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
    """``folder/fname`` (``*.gz``), or the same file unpacked if only that is there."""
    packed = os.path.join(folder, fname)
    unpacked = packed[:-len(".gz")]
    return unpacked if not os.path.isfile(packed) and os.path.isfile(unpacked) else packed


def _missing(folder, needed):
    """The names in ``needed`` that ``folder`` lacks."""
    return [f for f in needed if not os.path.isfile(_locate(folder, f))]


def _cache_folder(name, cache_dir):
    return os.path.join(cache_dir or default_cache_dir(), name)


def _same_folder(a, b):
    return os.path.realpath(a) == os.path.realpath(b)


def _spec(name):
    if name not in DATASETS:
        raise ValueError(f"unknown dataset {name!r}; known: {', '.join(DATASETS)}")
    return DATASETS[name]


def _how_to_provide(name):
    return (f"Without network access, put the four files ({', '.join(FILES.values())}) "
            f"in a folder and pass it with --data-dir DIR (root=DIR in Python), or set "
            f"MINICNN_DATA to a folder that holds {name}/ with those files; or set "
            f"MINICNN_MIRRORS to a proxy URL or a folder that serves them.")
