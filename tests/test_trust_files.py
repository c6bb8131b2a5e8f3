"""Files that lie about their size, and files that are not files.

Size bombs: an IDX header declaring more than minicnn reads, a ``.gz`` that expands past
what its header declares, an ``.npz`` entry declaring gigabytes; each is refused before
the memory is allocated (``tracemalloc`` sees NumPy's allocations too). Special files: a
FIFO, ``/dev/zero`` or ``/dev/null`` where a data file, model file, checkpoint or
``file://`` mirror file is expected is refused at once; a reader that blocks is a failure
here (the test unblocks it by opening the FIFO's other end).
"""
import gzip
import os
import struct
import threading
import tracemalloc
import zipfile
import zlib

import pytest
from data_helpers import isolated, make_files, md5s  # noqa: F401  (isolated: autouse fixture)

from minicnn import Dense, Sequential, load_model, save_model
from minicnn.data import DataError, download, idx, load_data, read_idx
from minicnn.data.datasets import DATASETS, FILES
from minicnn.files.model_files import ModelFileError
from minicnn.files import model_files as serialization
from minicnn.training.checkpoint import read_checkpoint
from minicnn.training.run_folder import CHECKPOINT

REAL_URLOPEN = download._urlopen
MiB = 1 << 20


def peak_bytes(call):
    """``(result or exception, peak traced bytes)`` of ``call()``."""
    tracemalloc.start()
    try:
        try:
            outcome = call()
        except Exception as err:        # noqa: BLE001  (the test looks at it)
            outcome = err
        return outcome, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def zeros_deflated(n_bytes, wbits=-15):
    """A deflate stream of ``n_bytes`` zeros, built from one repeated flushed block
    (fast: the zeros are never made), left open (no final block)."""
    block = zlib.compressobj(1, zlib.DEFLATED, wbits)
    chunk = block.compress(bytes(MiB)) + block.flush(zlib.Z_FULL_FLUSH)
    again = zlib.compressobj(1, zlib.DEFLATED, wbits)
    repeat = again.compress(bytes(MiB)) + again.flush(zlib.Z_FULL_FLUSH)
    assert n_bytes % MiB == 0
    return chunk + repeat * (n_bytes // MiB - 1)


def gzip_bomb(head, n_bytes):
    """A gzip member: ``head`` (stored) then ``n_bytes`` zeros, a dummy CRC and size."""
    body = zlib.compressobj(1, zlib.DEFLATED, -15)
    start = body.compress(head) + body.flush(zlib.Z_FULL_FLUSH)
    end = zlib.compressobj(1, zlib.DEFLATED, -15).flush()       # an empty final block
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + start + zeros_deflated(n_bytes)
            + end + b"\x00" * 8)


def idx_header(code, *shape):
    return bytes([0, 0, code, len(shape)]) + b"".join(n.to_bytes(4, "big") for n in shape)


# -- size bombs: IDX and gzip ---------------------------------------------------------
def test_an_idx_header_whose_product_overflows_int64_is_refused(tmp_path):
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(idx_header(0x08, 65536, 65536, 65536, 65536))   # 2**64 values
    with pytest.raises(ValueError, match=r"declares 18446744073709551616 bytes.*limit") as e:
        read_idx(path)
    assert str(path) in str(e.value)


def test_an_idx_header_over_the_limit_is_refused_before_reading(tmp_path):
    path = tmp_path / "labels-idx1-ubyte.gz"
    path.write_bytes(gzip.compress(idx_header(0x0C, 60000, 10000) + bytes(16)))
    with pytest.raises(ValueError, match=f"more than minicnn reads.*{idx.MAX_IDX_BYTES:,}"):
        read_idx(path)


def test_a_gz_that_expands_past_its_header_is_refused_without_expanding_it(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    path.write_bytes(gzip_bomb(idx_header(0x08, 4) + bytes(4), 256 * MiB))
    outcome, peak = peak_bytes(lambda: read_idx(path))
    assert isinstance(outcome, ValueError) and "expands past" in str(outcome), outcome
    assert peak < 8 * MiB, f"{peak / MiB:.0f} MiB allocated"


def test_a_raw_idx_file_longer_than_its_header_is_refused_unread(tmp_path):
    path = tmp_path / "t10k-labels-idx1-ubyte"
    with open(path, "wb") as f:
        f.write(idx_header(0x08, 4) + bytes(4))
        f.truncate(512 * MiB)                    # sparse: no disk, no time
    outcome, peak = peak_bytes(lambda: read_idx(path))
    assert isinstance(outcome, ValueError) and "trailing bytes" in str(outcome), outcome
    assert peak < 8 * MiB, f"{peak / MiB:.0f} MiB allocated"


# -- size bombs: npz entries ----------------------------------------------------------
def zip_bytes(entries):
    """A zip archive written by hand: ``entries`` are ``(name, data, method, crc,
    declared_size)``; the sizes in its directory are whatever they say."""
    out, directory = b"", b""
    for name, data, method, crc, size in entries:
        name = name.encode()
        directory += struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 20, 20, 0, method, 0, 0,
                                 crc, len(data), size, len(name), 0, 0, 0, 0, 0, len(out)) + name
        out += struct.pack("<IHHHHHIIIHH", 0x04034B50, 20, 0, method, 0, 0, crc, len(data),
                           size, len(name), 0) + name + data
    return out + directory + struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, len(entries),
                                         len(entries), len(directory), len(out), 0)


def npz_with_a_lying_entry(path, declared_values, zeros=False):
    """A model file (Dense(2, 3)) plus an entry '1.weight' whose header and zip directory
    declare ``declared_values`` float64 values, over a short deflate stream (``zeros``:
    one that expands to them all)."""
    save_model(Sequential([Dense(2, 3)]), path)
    with zipfile.ZipFile(path) as z:
        entries = [(i.filename, z.read(i), zipfile.ZIP_STORED, i.CRC, i.file_size)
                   for i in z.infolist()]
    text = repr({"descr": "<f8", "fortran_order": False, "shape": (declared_values,)})
    text += " " * (-(10 + len(text) + 1) % 64) + "\n"            # .npy 1.0: 64-byte aligned
    head = b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text.encode()
    stream = zlib.compressobj(1, zlib.DEFLATED, -15)
    data = stream.compress(head + bytes(4096)) + stream.flush(zlib.Z_FULL_FLUSH)
    if zeros:
        data = (stream.compress(head) + stream.flush(zlib.Z_FULL_FLUSH)
                + zeros_deflated(8 * declared_values) + stream.flush())
    entries.append(("1.weight.npy", data, zipfile.ZIP_DEFLATED, 0,
                    len(head) + 8 * declared_values))
    path.write_bytes(zip_bytes(entries))


@pytest.mark.parametrize("stream", ["3 GiB of zeros", "short"])
def test_an_npz_entry_declaring_gigabytes_is_refused_before_allocation(tmp_path, stream):
    """A deflate stream that really expands to the 3 GiB declared (a 3 MB bomb) is
    refused by the limit; a short one whose zip directory claims 3 GiB by that claim."""
    path = tmp_path / "model.npz"
    values = (3 << 30) // 8                      # 3 GiB of float64
    npz_with_a_lying_entry(path, values, zeros=stream != "short")
    with zipfile.ZipFile(path) as z:             # the archive itself is well formed
        assert z.getinfo("1.weight.npy").file_size > 3 << 30
    outcome, peak = peak_bytes(lambda: load_model(path))
    assert isinstance(outcome, ModelFileError), outcome
    why = "limit" if stream != "short" else "more than its 119 stored bytes"
    assert "'1.weight'" in str(outcome) and why in str(outcome), outcome
    assert peak < 64 * MiB, f"{peak / MiB:.0f} MiB allocated"
    assert serialization.MAX_ENTRY_BYTES < 3 << 30


# -- special files -------------------------------------------------------------------
def refused_at_once(call, fifo=None, seconds=5.0):
    """The exception ``call()`` raises, within ``seconds``; a call blocked on ``fifo`` is
    released (by opening the FIFO's writing end) and the test fails."""
    outcome = []

    def run():
        try:
            call()
            outcome.append(None)
        except BaseException as err:             # noqa: BLE001
            outcome.append(err)
    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        if fifo is not None:
            fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            os.close(fd)
        thread.join(seconds)
        pytest.fail(f"blocked for {seconds} s")
    assert outcome and outcome[0] is not None, "accepted"
    return outcome[0]


@pytest.mark.parametrize("kind", ["fifo", "/dev/zero", "/dev/null", "folder"])
def test_a_model_file_that_is_not_a_file_is_refused_at_once(tmp_path, kind):
    path = tmp_path / "model.npz"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    else:
        path = kind
    err = refused_at_once(lambda: load_model(path), fifo=path if kind == "fifo" else None)
    assert isinstance(err, ModelFileError) and str(path) in str(err), err
    assert "not a regular file" in str(err) or "Is a directory" in str(err)


def test_a_fifo_checkpoint_is_refused_at_once(tmp_path):
    os.mkfifo(tmp_path / CHECKPOINT)
    err = refused_at_once(lambda: read_checkpoint(tmp_path), fifo=tmp_path / CHECKPOINT)
    assert isinstance(err, ModelFileError) and "FIFO" in str(err), err


@pytest.mark.parametrize("where", ["data folder", "cache"])
def test_a_fifo_data_file_is_refused_at_once(tmp_path, where, monkeypatch):
    folder = tmp_path / "data" if where == "data folder" else tmp_path / "cache" / "fashion-mnist"
    make_files(folder)
    fifo = folder / FILES["train_images"]
    os.remove(fifo)
    os.mkfifo(fifo)
    root = str(folder) if where == "data folder" else None
    err = refused_at_once(lambda: load_data("fashion-mnist", root), fifo=fifo)
    assert isinstance(err, DataError) and str(fifo) in str(err) and "FIFO" in str(err), err


def test_a_folder_named_as_a_data_file_is_named(tmp_path):
    folder = tmp_path / "data"
    make_files(folder)
    os.remove(folder / FILES["test_labels"])
    os.mkdir(folder / FILES["test_labels"])
    with pytest.raises(DataError, match=r"t10k-labels-idx1-ubyte.gz cannot be read: Is a dir"):
        load_data("fashion-mnist", str(folder))


def test_dev_zero_as_a_data_file_is_refused(tmp_path):
    folder = tmp_path / "data"
    make_files(folder)
    os.remove(folder / FILES["test_images"])
    os.symlink("/dev/zero", folder / FILES["test_images"])
    err = refused_at_once(lambda: load_data("fashion-mnist", str(folder)))
    assert isinstance(err, DataError) and "not a regular file" in str(err), err


def test_a_fifo_on_a_file_mirror_is_skipped_at_once(tmp_path, monkeypatch):
    monkeypatch.setattr(download, "_urlopen", REAL_URLOPEN)
    mirror = tmp_path / "mirror"
    files = make_files(mirror)
    monkeypatch.setitem(DATASETS["mnist"], "md5", md5s(files))
    fifo = mirror / FILES["train_images"]
    os.remove(fifo)
    os.mkfifo(fifo)
    monkeypatch.setenv("MINICNN_MIRRORS", str(mirror))
    err = refused_at_once(lambda: load_data("mnist"), fifo=fifo)
    assert isinstance(err, DataError) and "not a regular file" in str(err), err


def test_a_mirror_that_sends_more_than_any_dataset_file_is_cut_off(tmp_path, monkeypatch):
    """(A mirror streaming without end would fill the disk; here 8 MiB against a limit
    lowered to 1 MiB.)"""
    class Endless:
        headers, left = {}, 8 * MiB

        def read(self, n):
            n = min(n, self.left)
            self.left -= n
            return bytes(n)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            pass
    monkeypatch.setattr(download, "MAX_DOWNLOAD_BYTES", MiB)
    monkeypatch.setattr(download, "_urlopen", lambda url, timeout: Endless())
    monkeypatch.setenv("MINICNN_MIRRORS", "http://127.0.0.1:9/")
    with pytest.raises(DataError, match="sent more than 1,048,576 bytes"):
        load_data("mnist")
    assert not os.listdir(tmp_path / "cache" / "mnist") or \
        os.listdir(tmp_path / "cache" / "mnist") == [".minicnn.lock"]
