"""Save a model (architecture + weights) to one ``.npz`` file, atomically.

The file holds one array per parameter, named as in ``state_dict()``, and
``__architecture__``: a JSON description of the layers that ``load_model``
rebuilds them from. Writing goes to a temporary file in the same folder,
which is renamed over the target only when complete, so an interrupted
save never leaves a half-written model behind.
"""
import json
import os

import numpy as np

from .atomic import atomic_write
from .layers import LAYER_TYPES, Layer

FORMAT = "minicnn-model-1"


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


def save_model(model, path):
    """Write ``model``'s architecture and weights to ``path`` (``.npz``)."""
    if not isinstance(model, Layer):
        raise TypeError(f"save_model expects a minicnn Layer, got {type(model).__name__}")
    header = json.dumps({"format": FORMAT, "architecture": architecture(model)})
    arrays = {"__architecture__": np.array(header)}
    arrays.update(model.state_dict())
    atomic_savez(path, arrays)


def _read(path):
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no model file at {path}")
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    if "__architecture__" not in arrays:
        raise ValueError(f"{path} is not a minicnn model file (no __architecture__ entry)")
    header = json.loads(str(arrays.pop("__architecture__")))
    if header.get("format") != FORMAT:
        raise ValueError(f"{path}: unsupported model format {header.get('format')!r}, "
                         f"expected {FORMAT!r}")
    return header["architecture"], arrays


def load_model(path):
    """Rebuild the model saved at ``path`` and load its weights (on the CPU), in
    the dtype they were saved in (a float64 model comes back float64)."""
    spec, state = _read(path)
    model = build(spec)
    if state:
        model.astype(next(iter(state.values())).dtype)
    return model.load_state_dict(state)


def load_weights(model, path):
    """Load the weights saved at ``path`` into an existing ``model``; the first
    key or shape that does not match is named in the error."""
    _, state = _read(path)
    try:
        return model.load_state_dict(state)
    except (KeyError, ValueError) as err:
        raise ValueError(f"{os.fspath(path)} does not match the model: {err}") from None
