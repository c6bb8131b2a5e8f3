"""The learner's notebooks (examples/notebooks): they run, and what is committed reads well.

Each notebook reads ``MINICNN_QUICK`` in its first cell; with ``MINICNN_QUICK=1`` it
trains and scans small subsets, so that the six run in CI in about a minute or two. The
committed copies hold the outputs of full runs (so that they read on GitHub): every code
cell executed, no error, under 1 MB each, and the README links every one. They are the
site's Tutorials pages through links in docs/tutorials/, in order in its navigation.
"""
import json
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FOLDER = os.path.join(ROOT, "examples", "notebooks")
NOTEBOOKS = ["1_layers_and_gradients.ipynb", "2_write_your_own_layer.ipynb",
             "3_train_lenet.ipynb", "4_look_inside.ipynb", "5_what_did_it_learn.ipynb",
             "6_backward_step_through.ipynb"]


def test_the_six_notebooks_are_there():
    assert sorted(n for n in os.listdir(FOLDER) if n.endswith(".ipynb")) == NOTEBOOKS


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_committed_notebook_has_its_outputs_no_error_and_is_small(name):
    path = os.path.join(FOLDER, name)
    assert os.path.getsize(path) < 2 ** 20, f"{name} is over 1 MB: draw smaller figures"
    with open(path) as f:
        cells = json.load(f)["cells"]
    code = [c for c in cells if c["cell_type"] == "code"]
    assert code and all(c["execution_count"] is not None for c in code), \
        f"{name}: a code cell was never run; execute the notebook before committing it"
    errors = [o for c in code for o in c["outputs"] if o["output_type"] == "error"]
    assert not errors, f"{name}: committed with an error: {errors[0]['ename']}"
    first = "".join(code[0]["source"])
    assert 'os.environ.get("MINICNN_QUICK")' in first, f"{name}: the first cell reads no switch"


def test_readme_links_every_notebook():
    with open(os.path.join(ROOT, "README.md")) as f:
        readme = f.read()
    missing = [n for n in NOTEBOOKS if f"examples/notebooks/{n}" not in readme]
    assert not missing, f"README.md does not link {missing}"


def test_the_site_shows_every_notebook_in_order_from_where_it_is_committed():
    """docs/tutorials/NAME is a symbolic link to examples/notebooks/NAME (one copy of each
    notebook), and mkdocs.yml's navigation lists the six in order."""
    tutorials = os.path.join(ROOT, "docs", "tutorials")
    for name in NOTEBOOKS:
        link = os.path.join(tutorials, name)
        assert os.path.islink(link), f"docs/tutorials/{name} is not a link to the notebook"
        assert os.path.realpath(link) == os.path.realpath(os.path.join(FOLDER, name))
    with open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8") as f:
        nav = [line.strip("- \n") for line in f if "tutorials/" in line and ".ipynb" in line]
    assert nav == [f"tutorials/{name}" for name in NOTEBOOKS]


@pytest.mark.parametrize("name", NOTEBOOKS)
def test_notebook_runs_in_quick_mode(name, data_root, tmp_path, monkeypatch):
    nbformat = pytest.importorskip("nbformat", reason="pip install -e .[test] adds nbformat")
    nbclient = pytest.importorskip("nbclient", reason="pip install -e .[test] adds nbclient")
    pytest.importorskip("ipykernel", reason="pip install -e .[test] adds ipykernel")
    monkeypatch.setenv("MINICNN_QUICK", "1")
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path))      # trained models: small, fresh
    monkeypatch.setenv("MINICNN_DATA", str(data_root))
    nb = nbformat.read(os.path.join(FOLDER, name), as_version=4)
    client = nbclient.NotebookClient(nb, timeout=300, kernel_name="python3",
                                     resources={"metadata": {"path": FOLDER}})
    client.execute()            # raises CellExecutionError, naming the cell, if one fails
