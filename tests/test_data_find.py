"""Which folder a dataset is read from, which files a split needs, and load_data's errors."""
import os

import numpy as np
import pytest
from data_helpers import isolated, make_files  # noqa: F401  (isolated: autouse fixture)

from minicnn.cli.command import main
from minicnn.data import DataError, find_dataset, load_data, load_dataset


def marker(pair):
    return int(pair[0][0, 0, 0])


# --- splits -----------------------------------------------------------------

def test_a_folder_with_only_the_test_files_serves_the_test_split(tmp_path):
    make_files(tmp_path / "t10k-only", marker=5, splits=("test",))
    assert find_dataset("mnist", tmp_path / "t10k-only", splits=("test",)) == \
        str(tmp_path / "t10k-only")
    (test,) = load_dataset("fashion-mnist", tmp_path / "t10k-only", splits=("test",))
    assert test[0].shape == (4, 28, 28) and test[1].dtype == np.int64 and marker(test) == 5
    with pytest.raises(FileNotFoundError, match="train-images-idx3-ubyte"):
        load_dataset("fashion-mnist", tmp_path / "t10k-only")


def test_only_the_requested_files_are_read(tmp_path):
    make_files(tmp_path / "f")
    (tmp_path / "f" / "train-images-idx3-ubyte.gz").write_bytes(b"garbage")
    (test,) = load_dataset("fashion-mnist", tmp_path / "f", splits=("test",))
    assert test[0].shape == (4, 28, 28)
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz"):
        load_dataset("fashion-mnist", tmp_path / "f")


def test_splits_come_back_in_the_order_asked(tmp_path):
    make_files(tmp_path / "f")
    test, train = load_dataset("fashion-mnist", tmp_path / "f", splits=("test", "train"))
    assert test[0].shape[0] == 4 and train[0].shape[0] == 6
    (train2, test2) = load_dataset("fashion-mnist", tmp_path / "f")   # the default
    np.testing.assert_array_equal(train2[1], train[1])
    np.testing.assert_array_equal(test2[1], test[1])


@pytest.mark.parametrize("splits", [(), ("validation",), "test"])
def test_unknown_splits_are_refused(tmp_path, splits):
    make_files(tmp_path / "f")
    with pytest.raises(ValueError, match="splits"):
        load_dataset("fashion-mnist", tmp_path / "f", splits=splits)


# --- load_data: one error type, one line that says what to do ---------------------

def test_load_data_returns_the_splits(tmp_path):
    make_files(tmp_path / "fashion-mnist", marker=3, splits=("test",))
    (test,) = load_data("fashion-mnist", str(tmp_path), splits=("test",))
    assert marker(test) == 3


def test_load_data_missing_folder(tmp_path):
    with pytest.raises(DataError) as info:
        load_data("mnist", str(tmp_path / "nowhere"))
    message = str(info.value)
    assert "nowhere" in message and "not a folder" in message
    assert "pass --data-dir" not in message


def test_load_data_folder_without_the_files_gives_no_data_dir_advice(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError) as info:
        load_data("mnist", str(tmp_path / "empty"))
    message = str(info.value)
    assert "empty" in message and "train-images-idx3-ubyte" in message
    assert "pass --data-dir" not in message


def test_load_data_corrupt_file(tmp_path):
    make_files(tmp_path / "f")
    (tmp_path / "f" / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8bcut")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz"):
        load_data("fashion-mnist", str(tmp_path / "f"))


def test_load_data_without_a_folder_says_how_to_give_one(tmp_path):
    with pytest.raises(DataError) as info:
        load_data("mnist", None)          # no cache, no network
    message = str(info.value)
    assert "--data-dir" in message and "MINICNN_DATA" in message


def test_cli_empty_data_dir_is_a_usage_error_without_data_dir_advice(tmp_path, capsys):
    (tmp_path / "data").mkdir()
    assert main(["train", "--data-dir", str(tmp_path / "data"), "--out",
                 str(tmp_path / "run")]) == 1
    err = capsys.readouterr().err
    assert "minicnn train: error:" in err and str(tmp_path / "data") in err
    assert "pass --data-dir" not in err
    assert not os.path.exists(tmp_path / "run" / "checkpoint.npz")


# --- MINICNN_DATA: the layouts of --data-dir, and never silently ignored ------------

def no_download(monkeypatch):
    from minicnn.data import download
    monkeypatch.setattr(download, "_urlopen", lambda url, timeout: pytest.fail("downloaded"))


def test_minicnn_data_may_be_the_dataset_folder_itself(tmp_path, monkeypatch):
    no_download(monkeypatch)
    make_files(tmp_path / "data" / "mnist", marker=6)
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "data" / "mnist"))
    assert find_dataset("fashion-mnist", splits=("test",)) == str(tmp_path / "data" / "mnist")
    (train, _) = load_dataset("fashion-mnist")
    assert marker(train) == 6


def test_minicnn_data_missing_folder_is_an_error_not_a_download(tmp_path, monkeypatch):
    no_download(monkeypatch)
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "typo"))
    with pytest.raises(FileNotFoundError, match=r"MINICNN_DATA: .*typo.* is not a folder"):
        load_dataset("mnist")
    with pytest.raises(DataError, match=r"MINICNN_DATA: .*typo"):
        load_data("mnist")


def test_minicnn_data_without_the_dataset_is_an_error_not_a_download(tmp_path, monkeypatch):
    no_download(monkeypatch)
    make_files(tmp_path / "env" / "mnist")                 # no fashion-mnist/ there
    make_files(tmp_path / "cache" / "fashion-mnist")       # not used: MINICNN_DATA is set
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "env"))
    with pytest.raises(FileNotFoundError) as info:
        load_dataset("fashion-mnist")
    message = str(info.value)
    assert "MINICNN_DATA" in message and str(tmp_path / "env") in message
    assert "fashion-mnist/" in message


def test_minicnn_data_with_only_the_test_files(tmp_path, monkeypatch):
    no_download(monkeypatch)
    make_files(tmp_path / "env" / "fashion-mnist", marker=2, splits=("test",))
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "env"))
    (test,) = load_data("fashion-mnist", splits=("test",))
    assert marker(test) == 2
    with pytest.raises(DataError, match=r"MINICNN_DATA.*incomplete: missing "
                                        r"train-images-idx3-ubyte"):
        load_data("fashion-mnist")


def test_data_dir_beats_minicnn_data(tmp_path, monkeypatch):
    make_files(tmp_path / "mine", marker=8)
    monkeypatch.setenv("MINICNN_DATA", str(tmp_path / "typo"))
    assert marker(load_dataset("fashion-mnist", tmp_path / "mine")[0]) == 8


# --- the resolved folder, and files of the other dataset -----------------------------

def test_the_resolved_folder_is_absolute(tmp_path, monkeypatch):
    make_files(tmp_path / "rel" / "fashion-mnist", splits=("test",))
    monkeypatch.chdir(tmp_path)
    folder = find_dataset("fashion-mnist", "rel", splits=("test",))
    assert folder == str(tmp_path / "rel" / "fashion-mnist")
    from minicnn.data import find_data
    assert find_data("fashion-mnist", "rel", splits=("test",)) == folder
    with pytest.raises(DataError, match="train-images-idx3-ubyte"):
        find_data("fashion-mnist", "rel")


def test_the_cache_given_as_data_dir_is_the_users_folder(tmp_path):
    make_files(tmp_path / "cache" / "mnist")       # not the published MNIST bytes
    with pytest.raises(DataError) as info:
        load_data("mnist", str(tmp_path / "cache" / "mnist"))
    assert "md5" in str(info.value) and "download it again" not in str(info.value)


def test_an_unwritable_cache_says_which_folder_and_what_to_set(tmp_path, monkeypatch):
    (tmp_path / "a-file").write_text("")
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "a-file" / "cache"))
    with pytest.raises(DataError) as info:
        load_data("mnist")
    message = str(info.value)
    assert str(tmp_path / "a-file" / "cache" / "mnist") in message
    assert "MINICNN_CACHE" in message


def test_the_files_of_the_other_dataset_are_named_as_such(tmp_path, monkeypatch):
    from data_helpers import md5s

    from minicnn.data.datasets import DATASETS
    files = make_files(tmp_path / "mnist")
    monkeypatch.setitem(DATASETS["mnist"], "md5", md5s(files))   # these are "MNIST's" files
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte.gz is the MNIST file, "
                                         r"not Fashion-MNIST's"):
        load_dataset("fashion-mnist", tmp_path / "mnist")
    monkeypatch.setitem(DATASETS["fashion-mnist"], "md5", md5s(files))
    monkeypatch.setitem(DATASETS["mnist"], "md5", {f: "0" * 32 for f in files})
    with pytest.raises(ValueError, match=r"is the Fashion-MNIST file, not MNIST's"):
        load_dataset("mnist", tmp_path / "mnist")
