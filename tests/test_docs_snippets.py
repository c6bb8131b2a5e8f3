"""The documentation's code runs, so the site cannot drift from the code.

- Every ``python`` block of the how-to guides and of the explanations written for the site
  (``docs/how-to/``, ``docs/explanations/``) is executed, page by page in the order of the
  navigation (mkdocs.yml), the blocks of a page in one namespace, all in one temporary
  working folder: the run folders a guide trains (``runs/lenet-small``) serve the guides
  after it, as they would a reader who follows them in order. ``runs/lenet-10ep``, which the
  pages take from "What training looks like", is stood in for by lenet trained on 256 images.
  The data is MINICNN_DATA's MNIST; the guides train on subsets, so this takes seconds.
- A block right after ``<!-- docs-test: skip (why) -->`` is not run (the why is required:
  a GPU, a server that runs until stopped); ``<!-- docs-test: requires MODULE -->`` runs it
  only where MODULE imports (PyTorch).
- Every ``minicnn ...`` command of a ``bash`` block, and every ``$ minicnn ...`` line of a
  transcript, on every page and in the README, is parsed by the command's own parser (with
  the checks of options that go together), so a renamed option shows here.
"""
import glob
import os
import re
import shlex

import matplotlib
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, "docs")
FENCE = re.compile(r"^(?:<!-- docs-test: (?P<marker>.*?) -->\n)?```(?P<lang>\w*)[^\n]*\n(?P<code>.*?)^```",
                   re.M | re.S)


def executed_pages():
    """The how-to and explanation pages of the navigation, in its order."""
    with open(os.path.join(ROOT, "mkdocs.yml"), encoding="utf-8") as f:
        nav = re.findall(r"^\s+- (?:[^\n]*: )?((?:how-to|explanations)/[\w-]+\.md)\s*$", f.read(), re.M)
    return nav


def blocks(path, lang):
    """``(marker or None, code)`` of each fenced block of ``lang`` in the page."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    return [(m["marker"], m["code"]) for m in FENCE.finditer(text) if m["lang"] == lang]


def all_pages():
    return ["README.md", *sorted(os.path.relpath(p, ROOT) for p in
                                 glob.glob(os.path.join(DOCS, "**", "*.md"), recursive=True))]


@pytest.fixture(scope="module")
def page_results(tmp_path_factory):
    """Run every page's python blocks; ``{page: (error or None, blocks run, blocks skipped)}``."""
    data_root = os.environ.get("MINICNN_DATA")
    if not data_root or not os.path.isdir(os.path.join(data_root, "mnist")):
        pytest.skip("MINICNN_DATA with an mnist/ folder is not set: the guides' code needs MNIST")
    import matplotlib.pyplot as plt

    from minicnn.data import load_mnist
    from minicnn.training import TrainConfig, Trainer

    work = tmp_path_factory.mktemp("docs-snippets")
    before = os.getcwd()
    os.chdir(work)
    backend = matplotlib.get_backend()
    matplotlib.use("Agg")
    results = {}
    try:
        train, test = load_mnist(data_root)
        Trainer(TrainConfig(model="lenet", epochs=1, train_subset=256, test_subset=100),
                train, test, "runs/lenet-10ep", progress=False).fit()
        for page in executed_pages():
            namespace = {"__name__": "docs_" + re.sub(r"\W", "_", page)}
            ran, skipped, error = 0, [], None
            for marker, code in blocks(os.path.join(DOCS, page), "python"):
                if marker is not None and not runs(marker):
                    skipped.append(marker)
                    continue
                try:
                    exec(compile(code, f"{page} block {ran + 1}", "exec"), namespace)
                except Exception as err:          # reported by the page's test, with the block
                    error = f"{page}, python block {ran + 1}: {type(err).__name__}: {err}\n{code}"
                    break
                ran += 1
            plt.close("all")
            results[page] = (error, ran, skipped)
    finally:
        os.chdir(before)
        matplotlib.use(backend)
    return results


def runs(marker):
    """Whether a block under this marker runs here; a marker that is neither form fails."""
    if marker.startswith("requires "):
        module = marker.split()[1]
        try:
            __import__(module)
            return True
        except ImportError:
            return False
    assert re.fullmatch(r"skip \(.{10,}\)", marker), f"a docs-test marker says why: {marker!r}"
    return False


@pytest.mark.parametrize("page", executed_pages())
def test_the_page_python_blocks_run(page, page_results):
    error, ran, skipped = page_results[page]
    assert error is None, error
    assert ran + len(skipped) == len(blocks(os.path.join(DOCS, page), "python"))


def test_the_guides_named_in_the_issue_have_code_that_runs():
    pages = executed_pages()
    for guide in ("train", "validation", "evaluate", "explore", "gpu", "own-layer", "pytorch",
                  "troubleshooting"):
        assert f"how-to/{guide}.md" in pages
    runnable = [p for p in pages for marker, _ in blocks(os.path.join(DOCS, p), "python")
                if marker is None]
    assert len(runnable) >= 15, runnable


def test_every_marker_is_known_and_says_why():
    """Markers are lines of their own (one quoted in a sentence is not a marker)."""
    for page in all_pages():
        with open(os.path.join(ROOT, page), encoding="utf-8") as f:
            text = f.read()
        for marker in re.findall(r"^<!-- docs-test: (.*?) -->$", text, flags=re.M):
            assert re.fullmatch(r"skip \(.{10,}\)|requires \w+", marker), (page, marker)
        for m in re.finditer(r"^<!-- docs-test: .*? -->\n(?!```python)", text, flags=re.M):
            pytest.fail(f"{page}: a docs-test marker not right above a python block: {m[0]!r}")


def commands(text):
    """The argument lists of the ``minicnn`` commands in a page's bash blocks and transcripts."""
    lines = []
    for m in FENCE.finditer(text):
        code = m["code"].replace("\\\n", " ")
        if m["lang"] == "bash":
            lines += code.splitlines()
        elif m["lang"] == "text":
            lines += [line[2:] for line in code.splitlines() if line.startswith("$ minicnn ")]
    found = []
    for line in lines:
        for part in re.split(r"&&|;|\|", line):
            words = shlex.split(part, comments=True)
            while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):    # VAR=value before it
                words = words[1:]
            if words and words[0] == "minicnn":
                found.append(words[1:])
    return found


def test_every_documented_minicnn_command_parses():
    from minicnn.cli.command import _check_together, build_parser
    checked, bad = 0, []
    for page in all_pages():
        with open(os.path.join(ROOT, page), encoding="utf-8") as f:
            text = f.read()
        for argv in commands(text):
            try:
                args = build_parser().parse_args(argv)
                if args.command == "train":
                    _check_together(args)
            except SystemExit as stop:
                bad.append((page, " ".join(argv), stop.code))
            checked += 1
    assert not bad, bad
    assert checked >= 20, checked
