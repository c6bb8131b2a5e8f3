"""Every built-in layer's docstring has the same four sections, as PyTorch's have theirs:
what a learner looks for first (and what ``viz.step_through`` reads its formula from)."""
import re

import pytest

import minicnn.layers  # noqa: F401  (registers the built-in layers)
from minicnn.layers.base import LAYER_TYPES

SECTIONS = ("Shapes:", "Forward:", "Backward:", "Kept for backward:")


@pytest.mark.parametrize("name", sorted(LAYER_TYPES))
def test_every_layer_docstring_has_shapes_forward_backward_and_kept(name):
    doc = LAYER_TYPES[name].__doc__ or ""
    lines = [line.strip() for line in doc.splitlines()]
    starts = [next((i for i, line in enumerate(lines) if line.startswith(s)), None)
              for s in SECTIONS]
    assert None not in starts, f"{name}: missing {[s for s, i in zip(SECTIONS, starts) if i is None]}"
    assert starts == sorted(starts), f"{name}: sections out of order"
    backward = lines[starts[2]]
    assert re.search(r"``.+?``", backward), f"{name}: the Backward line names no formula"
