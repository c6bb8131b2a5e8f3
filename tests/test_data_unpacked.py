"""Unpacked IDX files (``train-images-idx3-ubyte`` without ``.gz``) and how each file is checked."""
import gzip
import hashlib
import os

import numpy as np
import pytest
from data_helpers import isolated, make_files, md5s  # noqa: F401  (isolated: autouse fixture)

from minicnn.data import ChecksumError, datasets, load_dataset
from minicnn.data.datasets import DATASETS

REAL_DATA = os.environ.get("MINICNN_DATA")  # read before the fixture hides it
REAL_SIZES = dict(datasets.SIZES)


def marker(pair):
    return int(pair[0][0, 0, 0])


def test_a_folder_of_unpacked_files_is_read(tmp_path):
    make_files(tmp_path / "raw", marker=4, gz=False)
    (train, test) = load_dataset("fashion-mnist", tmp_path / "raw")
    assert marker(train) == 4 and test[0].shape == (4, 28, 28)


def test_packed_and_unpacked_files_may_be_mixed(tmp_path):
    make_files(tmp_path / "mixed", marker=3, splits=("train",), gz=False)
    make_files(tmp_path / "mixed", marker=3, splits=("test",))
    (train, test) = load_dataset("fashion-mnist", tmp_path / "mixed")
    assert marker(train) == 3 and marker(test) == 3


def test_the_gz_file_wins_when_both_are_there(tmp_path):
    make_files(tmp_path / "both", marker=1, gz=False)
    make_files(tmp_path / "both", marker=2)
    assert marker(load_dataset("fashion-mnist", tmp_path / "both")[0]) == 2


def test_unpacked_mnist_is_checked_by_the_md5_of_the_unpacked_bytes(tmp_path, monkeypatch):
    files = make_files(tmp_path / "mnist", gz=False)
    monkeypatch.setitem(DATASETS["mnist"], "unpacked_md5", md5s(files))
    (train, _) = load_dataset("mnist", tmp_path)
    assert marker(train) == 1
    make_files(tmp_path / "mnist", marker=9, splits=("test",), gz=False)   # not the original
    with pytest.raises(ChecksumError) as info:
        load_dataset("mnist", tmp_path)
    message = str(info.value)
    assert str(tmp_path / "mnist" / "t10k-images-idx3-ubyte") in message
    assert "download it again" not in message and "Replace it" in message


def test_only_a_cached_file_may_be_deleted_to_download_it_again(tmp_path):
    make_files(tmp_path / "mine" / "mnist")            # valid IDX, not the published bytes
    with pytest.raises(ChecksumError) as info:
        load_dataset("mnist", tmp_path / "mine")
    assert "download it again" not in str(info.value)
    make_files(tmp_path / "cache" / "mnist")
    with pytest.raises(ChecksumError, match="Delete it to download it again"):
        load_dataset("mnist")


def test_real_unpacked_mnist_test_files_pass_the_check(tmp_path, monkeypatch):
    folder = os.path.join(REAL_DATA or "", "mnist")
    if not REAL_DATA or not os.path.isdir(folder):
        pytest.skip("MINICNN_DATA not set / no mnist/ there: real-data test skipped "
                    "(CI sets it to ../shared/data)")
    monkeypatch.setattr(datasets, "SIZES", REAL_SIZES)
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        with gzip.open(os.path.join(folder, name + ".gz")) as f:
            data = f.read()
        assert hashlib.md5(data).hexdigest() == DATASETS["mnist"]["unpacked_md5"][name]
        (tmp_path / name).write_bytes(data)
    (test,) = load_dataset("mnist", tmp_path, splits=("test",))
    assert test[0].shape == (10000, 28, 28)
    assert np.bincount(test[1]).tolist() == [980, 1135, 1032, 1010, 982,
                                             892, 958, 1028, 974, 1009]
