"""Tiny fake MNIST / Fashion-MNIST folders for the data tests (no network, no real cache).

``isolated`` (import it into a test module to make it autouse there) points the
cache at a temp folder, hides MINICNN_DATA, MINICNN_MIRRORS and the system
folders, shrinks the datasets to 6 training and 4 test images and replaces the
URL opener by one that fails. ``make_files`` writes the tiny IDX files.
"""
import hashlib
import os
import urllib.error

import numpy as np
import pytest

from minicnn.data import datasets, download, write_idx
from minicnn.data.datasets import DATASETS

SMALL = {"train": 6, "test": 4}
PREFIX = {"train": "train", "test": "t10k"}


@pytest.fixture(autouse=True)
def isolated(monkeypatch, tmp_path):
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.delenv("MINICNN_MIRRORS", raising=False)
    monkeypatch.setitem(DATASETS["fashion-mnist"], "system_dirs", [])
    monkeypatch.setattr(datasets, "SIZES", SMALL)

    def no_network(url, timeout):
        raise urllib.error.URLError("network disabled in tests")
    monkeypatch.setattr(download, "_urlopen", no_network)


def make_files(folder, marker=1, sizes=SMALL, bad_label=None, splits=("train", "test"),
               gz=True):
    """Write the tiny IDX files of ``splits`` into ``folder``; images are all ``marker``.

    ``gz=False`` writes them unpacked (``train-images-idx3-ubyte``). Returns
    {file name: bytes}, which a fake mirror can serve.
    """
    os.makedirs(folder, exist_ok=True)
    suffix = ".gz" if gz else ""
    written = {}
    for split in splits:
        n = sizes[split]
        labels = (np.arange(n) % 10).astype(np.uint8)
        if bad_label is not None:
            labels[-1] = bad_label
        for kind, array in (("images-idx3", np.full((n, 28, 28), marker, dtype=np.uint8)),
                            ("labels-idx1", labels)):
            name = f"{PREFIX[split]}-{kind}-ubyte{suffix}"
            write_idx(os.path.join(folder, name), array)
            with open(os.path.join(folder, name), "rb") as f:
                written[name] = f.read()
    return written


def md5s(files):
    return {name: hashlib.md5(data).hexdigest() for name, data in files.items()}
