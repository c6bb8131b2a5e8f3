"""What the README quotes and names is what the code prints and has."""
import os
import re

import numpy as np
import pytest
import tomllib

from minicnn import Conv2D, models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme():
    with open(os.path.join(ROOT, "README.md"), encoding="utf-8") as f:
        return f.read()


def table_cells(text):
    """The first cell of every table row, without its backticks."""
    return [m.group(1) for m in re.finditer(r"^\| `(.+?)` \|", text, flags=re.M)]


def message(fn):
    with pytest.raises(ValueError) as info:
        fn()
    return str(info.value)


def test_the_integer_input_row_quotes_what_is_printed():
    images = np.zeros((2, 1, 28, 28), np.uint8)
    model_says = message(lambda: models.lenet().forward(images))
    layer_says = message(lambda: Conv2D(1, 4, 3).forward(images))
    [row] = [c for c in table_cells(readme()) if " got uint8 input" in c]
    assert row == model_says
    # the single layer's message: its repr, then the same words as the model's
    quoted_layer = re.search(r"`(Conv2D\(.*?\) got uint8 input)", readme()).group(1)
    start, end = quoted_layer.split("...")
    assert layer_says.startswith(start) and end in layer_says
    assert layer_says.split(" got uint8 input")[1] == model_says.split(" got uint8 input")[1]


def test_the_notebooks_extra_brings_jupyter_and_the_readme_says_so():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    names = {re.split(r"[<>=\[ ]", r)[0] for r in extras["notebooks"]}
    assert {"notebook", "ipywidgets", "ipykernel"} <= names
    assert 'pip install -e ".[notebooks]"' in readme()
    assert "jupyter notebook examples/notebooks" in readme()


def test_the_debugging_recipe_runs_on_a_few_images():
    [recipe] = re.findall(r"`NUMBA_DISABLE_JIT=1 python -m pdb examples/train_mnist.py[^`]*`",
                          readme())
    assert "--train-subset" in recipe and "--test-subset" in recipe
