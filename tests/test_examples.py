"""Every script in examples/: its --help explains each option, and one tiny run writes into a
temporary --out and nowhere else.

Each run is a subprocess started in an empty folder (so a figure written to ``./out`` or
``./figures`` instead of ``--out`` is seen) on a tiny model trained once for the module
(256 images, one epoch: the numbers are meaningless, the code paths are the real ones).
"""
import glob
import json
import os
import re
import subprocess
import sys

import pytest

from minicnn.cli.command import main

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
EXAMPLES = os.path.join(ROOT, "examples")
SCRIPTS = sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(EXAMPLES, "*.py"))
                 if not p.endswith("common.py"))

# For each script, the argument lists of its tiny runs. "{lenet}", "{tiny_cnn}": the tiny
# models' model.npz; "{out}": the temporary output (a folder, or the PNG for the scripts
# whose --out is a file); "{data}": the data folder.
LENET = ["--checkpoint", "{lenet}", "--data-dir", "{data}"]
TINY = {
    "activation_maximization": [LENET + ["--steps", "2", "--units", "1", "--out", "{out}"]],
    "attribution_figure": [LENET + ["--n", "2", "--out", "{out}/attribution.png"]],
    "deepdream": [LENET + ["--images", "1", "--octaves", "1", "--steps", "2", "--out", "{out}"]],
    "feature_evolution": [["--data-dir", "{data}", "--epochs", "1", "--train-subset", "64",
                           "--test-subset", "50", "--units", "1", "--steps", "2",
                           "--out", "{out}"]],
    "filters_and_feature_maps": [LENET + ["--out", "{out}"]],
    "propagation_figure": [LENET + ["--n", "2", "--out", "{out}/propagation.png"]],
    "propagation_identities": [LENET + ["--images", "2", "--steps", "4"]],
    "study_code_vectors": [LENET + ["--n-train", "200", "--n-test", "100", "--softmax-epochs", "1",
                                    "--only", "softmax", "--out", "{out}"]],
    "study_dense_features": [["--checkpoint", "{tiny_cnn}", "--data-dir", "{data}",
                              "--out", "{out}"]],
    "study_faithfulness": [LENET + ["--n", "4", "--steps", "2", "--ig-steps", "2",
                                    "--smooth-samples", "2", "--out", "{out}"]],
    "study_gallery": [LENET + ["--n", "20", "--out", "{out}"]],
    "study_inception": [["--table-only", "--models", "alexnet", "googlenet"]],
    "study_invariance": [LENET + ["--n", "4", "--out", "{out}"]],
    "study_sanity": [LENET + ["--n", "2", "--ig-steps", "2", "--smooth-samples", "2",
                              "--data-train", "64", "--data-steps", "2", "--out", "{out}"],
                     ["--draw", "--out", "{out}"]],
    "study_segmentation": [["--checkpoint", "{tiny_cnn}", "--data-dir", "{data}",
                            "--size", "28", "28", "--digits", "1", "--repeat", "1",
                            "--out", "{out}"]],
    "study_transfer": [["--checkpoint", "{tiny_cnn}", "--data-dir", "{data}", "--steps", "2",
                        "--source-steps", "2", "--per-class", "15", "--test", "100"]],
    "study_translation": [LENET + ["--n", "4", "--n-train", "200", "--softmax-epochs", "1",
                                   "--out", "{out}"]],
    "top_patches": [LENET + ["--n", "64", "--layers", "2", "--units", "2", "--out", "{out}"]],
    "train_mnist": [["--data-dir", "{data}", "--epochs", "1", "--train-subset", "128",
                     "--test-subset", "100", "--out", "{out}"]],
}


# what some runs must write: the gallery is named after the checkpoint's model (lenet), not
# after --model's default (lenet5)
WRITES = {"study_gallery": ["gallery_lenet.png"], "propagation_figure": ["propagation.png"]}


def options_without_help(text):
    """The options that argparse's --help ``text`` lists without a description: an option
    line with nothing after its name and metavar, and no indented line below it."""
    lines = text[text.index("\noptions:\n"):].splitlines()[2:]
    bare = []
    for i, line in enumerate(lines):
        if not line.startswith("  -"):
            continue
        name_and_help = re.split(r"\s{2,}", line.strip(), maxsplit=1)
        continued = i + 1 < len(lines) and re.match(r"\s{3,}\S", lines[i + 1])
        if len(name_and_help) == 1 and not continued:
            bare.append(name_and_help[0])
    return bare


def test_options_without_help_finds_a_bare_option():
    text = ("usage: x\n\noptions:\n  -h, --help   show this help\n  --path PATH\n"
            "  --checkpoint CHECKPOINT\n                a model.npz\n  --n N        rows\n")
    assert options_without_help(text) == ["--path PATH"]


def test_every_example_has_a_tiny_run():
    assert sorted(TINY) == SCRIPTS


RUNNER = """
import argparse, contextlib, io, json, os, runpy, sys, traceback
runs, parse_only = json.loads(sys.argv[1]), sys.argv[2] == "parse"
sys.path.insert(0, os.path.join(os.getcwd(), "examples"))
if parse_only:                  # stop each script as soon as its options parse
    parse = argparse.ArgumentParser.parse_args
    def parse_then_stop(self, *args, **kwargs):
        parse(self, *args, **kwargs)
        raise SystemExit(0)
    argparse.ArgumentParser.parse_args = parse_then_stop
result = []
for name, argv, cwd in runs:
    path = os.path.join(sys.path[0], name + ".py")
    os.chdir(cwd)
    sys.argv, text, status = [path, *argv], io.StringIO(), 0
    with contextlib.redirect_stdout(text), contextlib.redirect_stderr(text):
        try:
            runpy.run_path(path, run_name="__main__")
        except SystemExit as stop:
            status = stop.code or 0
        except Exception:
            status = traceback.format_exc()
    result.append((status, text.getvalue()))
print(json.dumps(result))
"""


def in_one_process(runs, parse_only=False, env=None):
    """``[(status, output)]`` of each ``(script, argv, cwd)``, all run in one Python process
    (importing minicnn anew for each would cost about a second a script). ``status``: 0,
    the exit status, or the traceback of an exception. ``parse_only``: each script stops
    (status 0) once its options parse; ``--help`` prints and stops as usual, a bad option
    is status 2."""
    done = subprocess.run([sys.executable, "-c", RUNNER, json.dumps(runs),
                           "parse" if parse_only else "run"], cwd=ROOT, capture_output=True,
                          text=True, timeout=600,
                          env=dict(os.environ, COLUMNS="100", **(env or {})))
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.fixture(scope="module")
def helps():
    """Each script's ``--help``: ``{script: (exit status, text)}``."""
    return dict(zip(SCRIPTS, in_one_process([(s, ["--help"], ROOT) for s in SCRIPTS], True)))


@pytest.mark.parametrize("script", SCRIPTS)
def test_help_explains_every_option(helps, script):
    status, text = helps[script]
    assert status == 0, text
    assert f"usage: {script}.py" in text
    assert options_without_help(text) == [], text


def needs_data():
    data = os.environ.get("MINICNN_DATA")
    if not data or not os.path.isdir(os.path.join(data, "mnist")):
        pytest.skip("MINICNN_DATA is not set (or has no mnist/): real-data test skipped")
    return data


@pytest.fixture(scope="module")
def tiny_runs(request, tmp_path_factory):
    """The tiny runs of the scripts this session tests, each in an empty folder of its own
    (``work/``, its --out ``work/result``), on lenet and tiny_cnn trained for one epoch on
    256 images: ``{script: (the runs' [(status, output)], what work/ holds, what
    work/result holds)}``."""
    data = needs_data()
    wanted = {item.callspec.params["script"] for item in request.session.items
              if getattr(item, "originalname", "") == "test_a_tiny_run_writes_only_into_out"}
    base = tmp_path_factory.mktemp("tiny")
    for model in ("lenet", "tiny_cnn"):
        assert main(["train", "--model", model, "--epochs", "1", "--train-subset", "256",
                     "--test-subset", "100", "--data-dir", data, "--no-progress",
                     "--out", str(base / model)]) == 0
    names = dict(data=data, lenet=str(base / "lenet" / "model.npz"),
                 tiny_cnn=str(base / "tiny_cnn"))
    runs, works = [], {}
    for script in sorted(wanted):
        works[script] = base / script
        works[script].mkdir()
        for argv in TINY[script]:
            argv = [a.format(out=works[script] / "result", **names) for a in argv]
            runs.append((script, argv, str(works[script])))
    results = iter(in_one_process(runs, env=dict(MPLBACKEND="Agg",
                                                 MINICNN_CACHE=str(base / "cache"))))
    return {script: ([next(results) for _ in TINY[script]], listing(works[script]),
                     listing(works[script] / "result")) for script in sorted(wanted)}


def listing(folder):
    return sorted(os.listdir(folder)) if folder.is_dir() else None


@pytest.mark.parametrize("script", SCRIPTS)
def test_a_tiny_run_writes_only_into_out(tiny_runs, script):
    results, written, out = tiny_runs[script]
    for status, output in results:
        assert status == 0, output[-3000:] + str(status)
    if any("{out}" in a for argv in TINY[script] for a in argv):
        assert written == ["result"] and out, written
        assert out == WRITES.get(script, out)
    else:
        assert written == [], written


def test_without_a_checkpoint_a_subset_model_is_trained_once_and_cached(tmp_path):
    """--train-subset: the examples' own small model, cached under $MINICNN_CACHE."""
    work = tmp_path / "work"
    work.mkdir()
    argv = ["--model", "tiny_cnn", "--data-dir", needs_data(), "--train-subset", "128",
            "--out", str(work / "figures")]
    (first, first_out), (second, second_out) = in_one_process(
        [("filters_and_feature_maps", argv, str(work))] * 2,
        env=dict(MPLBACKEND="Agg", MINICNN_CACHE=str(tmp_path / "cache")))
    assert first == 0 and second == 0, first_out + second_out
    assert "training tiny_cnn on mnist (the first 128 training images)" in first_out
    assert "no checkpoint given" not in second_out
    assert os.listdir(work) == ["figures"]
    assert len(os.listdir(tmp_path / "cache" / "example-runs")) == 1


def documented_commands():
    """``(file, script, argv)`` of every ``python examples/X.py ...`` in the README and the
    documentation pages, docs/ and its folders (in backticks or code blocks, up to a closing
    backtick, a comment or the line's end)."""
    found = []
    for doc in ["README.md", *sorted(glob.glob(os.path.join(ROOT, "docs", "**", "*.md"),
                                               recursive=True))]:
        with open(os.path.join(ROOT, doc), encoding="utf-8") as f:
            text = f.read()
        for m in re.finditer(r"python (?:-m pdb )?examples/(\w+)\.py((?:[ \t]+[^`\s#]+"
                             r"|\n(?=[^`\n]*`)[ \t]*[^`\s#]+)*)", text):
            found.append((os.path.basename(doc), m.group(1), m.group(2).split()))
    return found


def test_every_documented_example_command_parses():
    commands = documented_commands()
    assert len(commands) >= 20 and {c[1] for c in commands} >= {"train_mnist", "top_patches"}
    results = in_one_process([(script, argv, ROOT) for _, script, argv in commands], True)
    bad = [(doc, script, " ".join(argv), out.strip().splitlines()[-1:])
           for (doc, script, argv), (status, out) in zip(commands, results) if status != 0]
    assert not bad, bad
