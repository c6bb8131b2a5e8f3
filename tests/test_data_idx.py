"""IDX files: round trips and every way a file can be broken.

The tests write their own tiny files (raw and .gz) into a temp folder, then
damage them byte by byte; each error must name the file and the problem.
"""
import gzip

import numpy as np
import pytest

from minicnn.data import IDXFormatError, read_idx, write_idx
from minicnn.data.idx import parse_idx

LABELS = np.array([3, 1, 4, 1, 5, 9, 2, 6], dtype=np.uint8)
IMAGES = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)


def raw_idx(array):
    """Uncompressed IDX bytes of a uint8 array, built by hand (independently of write_idx)."""
    assert array.dtype == np.uint8
    sizes = b"".join(n.to_bytes(4, "big") for n in array.shape)
    return bytes([0, 0, 0x08, array.ndim]) + sizes + array.tobytes()


@pytest.mark.parametrize("suffix", ["", ".gz"])
@pytest.mark.parametrize("array", [
    LABELS,
    IMAGES,
    np.array([[-1, 2], [3, -4]], dtype=np.int8),
    np.array([1, -70000, 2 ** 30], dtype=np.int32),
    np.array([[0.5, -1.25, 3e8]], dtype=np.float32),
    np.array([np.pi, -np.e], dtype=np.float64),
    np.array([-300, 300], dtype=np.int16),
])
def test_round_trip(tmp_path, array, suffix):
    path = tmp_path / f"data-idx{suffix}"
    write_idx(path, array)
    back = read_idx(path)
    assert back.dtype == array.dtype and back.shape == array.shape
    np.testing.assert_array_equal(back, array)
    assert back.flags.writeable and back.dtype.isnative


def test_header_layout(tmp_path):
    """The bytes on disk follow the IDX layout: 0 0 code ndim, big-endian sizes, values."""
    path = tmp_path / "labels-idx1-ubyte"
    write_idx(path, LABELS)
    data = path.read_bytes()
    assert data[:4] == bytes([0, 0, 0x08, 1])
    assert data[4:8] == (8).to_bytes(4, "big")
    assert data[8:] == LABELS.tobytes()


def test_gz_written_when_name_ends_in_gz(tmp_path):
    write_idx(tmp_path / "x.gz", IMAGES)
    packed = (tmp_path / "x.gz").read_bytes()
    assert packed[:2] == b"\x1f\x8b"
    assert gzip.decompress(packed) == raw_idx(IMAGES)


def test_gzip_recognised_by_content(tmp_path):
    """A compressed file without the .gz suffix is still read."""
    path = tmp_path / "renamed"
    path.write_bytes(gzip.compress(raw_idx(IMAGES)))
    np.testing.assert_array_equal(read_idx(path), IMAGES)


def write_bytes(tmp_path, name, data, compress):
    path = tmp_path / (name + (".gz" if compress else ""))
    path.write_bytes(gzip.compress(data) if compress else data)
    return path


def broken_cases():
    good = raw_idx(IMAGES)  # 4 + 3*4 header bytes + 24 values = 40 bytes
    return {
        "truncated": (good[:-5], r"truncated: expected 40 bytes .* got 35"),
        "truncated-header": (good[:9], r"truncated: expected 16 bytes of header .* got 9"),
        "tiny": (good[:2], r"truncated: expected at least 4 bytes"),
        "empty": (b"", r"truncated"),
        "trailing": (good + b"\x00\x07",
                     r"trailing bytes: expected 40 bytes .* got 42 \(2 extra\)"),
        "magic": (b"\x01\x00" + good[2:], r"bad magic number 0x01000803"),
        "dtype": (good[:2] + b"\x0a" + good[3:], r"unsupported dtype code 0x0a"),
        "ndim0": (b"\x00\x00\x08\x00", r"0 dimensions"),
    }


@pytest.mark.parametrize("compress", [False, True], ids=["raw", "gz"])
@pytest.mark.parametrize("case", list(broken_cases()))
def test_broken_files_are_rejected_with_the_file_name(tmp_path, case, compress):
    data, message = broken_cases()[case]
    path = write_bytes(tmp_path, f"broken-{case}", data, compress)
    with pytest.raises(IDXFormatError, match=message) as info:
        read_idx(path)
    assert str(path) in str(info.value)
    assert isinstance(info.value, ValueError)


@pytest.mark.parametrize("damage", ["cut", "flip", "not-gzip"])
def test_corrupt_gzip(tmp_path, damage):
    packed = gzip.compress(raw_idx(IMAGES))
    if damage == "cut":
        packed = packed[:-12]  # stream ends early
    elif damage == "flip":
        packed = packed[:20] + bytes([packed[20] ^ 0xFF]) + packed[21:]  # CRC or inflate fails
    else:
        packed = b"this is not gzip at all"
    path = tmp_path / "train-images-idx3-ubyte.gz"
    path.write_bytes(packed)
    with pytest.raises(IDXFormatError, match="corrupt gzip") as info:
        read_idx(path)
    assert str(path) in str(info.value)


def test_parse_idx_names_the_source():
    with pytest.raises(IDXFormatError, match="^mybuffer: bad magic"):
        parse_idx(b"\xff\xff\x08\x01", name="mybuffer")


def test_write_idx_rejects_what_idx_cannot_hold(tmp_path):
    with pytest.raises(ValueError, match="dtype"):
        write_idx(tmp_path / "x", np.zeros(3, dtype=np.int64))
    with pytest.raises(ValueError, match="dimensions"):
        write_idx(tmp_path / "x", np.uint8(3))
