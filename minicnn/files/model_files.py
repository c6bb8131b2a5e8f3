"""Save a model (architecture + weights) to one ``.npz`` file, atomically, and read it back.

The file holds one array per parameter, named as in ``state_dict()``, and
``__architecture__``: a JSON header ``{"format", "architecture"}`` that
``load_model`` rebuilds the layers from. A run's checkpoint is the same file with
more in it (see ``minicnn.training.checkpoint``): a ``"checkpoint"`` section in the header
and arrays whose names hold a ``/`` (``optimizer/m.0``); readers of the model part
ignore both. Writing goes to a temporary file in the same folder, renamed over the
target only when complete, so an interrupted save never leaves half a model behind.

Reading trusts nothing in the file: anything that is not such a file (empty,
truncated, corrupt, a ``.npy``, a pickle, an array of Python objects, a broken
header, a FIFO or a device) is refused with one line naming the file; an
architecture nested more than ``MAX_DEPTH`` levels or sized over ``MAX_PARAMETERS``
is refused before any layer is built, and an entry declaring more than
``MAX_ENTRY_BYTES`` (or more than the zip entry can hold) before it is allocated.
"""
import contextlib
import json
import math
import os
import zipfile
import zlib

import numpy as np

from ..layers import LAYER_TYPES, Layer
from .atomic import atomic_write
from .regular import NotRegularFile, open_regular

FORMAT = "minicnn-model-1"
HEADER = "__architecture__"
# GoogLeNet is 3 levels deep and VGG-19 has 143.7 M parameters: ample room for both.
MAX_DEPTH = 64
MAX_PARAMETERS = 10 ** 9
# One array may declare at most 2 GiB (VGG-19's largest weight is 0.8 GB in float64), the
# JSON header 64 MiB; DEFLATE expands a byte to at most 1032 (zeros), so a compressed
# entry declaring more than that is forged. All checked before anything is allocated.
MAX_ENTRY_BYTES = 1 << 31
MAX_HEADER_BYTES = 1 << 26
MAX_DEFLATE = 1032


class ModelFileError(ValueError):
    """The file is not a (valid) minicnn model file or checkpoint; the message names it."""


def architecture(layer):
    """A JSON-friendly nested description of ``layer``."""
    spec = {"type": type(layer).__name__, "config": layer.config()}
    if layer.children():
        spec["children"] = [architecture(child) for child in layer.children()]
    return spec


def build(spec):
    """The inverse of ``architecture``: a freshly initialized layer."""
    cls = LAYER_TYPES.get(spec.get("type"))
    if cls is None:
        raise ValueError(f"unknown layer type {spec.get('type')!r} in model description: call "
                         f"minicnn.register_layer({spec.get('type')}) before load_model")
    if "children" in spec:
        return cls([build(child) for child in spec["children"]], **spec["config"])
    return cls(**spec["config"])


def atomic_savez(path, arrays):
    """``np.savez`` of the dict ``arrays`` to ``path``, atomically."""
    atomic_write(path, lambda f: np.savez(f, **arrays))


def write_model_file(path, model, sections=None, arrays=None):
    """The one writer: ``model``'s architecture and weights, plus header ``sections``
    (a dict) and extra ``arrays`` (names with a ``/``), to ``path`` atomically."""
    atomic_write(path, model_file_writer(model, sections, arrays))


def model_file_writer(model, sections=None, arrays=None):
    """``write(file)``: what ``write_model_file`` writes, for ``atomic_write_all`` (files
    that belong together); the arrays are taken now."""
    if not isinstance(model, Layer):
        raise TypeError(f"save_model expects a minicnn Layer, got {type(model).__name__}")
    header = {"format": FORMAT, "architecture": architecture(model), **(sections or {})}
    everything = {HEADER: np.array(json.dumps(header)), **model.state_dict()}
    for name, value in (arrays or {}).items():
        assert "/" in name, f"extra array {name!r} would be read as a weight"
        everything[name] = value
    return lambda f: np.savez(f, **everything)


def save_model(model, path):
    """Write ``model``'s architecture and weights to ``path`` (``.npz``)."""
    write_model_file(path, model)


def load_model(path):
    """Rebuild the model saved at ``path`` (a model file or a run's checkpoint) and
    load its weights (on the CPU), in the dtype they were saved in."""
    header, state, _ = read_model_file(path)
    return rebuild(path, header["architecture"], state)


def load_weights(model, path):
    """Load the weights saved at ``path`` into an existing ``model``; the first
    key or shape that does not match is named in the error."""
    _, state, _ = read_model_file(path)
    try:
        return model.load_state_dict(state)
    except (KeyError, ValueError) as err:
        raise ValueError(f"{os.fspath(path)} does not match the model: {err.args[0]}") from None


def rebuild(path, spec, state):
    """The layers described by ``spec`` (already checked), with the weights ``state``."""
    try:
        model = build(spec)
        if state:
            model.astype(next(iter(state.values())).dtype)
        return model.load_state_dict(state)
    except (KeyError, TypeError, ValueError, OverflowError) as err:
        raise _invalid(path, f"cannot rebuild its model ({err.args[0] if err.args else err})")


# -- reading ---------------------------------------------------------------------------
def read_model_file(path):
    """``(header, weights, extras)`` from the ``.npz`` at ``path``: the checked JSON
    header, the parameter arrays by ``state_dict`` name, and the arrays whose names
    hold a ``/``. Raises ``FileNotFoundError`` or ``ModelFileError``."""
    with _archive(path) as (path, archive, names):
        header = _header(path, archive, names)
        arrays = {n: _read_entry(path, archive, n, _kind(n)) for n in names if n != HEADER}
    weights = {k: v for k, v in arrays.items() if "/" not in k}
    return header, weights, {k: v for k, v in arrays.items() if "/" in k}


def read_header(path):
    """The checked JSON header of the model file at ``path``, without reading its arrays
    (cheap: to compare a run's files)."""
    with _archive(path) as (path, archive, names):
        return _header(path, archive, names)


@contextlib.contextmanager
def _archive(path):
    """``(path, zip archive, entry names without .npy)`` of a model file, opened once
    (a regular file only: a FIFO or a device is refused before anything blocks)."""
    path = os.fspath(path)
    if not os.path.lexists(path):
        raise FileNotFoundError(f"no model file at {path}")
    try:
        f = open_regular(path, "model file")
    except NotRegularFile as err:
        raise ModelFileError(str(err)) from None
    except OSError as err:                 # no permission, a dangling link
        raise ModelFileError(f"{path} cannot be read: {err.strerror or err}") from None
    with f:
        start = f.read(6)
        f.seek(0)
        if not zipfile.is_zipfile(f):
            raise ModelFileError(f"{path} is not a minicnn model file: {_what_it_is(start)}")
        try:
            with zipfile.ZipFile(f) as archive:
                names = [n[:-len(".npy")] for n in archive.namelist() if n.endswith(".npy")]
                if HEADER not in names and "__meta__" in names:   # the first checkpoint format
                    raise ModelFileError(
                        f"{path} is a checkpoint of an older minicnn (minicnn-checkpoint-1), "
                        f"which this version no longer reads: its run folder's model.npz still "
                        f"loads with minicnn.load_model; start a new run to train further")
                if HEADER not in names:
                    raise ModelFileError(f"{path} is not a minicnn model file (no {HEADER} "
                                         f"entry)")
                yield path, archive, names
        except zipfile.BadZipFile as err:   # a broken directory that is_zipfile let through
            raise _invalid(path, f"a broken .npz archive ({err})") from None


def _header(path, archive, names):
    header = _parse_header(path, _read_entry(path, archive, HEADER, "U", MAX_HEADER_BYTES))
    check_architecture(header["architecture"], path)
    return header


def _invalid(path, reason):
    return ModelFileError(f"{path} is not a valid minicnn model file: {reason}")


def _what_it_is(start):
    """What a file that is not a zip archive is, from its first bytes."""
    if not start:
        return "the file is empty"
    if start == b"\x93NUMPY":
        return "it is a single NumPy array (.npy); minicnn.save_model writes .npz files"
    return "not an .npz archive (truncated, corrupt, or another kind of file)"


INTEGER_BUFFERS = ("num_batches_tracked",)   # BatchNorm's counter; every other array is float


def _kind(name):
    return "i" if name.rsplit(".", 1)[-1] in INTEGER_BUFFERS else "f"


def _read_entry(path, archive, name, kind, limit=None):
    """One array of kind ``kind`` (``"U"`` text, ``"f"`` floats, ``"i"`` integers), its
    header checked before anything is allocated: no Python objects, no more than
    ``limit`` bytes (default ``MAX_ENTRY_BYTES``), no more data than the zip entry holds
    or could expand to."""
    fail = lambda why: _invalid(path, f"entry {name!r}: {why}")  # noqa: E731
    limit = MAX_ENTRY_BYTES if limit is None else limit
    try:
        info = archive.getinfo(name + ".npy")
        _check_zip_sizes(info, archive, fail)
        with archive.open(info) as f:
            version = np.lib.format.read_magic(f)
            read = {(1, 0): np.lib.format.read_array_header_1_0,
                    (2, 0): np.lib.format.read_array_header_2_0}.get(version)
            if read is None:
                raise fail(f"unsupported .npy version {version}")
            shape, _, dtype = read(f)
            if dtype.hasobject:
                raise fail("it holds Python objects, which minicnn never writes")
            if dtype.kind != kind:
                wanted = {"U": "text", "f": "floating-point numbers", "i": "integers"}[kind]
                raise fail(f"it holds {dtype}, not {wanted}")
            size = math.prod(shape) * dtype.itemsize      # Python integers: no overflow
            if size > limit:
                raise fail(f"it declares {size:,} bytes (shape {tuple(shape)}, {dtype}), more "
                           f"than minicnn's limit of {limit:,} bytes for one entry")
            if size > info.file_size:
                raise fail("the entry is shorter than its shape says")
        with archive.open(info) as f:
            return np.lib.format.read_array(f, allow_pickle=False)
    except ModelFileError:
        raise
    except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError,
            NotImplementedError, RuntimeError) as err:   # CRC, truncation, compression
        raise fail(f"cannot be read ({type(err).__name__}: corrupt or truncated file)") from None


def _check_zip_sizes(info, archive, fail):
    """The sizes the zip directory declares for an entry must fit the file: the stored
    bytes within the archive, and (compressed) no more than DEFLATE can expand them to."""
    archive.fp.seek(0, os.SEEK_END)
    if info.compress_size > archive.fp.tell():
        raise fail(f"the zip directory says {info.compress_size:,} bytes, more than the "
                   f"whole file holds (truncated or forged)")
    stored = info.compress_type == zipfile.ZIP_STORED
    if info.file_size > (info.compress_size if stored else MAX_DEFLATE * info.compress_size):
        raise fail(f"the zip directory says it expands to {info.file_size:,} bytes, more "
                   f"than its {info.compress_size:,} stored bytes can hold")


def _parse_header(path, text):
    if text.ndim != 0:
        raise _invalid(path, f"its {HEADER} entry is not text")
    try:
        header = json.loads(str(text))
    except RecursionError:
        raise _invalid(path, f"its architecture is nested more than {MAX_DEPTH} levels deep"
                       ) from None
    except ValueError:
        raise _invalid(path, f"its {HEADER} header is not valid JSON") from None
    if not isinstance(header, dict):
        raise _invalid(path, f"its {HEADER} header is not a JSON object")
    if header.get("format") != FORMAT:
        raise _invalid(path, f"unsupported format {header.get('format')!r}, expected {FORMAT!r}")
    if "architecture" not in header:
        raise _invalid(path, "its header has no 'architecture'")
    return header


def check_architecture(spec, path):
    """Refuse a malformed description, one nested more than ``MAX_DEPTH`` levels, a
    negative integer, or more than ``MAX_PARAMETERS`` parameters, from ``spec`` alone.

    A layer with parameters is counted at the product of the numbers in its config
    (at least 1 each): Dense's ``in * out`` is its weight count, Conv2D's product
    (channels, kernel, stride, padding) bounds its ``out * in * kh * kw``; so no
    layer's constructor allocates more than this bound allows.
    """
    total, stack = 0, [(spec, "the model itself", 1)]
    while stack:                      # no recursion: a deep file must not overflow the stack
        node, where, depth = stack.pop()
        if depth > MAX_DEPTH:
            raise _invalid(path, f"its architecture is nested more than {MAX_DEPTH} levels deep")
        if (not isinstance(node, dict) or not isinstance(node.get("type"), str)
                or not isinstance(node.get("config"), dict)
                or not isinstance(node.get("children", []), list)):
            raise _invalid(path, f"malformed layer description at {where}")
        size = 1
        for key, value in node["config"].items():
            for number in _numbers(value):
                if isinstance(number, int) and number < 0:
                    raise _invalid(path, f"{node['type']} ({where}) has {key} {number}")
                size *= max(1.0, abs(float(number)))
        cls = LAYER_TYPES.get(node["type"])
        total += size if (cls is not None and cls.param_names) else 0
        if total > MAX_PARAMETERS:
            raise _invalid(path, f"its architecture has more than {MAX_PARAMETERS:,} parameters, "
                           f"minicnn's limit (reached at {node['type']}, {where})")
        prefix = "layer " if depth == 1 else f"{where}."
        stack += [(c, f"{prefix}{i}", depth + 1) for i, c in enumerate(node.get("children", []))]


def _numbers(value):
    """The numbers in a config value: a number, a numeric string (``int("10")`` works in
    a constructor too), or a list of them; booleans are flags, not sizes."""
    numbers = []
    for v in value if isinstance(value, list) else [value]:
        if isinstance(v, str):
            try:
                v = float(v)
            except ValueError:
                continue
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            numbers.append(v)
    return numbers
