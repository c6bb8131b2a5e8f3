"""``minicnn report-card`` on a tiny trained lenet run: every method named, the sanity
verdicts of docs/studies.md, the cache (a second card is fast; a corrupt file is rebuilt),
the run folder's lock."""
import os
import re
import time

import numpy as np
import pytest

from minicnn.cli.command import main
from minicnn.files.locks import FolderLock
from minicnn.studies.report_card import card_methods, sanity_verdict

# docs/studies.md, "Which methods pass" (the fully trained lenet, 48 digits)
DOCS_VERDICTS = {
    "gradient": "passes", "SmoothGrad": "passes", "gradient x input": "passes",
    "integrated gradients": "passes", "DeepLIFT": "passes", "LRP epsilon": "passes",
    "LRP epsilon-gamma-box": "passes", "Grad-CAM": "passes", "deconvnet": "mixed",
    "guided backprop": "fails", "Grad-CAM++": "fails", "excitation backprop": "fails"}
# docs/studies.md's numbers (signed, cascading: logits random, all random)
DOCS_NUMBERS = {
    "gradient": (-0.035, 0.005), "SmoothGrad": (-0.077, 0.008),
    "gradient x input": (-0.037, 0.010), "integrated gradients": (-0.049, 0.014),
    "DeepLIFT": (-0.053, 0.013), "LRP epsilon": (-0.060, 0.016),
    "LRP epsilon-gamma-box": (-0.074, 0.067), "Grad-CAM": (0.361, 0.200),
    "deconvnet": (0.261, 0.289), "guided backprop": (0.957, 0.411),
    "Grad-CAM++": (0.985, 0.728), "excitation backprop": (0.999, 0.864)}


def test_the_verdict_rule_gives_the_docs_verdicts_on_the_docs_numbers():
    """All but deconvnet: docs/studies.md calls it mixed because it fails the data
    randomization test, which the card does not run; on the cascading numbers alone
    (0.261, 0.289: both below Cohen's 0.3) the rule says it passes."""
    verdicts = {name: sanity_verdict(*numbers) for name, numbers in DOCS_NUMBERS.items()}
    assert verdicts == dict(DOCS_VERDICTS, deconvnet="passes")
    assert sanity_verdict(0.6, 0.4) == "fails" and sanity_verdict(0.2, 0.4) == "mixed"


@pytest.fixture(scope="module")
def run(tmp_path_factory, data_root_path):
    """lenet after 20 Adam steps (1,280 training digits, about 88% on 100 test digits)."""
    out = str(tmp_path_factory.mktemp("card") / "run")
    assert main(["train", "--model", "lenet", "--epochs", "1", "--train-subset", "1280",
                 "--test-subset", "100", "--data-dir", data_root_path, "--out", out,
                 "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def data_root_path():
    root = os.environ.get("MINICNN_DATA")
    if not root or not os.path.isdir(os.path.join(root, "mnist")):
        pytest.skip("MINICNN_DATA with mnist/ is needed for a trained run")
    return root


def card_rows(path):
    rows = {}
    for line in open(path).read().splitlines():
        cells = [c.strip() for c in line.strip("|").split("|")]
        if line.startswith("| ") and len(cells) == 10 and cells[0] != "method":
            rows[cells[0]] = cells
    return rows


def test_a_card_names_every_method_with_the_docs_verdicts_and_a_second_card_is_fast(
        run, backend, device, capsys):
    started = time.perf_counter()
    assert main(["report-card", run, "--images", "6", "--sanity-images", "6",
                 "--no-progress", "--device", device]) == 0
    first = time.perf_counter() - started
    rows = card_rows(os.path.join(run, "report-card.md"))
    import minicnn
    model = minicnn.load_model(os.path.join(run, "model.npz"))
    assert set(rows) == set(card_methods(model)) | {"random", "Sobel edges"}
    assert os.path.getsize(os.path.join(run, "report-card.png")) > 0
    verdicts = {name: rows[name][7] for name in DOCS_VERDICTS}
    # A lenet trained 20 steps keeps its deconvnet map when the top layers are randomized
    # (0.55 with the logits random, 0.31 with all), as the weaker lenet of the earlier
    # version of docs/studies.md did (0.415-0.448 at every stage); the fully trained one
    # drops it to 0.26 at once. So deconvnet fails here; every other verdict is the docs'.
    assert verdicts == dict(DOCS_VERDICTS, deconvnet="fails"), verdicts
    assert " 0 of 19 methods" in capsys.readouterr().out

    started = time.perf_counter()
    assert main(["report-card", run, "--images", "6", "--sanity-images", "6",
                 "--no-progress", "--device", device]) == 0
    assert "19 of 19 methods read from the cache" in open(
        os.path.join(run, "report-card.md")).read()
    assert time.perf_counter() - started < first / 3
    assert card_rows(os.path.join(run, "report-card.md")).keys() == rows.keys()


def test_the_explorers_button_makes_the_same_card_from_the_same_cache(run):
    """The page's job gets its test images as `minicnn explore` loads them and calls the
    command's own function: the same key, so every method comes from the command's cache."""
    from minicnn.explore.card import CardJob
    from minicnn.explore.command import _data
    card = ["report-card", run, "--images", "6", "--sanity-images", "6", "--no-progress"]
    assert main(card) == 0                           # the cache (read back if the test above ran)
    before = card_rows(os.path.join(run, "report-card.md"))
    job = CardJob(run, _data("mnist", None)[1], images=6, sanity_images=6)
    job.start()
    job.thread.join(120)
    assert job.state == "done" and "19 of 19 methods from the cache" in job.message, job.message
    assert card_rows(os.path.join(run, "report-card.md")) == before


def test_a_corrupt_cache_file_is_recomputed_with_one_line(run, capsys):
    card = ["report-card", run, "--images", "6", "--sanity-images", "6", "--no-progress"]
    main(card)                           # the card of the test above: read from its cache
    cached = [os.path.join(d, f) for d, _, files in os.walk(os.path.join(run,
              "report-card-cache")) for f in files if f == "gradient.npz"]
    capsys.readouterr()
    for path in cached:
        with open(path, "wb") as f:
            f.write(b"not a zip")
    assert main(card) == 0
    captured = capsys.readouterr()
    assert len(re.findall(r"unreadable .*computing it again", captured.err)) == 1, captured.err
    assert "18 of 19 methods from the cache" in captured.out
    with np.load(cached[0]) as f:
        assert f["deletion"].shape == (6,)


def test_a_run_being_trained_is_refused_in_one_line(run, capsys):
    with FolderLock(run, "training run"):
        assert main(["report-card", run, "--images", "2", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip()
    assert "is in use by another minicnn process" in err and len(err.splitlines()) == 1


def test_a_folder_without_a_model_is_a_usage_error(tmp_path, capsys):
    assert main(["report-card", str(tmp_path), "--no-progress"]) == 1
    assert "no model.npz" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["report-card", str(tmp_path), "--images", "0"])
    assert exit_.value.code == 2
