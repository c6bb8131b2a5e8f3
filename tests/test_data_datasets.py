"""MNIST / Fashion-MNIST loaders: look-up order, checks, downloads, real data.

No test touches the network or the real cache: the autouse fixture of
data_helpers points the cache at a temp folder, hides MINICNN_DATA,
MINICNN_MIRRORS and the system folders, and replaces the URL opener by one
that fails. Download tests install a fake
mirror that serves bytes from memory. The datasets are shrunk to 6 training
and 4 test images so the files are tiny; for MNIST the published md5s are
swapped for those of the tiny files where a test needs them to match.
"""
import hashlib
import io
import os
import urllib.error

import numpy as np
import pytest
from data_helpers import isolated, make_files, md5s  # noqa: F401  (isolated: autouse fixture)

from minicnn.data import (ChecksumError, DatasetError, DownloadError, datasets, download,
                          load_fashion_mnist, load_mnist, write_idx)
from minicnn.data.datasets import DATASETS, FILES

REAL_DATA = os.environ.get("MINICNN_DATA")  # read before the fixture hides it
REAL_SIZES = dict(datasets.SIZES)  # the fixture shrinks them


def marker_of(loaded):
    (x_train, _), _ = loaded
    return int(x_train[0, 0, 0])


# --- look-up order --------------------------------------------------------

def test_root_beats_minicnn_data_beats_cache(tmp_path, monkeypatch):
    make_files(tmp_path / "root" / "fashion-mnist", marker=1)
    make_files(tmp_path / "env" / "fashion-mnist", marker=2)
    make_files(tmp_path / "cache" / "fashion-mnist", marker=3)
    assert marker_of(load_fashion_mnist()) == 3
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "env"))
    assert marker_of(load_fashion_mnist()) == 2
    assert marker_of(load_fashion_mnist(root=tmp_path / "root")) == 1


def test_root_may_hold_the_files_directly(tmp_path):
    make_files(tmp_path / "flat", marker=7)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(root=tmp_path / "flat")
    assert x_train.shape == (6, 28, 28) and x_train.dtype == np.uint8
    assert y_train.dtype == np.int64 and x_test.shape == (4, 28, 28) and y_test.shape == (4,)


def test_minicnn_data_without_the_dataset_does_not_fall_back_to_the_cache(tmp_path, monkeypatch):
    make_files(tmp_path / "env" / "mnist")  # has mnist/ but no fashion-mnist/
    make_files(tmp_path / "cache" / "fashion-mnist", marker=3)
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError, match="MINICNN_DATA: Fashion-MNIST not found"):
        load_fashion_mnist()
    monkeypatch.delenv("MINICNN_DATA")
    assert marker_of(load_fashion_mnist()) == 3


def test_cache_dir_argument_and_system_dir(tmp_path, monkeypatch):
    make_files(tmp_path / "elsewhere" / "fashion-mnist", marker=4)
    assert marker_of(load_fashion_mnist(cache_dir=tmp_path / "elsewhere")) == 4
    make_files(tmp_path / "debian", marker=5)
    monkeypatch.setitem(DATASETS["fashion-mnist"], "system_dirs", [str(tmp_path / "debian")])
    assert marker_of(load_fashion_mnist()) == 5


def test_root_without_the_files_is_an_error_not_a_download(tmp_path, monkeypatch):
    (tmp_path / "typo").mkdir()
    monkeypatch.setattr(download, "_urlopen", lambda url, timeout: pytest.fail("downloaded"))
    with pytest.raises(FileNotFoundError, match=r"MNIST not found in .*typo.*mnist/"):
        load_mnist(root=tmp_path / "typo")


def test_nothing_found_and_download_false(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=False.*--data-dir"):
        load_mnist(download=False)


# --- checks of local files ------------------------------------------------

def test_mnist_file_with_wrong_md5_is_rejected(tmp_path):
    make_files(tmp_path / "mnist")  # valid IDX, but not the published bytes
    with pytest.raises(ChecksumError) as info:
        load_mnist(root=tmp_path)
    message = str(info.value)
    bad = tmp_path / "mnist" / "train-images-idx3-ubyte.gz"
    assert str(bad) in message
    assert DATASETS["mnist"]["md5"]["train-images-idx3-ubyte.gz"] in message
    assert hashlib.md5(bad.read_bytes()).hexdigest() in message


def test_mnist_with_matching_md5_loads(tmp_path, monkeypatch):
    files = make_files(tmp_path / "mnist")
    monkeypatch.setitem(DATASETS["mnist"], "md5", md5s(files))
    (x_train, y_train), _ = load_mnist(root=tmp_path)
    np.testing.assert_array_equal(y_train, [0, 1, 2, 3, 4, 5])


def test_fashion_is_checked_by_content_not_md5(tmp_path):
    make_files(tmp_path / "ok")  # md5s differ from the published ones: still accepted
    load_fashion_mnist(root=tmp_path / "ok")
    make_files(tmp_path / "short", sizes={"train": 5, "test": 4})
    with pytest.raises(DatasetError, match=r"train split: images are uint8 \(5, 28, 28\)"):
        load_fashion_mnist(root=tmp_path / "short")
    make_files(tmp_path / "labels", bad_label=11)
    with pytest.raises(DatasetError, match="label 11 out of range"):
        load_fashion_mnist(root=tmp_path / "labels")


def test_label_count_must_match_image_count(tmp_path):
    make_files(tmp_path / "f")
    write_idx(tmp_path / "f" / "t10k-labels-idx1-ubyte.gz", np.zeros(3, dtype=np.uint8))
    with pytest.raises(DatasetError, match=r"test split: labels are uint8 \(3,\)"):
        load_fashion_mnist(root=tmp_path / "f")


# --- downloads --------------------------------------------------------------

def fake_mirrors(monkeypatch, serve):
    """Replace the URL opener: ``serve(url)`` returns bytes or raises. Returns the log of URLs."""
    log = []

    def fake_urlopen(url, timeout):
        log.append(url)
        return io.BytesIO(serve(url))
    monkeypatch.setattr(download, "_urlopen", fake_urlopen)
    return log


def published_tiny_mnist(tmp_path, monkeypatch):
    """Tiny MNIST files, with their md5s made the 'published' ones."""
    files = make_files(tmp_path / "source")
    monkeypatch.setitem(DATASETS["mnist"], "md5", md5s(files))
    return files


def cache_listing(tmp_path):
    folder = tmp_path / "cache" / "mnist"
    # the download lock's file stays (nobody holds it): see minicnn.files.locks
    return sorted(f for f in os.listdir(folder) if f != ".minicnn.lock") if folder.exists() else []


def test_download_tries_the_next_mirror(tmp_path, monkeypatch):
    files = published_tiny_mnist(tmp_path, monkeypatch)
    first, second = DATASETS["mnist"]["mirrors"]

    def serve(url):
        if url.startswith(first):
            raise urllib.error.URLError("connection refused")
        return files[url[len(second):]]
    log = fake_mirrors(monkeypatch, serve)
    (x_train, _), _ = load_mnist()
    assert x_train.shape == (6, 28, 28)
    assert cache_listing(tmp_path) == sorted(FILES.values())  # no temp files left
    assert len(log) == 5  # the first mirror fails once and is skipped; the second serves 4
    log.clear()
    load_mnist()  # now cached: no more downloads
    assert log == []


def test_bad_bytes_from_a_mirror_never_land_in_the_cache(tmp_path, monkeypatch):
    files = published_tiny_mnist(tmp_path, monkeypatch)
    first, second = DATASETS["mnist"]["mirrors"]

    def serve(url):
        if url.startswith(first):
            return b"<html>not the file</html>"  # wrong checksum
        raise urllib.error.URLError("timed out")
    fake_mirrors(monkeypatch, serve)
    with pytest.raises(DownloadError, match="md5 mismatch") as info:
        load_mnist()
    assert first + "train-images-idx3-ubyte.gz" in str(info.value)
    assert cache_listing(tmp_path) == []

    # With the second mirror healthy, the good copy lands despite the bad first one.
    fake_mirrors(monkeypatch, lambda url: serve(url) if url.startswith(first)
                 else files[url[len(second):]])
    load_mnist()
    assert cache_listing(tmp_path) == sorted(FILES.values())


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    files = published_tiny_mnist(tmp_path, monkeypatch)

    class Broken(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 0:
                raise ConnectionResetError("connection reset mid-file")
            return super().read(10)
    monkeypatch.setattr(download, "_urlopen",
                        lambda url, timeout: Broken(files[url.rsplit("/", 1)[1]]))
    with pytest.raises(DownloadError, match="connection reset"):
        load_mnist()
    assert cache_listing(tmp_path) == []


def test_no_network_message_says_what_to_do(tmp_path):
    with pytest.raises(DownloadError) as info:
        load_fashion_mnist()
    message = str(info.value)
    for url in DATASETS["fashion-mnist"]["mirrors"]:
        assert url + "train-images-idx3-ubyte.gz" in message
    assert "--data-dir" in message and "MINICNN_DATA" in message
    assert "network disabled in tests" in message


def test_download_only_fetches_missing_files(tmp_path, monkeypatch):
    files = published_tiny_mnist(tmp_path, monkeypatch)
    cache = tmp_path / "cache" / "mnist"
    cache.mkdir(parents=True)
    (cache / "train-images-idx3-ubyte.gz").write_bytes(files["train-images-idx3-ubyte.gz"])
    first = DATASETS["mnist"]["mirrors"][0]
    log = fake_mirrors(monkeypatch, lambda url: files[url[len(first):]])
    load_mnist()
    assert sorted(u[len(first):] for u in log) == sorted(set(FILES.values())
                                                         - {"train-images-idx3-ubyte.gz"})


# --- the real datasets (CI sets MINICNN_DATA to ../shared/data) -------------

def real_folder(name):
    if not REAL_DATA:
        pytest.skip("MINICNN_DATA not set / folder missing: real-data test skipped "
                    "(CI sets it to ../shared/data)")
    if not os.path.isdir(os.path.join(REAL_DATA, name)):
        pytest.skip(f"MINICNN_DATA not set / folder missing: {REAL_DATA}/{name} does not exist")
    return REAL_DATA


def test_real_mnist(monkeypatch):
    root = real_folder("mnist")
    monkeypatch.setattr(datasets, "SIZES", REAL_SIZES)
    monkeypatch.setenv("MINICNN_DATA", root)
    (x_train, y_train), (x_test, y_test) = load_mnist(download=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert y_test.dtype == np.int64
    assert np.bincount(y_train).tolist() == [5923, 6742, 5958, 6131, 5842,
                                             5421, 5918, 6265, 5851, 5949]
    assert np.bincount(y_test).tolist() == [980, 1135, 1032, 1010, 982,
                                            892, 958, 1028, 974, 1009]
    assert x_train.max() == 255 and x_train.min() == 0


def test_real_fashion_mnist(monkeypatch):
    root = real_folder("fashion-mnist")
    monkeypatch.setattr(datasets, "SIZES", REAL_SIZES)
    (x_train, y_train), (x_test, y_test) = load_fashion_mnist(root=root, download=False)
    assert x_train.shape == (60000, 28, 28) and x_test.shape == (10000, 28, 28)
    assert x_train.dtype == np.uint8 and y_train.dtype == np.int64
    assert sorted(np.unique(y_train).tolist()) == list(range(10))
    assert sorted(np.unique(y_test).tolist()) == list(range(10))
