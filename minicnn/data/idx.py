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
becoming a silently wrong array. The header is read first: a header declaring more
than ``MAX_IDX_BYTES`` (1 GiB), an uncompressed file of another length, and a gzip
stream that expands past the declared size are refused before that memory is
allocated (a gzip stream is expanded only as far as the header declares).
"""
import gzip
import io
import math
import os
import zlib

import numpy as np

from ..files.regular import open_regular

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
# The most data bytes an IDX file may declare (MNIST's largest file holds 47 MB): a
# header declaring more is refused before anything is allocated or decompressed.
MAX_IDX_BYTES = 1 << 30
_LOOK_PAST = 1 << 16     # bytes read past the declared end of a gzip stream, at most


class IDXFormatError(ValueError):
    """A file is not a well-formed IDX file; the message names the file."""


def read_idx(path):
    """Read an IDX file (raw, or gzip-compressed) into a NumPy array.

    Returns a new, writable array in native byte order, e.g. uint8
    ``(60000, 28, 28)`` for MNIST training images or ``(60000,)`` for labels.
    Raises ``IDXFormatError`` (a ``ValueError``) naming the file when the
    magic number, the dtype code, the sizes or the length are wrong, or the
    gzip stream is corrupt; ``minicnn.files.regular.NotRegularFile`` for a FIFO or device.
    """
    return parse_idx(read_idx_bytes(path), name=os.fspath(path))


def read_idx_bytes(path):
    """The bytes of the IDX file at ``path`` (compressed or not), for ``parse_idx``;
    refused before they are read when the path is not a regular file, when the file is
    larger than ``MAX_IDX_BYTES`` allows, or (uncompressed) when its length is not the
    one its header declares."""
    name = os.fspath(path)
    try:
        f = open_regular(name, "data file")
    except (IsADirectoryError, PermissionError) as err:    # (a missing file passes on)
        raise IDXFormatError(f"{name} cannot be read: {err.strerror}") from None
    with f:
        size = os.fstat(f.fileno()).st_size
        if size > MAX_IDX_BYTES + 4 + 4 * 255:
            raise IDXFormatError(f"{name}: the file is {size:,} bytes, more than minicnn "
                                 f"reads ({MAX_IDX_BYTES:,} bytes of data)")
        start = f.read(4)
        if name.endswith(".gz") or start[:2] == _GZIP_MAGIC:
            return start + f.read()
        head = start + f.read(4 * start[3] if len(start) == 4 else 0)
        _sizes(io.BytesIO(head), name, total=size)     # the length, before the data
        return head + f.read()


def parse_idx(data, name="<bytes>"):
    """Decode the bytes of an IDX file (gzip-compressed or not) into an array.

    ``name`` is only used in error messages. Compressed input is recognised by
    a ``.gz`` name or by the gzip magic bytes, so a raw file that was renamed
    still reads (a real IDX file starts with 0x00, never with gzip's 0x1f). A
    gzip stream is expanded only as far as its IDX header declares (a stream that
    expands further is refused, not expanded).
    """
    if not (name.endswith(".gz") or data[:2] == _GZIP_MAGIC):
        return _decode(io.BytesIO(data), name, total=len(data))
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(data)) as stream:
            return _decode(stream, name, total=None)
    except (OSError, EOFError, zlib.error) as err:
        # BadGzipFile is an OSError; a cut-off stream raises EOFError.
        raise IDXFormatError(f"{name}: corrupt gzip data ({err})") from None


def _sizes(stream, name, total):
    """``(shape, dtype, header_bytes, expected_bytes)`` from the header at the start of
    ``stream``; ``total``: the whole length when known (raw bytes), checked here."""
    head = stream.read(4)
    if len(head) < 4:
        raise IDXFormatError(f"{name}: truncated: expected at least 4 bytes of header, "
                             f"got {len(head)}")
    zero0, zero1, code, ndim = head
    if zero0 != 0 or zero1 != 0:
        raise IDXFormatError(f"{name}: bad magic number 0x{head.hex()}: an IDX file starts "
                             f"with 0x00 0x00, then a dtype code and the number of dimensions")
    if code not in DTYPE_CODES:
        known = ", ".join(f"0x{c:02x}" for c in DTYPE_CODES)
        raise IDXFormatError(f"{name}: unsupported dtype code 0x{code:02x} (known: {known})")
    if ndim == 0:
        raise IDXFormatError(f"{name}: the header says 0 dimensions; expected at least 1")
    header = 4 + 4 * ndim
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise IDXFormatError(f"{name}: truncated: expected {header} bytes of header for "
                             f"{ndim} dimensions, got {4 + len(sizes)}")
    # Python integers: a product of four 32-bit sizes overflows int64, not these.
    shape = tuple(int.from_bytes(sizes[i:i + 4], "big") for i in range(0, 4 * ndim, 4))
    dtype = DTYPE_CODES[code]
    data_bytes = math.prod(shape) * dtype.itemsize
    if data_bytes > MAX_IDX_BYTES:
        raise IDXFormatError(f"{name}: the header declares {data_bytes} bytes of data (shape "
                             f"{shape} of {dtype.name}), more than minicnn reads (the limit is "
                             f"{MAX_IDX_BYTES:,} bytes)")
    expected = header + data_bytes
    if total is not None and total < expected:
        raise IDXFormatError(f"{name}: truncated: expected {expected} bytes for shape {shape} "
                             f"of {dtype.name}, got {total}")
    if total is not None and total > expected:
        raise IDXFormatError(f"{name}: trailing bytes: expected {expected} bytes for shape "
                             f"{shape} of {dtype.name}, got {total} "
                             f"({total - expected} extra)")
    return shape, dtype, header, expected


def _decode(stream, name, total):
    shape, dtype, header, expected = _sizes(stream, name, total)
    data = stream.read(expected - header)
    if len(data) < expected - header:
        raise IDXFormatError(f"{name}: truncated: expected {expected} bytes for shape {shape} "
                             f"of {dtype.name}, got {header + len(data)}")
    extra = len(stream.read(_LOOK_PAST))     # a gzip stream: how much more it holds
    if extra == _LOOK_PAST:
        raise IDXFormatError(f"{name}: the gzip data expands past what its header declares "
                             f"({expected} bytes for shape {shape} of {dtype.name}); "
                             f"refused unexpanded")
    if extra:
        raise IDXFormatError(f"{name}: trailing bytes: expected {expected} bytes for shape "
                             f"{shape} of {dtype.name}, got {expected + extra} ({extra} extra)")
    values = np.frombuffer(data, dtype=dtype).reshape(shape)
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
