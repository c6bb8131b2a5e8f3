"""What the README and the documentation pages quote and name is what the code prints and has."""
import os
import re

import numpy as np
import pytest
import tomllib

from minicnn import Conv2D, models

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def readme():
    return page("README.md")


def page(path):
    """A file of the repository as text: the README, or a documentation page (docs/...)."""
    with open(os.path.join(ROOT, path), encoding="utf-8") as f:
        return f.read()


TROUBLESHOOTING = "docs/how-to/troubleshooting.md"     # the fault tables


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
    [row] = [c for c in table_cells(page(TROUBLESHOOTING)) if " got uint8 input" in c]
    assert row == model_says
    # the single layer's message: its repr, then the same words as the model's
    quoted_layer = re.search(r"`(Conv2D\(.*?\) got uint8 input)", page(TROUBLESHOOTING)).group(1)
    start, end = quoted_layer.split("...")
    assert layer_says.startswith(start) and end in layer_says
    assert layer_says.split(" got uint8 input")[1] == model_says.split(" got uint8 input")[1]


def test_the_notebooks_extra_brings_jupyter_and_the_tutorials_say_so():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    names = {re.split(r"[<>=\[ ]", r)[0] for r in extras["notebooks"]}
    assert {"notebook", "ipywidgets", "ipykernel"} <= names
    for text in (readme(), page("docs/tutorials/index.md")):
        assert 'pip install -e ".[notebooks]"' in text
        assert "jupyter notebook examples/notebooks" in text


def test_the_docs_extra_brings_the_site_builder_and_the_readme_says_how_to_build_it():
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        extras = tomllib.load(f)["project"]["optional-dependencies"]
    names = {re.split(r"[<>=\[ ]", r)[0] for r in extras["docs"]}
    assert {"mkdocs", "mkdocs-material", "mkdocs-jupyter", "mkdocstrings-python"} <= names
    assert 'pip install -e ".[docs]"' in readme() and "mkdocs serve" in readme()


def test_the_debugging_recipe_runs_on_a_few_images():
    [recipe] = re.findall(r"^NUMBA_DISABLE_JIT=1 python -m pdb examples/train_mnist.py.*$",
                          page("docs/how-to/debugger.md"), flags=re.M)
    assert "--train-subset" in recipe and "--test-subset" in recipe


def github_anchors(text):
    """The anchors GitHub gives a page's headings: lower case, punctuation dropped, spaces
    to hyphens (enough for this project's headings)."""
    headings = re.findall(r"^#+ (.+?)\s*$", text, flags=re.M)
    return {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in headings}


def test_every_link_of_the_readme_works_on_github():
    """The README is read on GitHub, outside the site: each relative link names a file of
    the repository, and each #anchor a heading of that file."""
    links = re.findall(r"\]\(([^)\s]+)\)", readme())
    local = [link for link in links if not re.match(r"[a-z]+:", link)]
    assert len(local) >= 20, local
    for link in local:
        path, _, anchor = link.partition("#")
        assert os.path.isfile(os.path.join(ROOT, path)), f"README links a missing file: {link}"
        if anchor:
            assert anchor in github_anchors(page(path)), f"README links a missing anchor: {link}"
