"""Reading and writing IDX files, the simple array format MNIST is shipped in.

An IDX file is a 4-byte magic number, one 4-byte big-endian size per
dimension, then the values in C order, big-endian::

    byte 0, 1   0x00 0x00         (always zero)
    byte 2      dtype code        (0x08 = uint8, see ``DTYPE_CODES``)
    byte 3      ndim              (1 for labels, 3 for images)
    4 * ndim    sizes             (unsigned 32-bit, big-endian)
    rest        prod(sizes) values

Files are usually gzip-compressed (``*.gz``). The reader checks every part
of this layout, including that the file has exactly the length the header
promises, so a truncated download or a wrong file fails loudly instead of
becoming a silently wrong array.
"""
import gzip
import os
import zlib

import numpy as np

# dtype code -> big-endian NumPy dtype (as stored in the file).
DTYPE_CODES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_GZIP_MAGIC = b"\x1f\x8b"


class IDXFormatError(ValueError):
    """A file is not a well-formed IDX file; the message names the file."""


def read_idx(path):
    """Read an IDX file (raw, or gzip-compressed) into a NumPy array.

    Returns a new, writable array in native byte order, e.g. uint8
    ``(60000, 28, 28)`` for MNIST training images or ``(60000,)`` for labels.
    Raises ``IDXFormatError`` (a ``ValueError``) naming the file when the
    magic number, the dtype code, the sizes or the length are wrong, or the
    gzip stream is corrupt.
    """
    with open(path, "rb") as f:
        data = f.read()
    return parse_idx(data, name=os.fspath(path))


def parse_idx(data, name="<bytes>"):
    """Decode the bytes of an IDX file (gzip-compressed or not) into an array.

    ``name`` is only used in error messages. Compressed input is recognised by
    a ``.gz`` name or by the gzip magic bytes, so a raw file that was renamed
    still reads (a real IDX file starts with 0x00, never with gzip's 0x1f).
    """
    if name.endswith(".gz") or data[:2] == _GZIP_MAGIC:
        data = _gunzip(data, name)
    return _decode(data, name)


def _gunzip(data, name):
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as err:
        # BadGzipFile is an OSError; a cut-off stream raises EOFError.
        raise IDXFormatError(f"{name}: corrupt gzip data ({err})") from None


def _decode(data, name):
    if len(data) < 4:
        raise IDXFormatError(f"{name}: truncated: expected at least 4 bytes of header, "
                             f"got {len(data)}")
    zero0, zero1, code, ndim = data[0], data[1], data[2], data[3]
    if zero0 != 0 or zero1 != 0:
        raise IDXFormatError(f"{name}: bad magic number 0x{data[:4].hex()}: an IDX file starts "
                             f"with 0x00 0x00, then a dtype code and the number of dimensions")
    if code not in DTYPE_CODES:
        known = ", ".join(f"0x{c:02x}" for c in DTYPE_CODES)
        raise IDXFormatError(f"{name}: unsupported dtype code 0x{code:02x} (known: {known})")
    if ndim == 0:
        raise IDXFormatError(f"{name}: the header says 0 dimensions; expected at least 1")
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXFormatError(f"{name}: truncated: expected {header} bytes of header for "
                             f"{ndim} dimensions, got {len(data)}")
    shape = tuple(int(s) for s in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = DTYPE_CODES[code]
    expected = header + int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if len(data) < expected:
        raise IDXFormatError(f"{name}: truncated: expected {expected} bytes for shape {shape} "
                             f"of {dtype.name}, got {len(data)}")
    if len(data) > expected:
        raise IDXFormatError(f"{name}: trailing bytes: expected {expected} bytes for shape "
                             f"{shape} of {dtype.name}, got {len(data)} "
                             f"({len(data) - expected} extra)")
    values = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    # astype copies: the result is writable and in the machine's byte order.
    return values.astype(dtype.newbyteorder("="))


def write_idx(path, array):
    """Write ``array`` as an IDX file; gzip-compressed when ``path`` ends in ``.gz``.

    The dtype must be one IDX can hold (uint8, int8, int16, int32, float32,
    float64) and the array needs at least one dimension. Used by the tests to
    build tiny files; the gzip header carries no timestamp, so the same array
    always gives the same bytes.
    """
    array = np.asarray(array)
    codes = {dt.newbyteorder("="): code for code, dt in DTYPE_CODES.items()}
    code = codes.get(array.dtype.newbyteorder("="))
    if code is None:
        raise ValueError(f"write_idx: dtype {array.dtype} cannot be stored in IDX "
                         f"(use one of {[str(d) for d in codes]})")
    if array.ndim == 0 or array.ndim > 255:
        raise ValueError(f"write_idx: need 1 to 255 dimensions, got {array.ndim}")
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(array, dtype=DTYPE_CODES[code]).tobytes()
    if os.fspath(path).endswith(".gz"):
        data = gzip.compress(data, mtime=0)
    with open(path, "wb") as f:
        f.write(data)
