"""The explorer's backward view, conservation plot and report card, without a browser."""
import re

import numpy as np
import pytest

from minicnn import models, save_model, viz
from minicnn.backend import as_numpy
from minicnn.explore import backward_views, views
from minicnn.explore.card import CardJob, read_card
from minicnn.layers import ReLU
from minicnn.files.locks import FolderLock
from minicnn.studies.report_card import card_methods
from minicnn.studies.report_card_run import IMAGES, SANITY_IMAGES, write_run_card
from minicnn.viz.backward_plots import CHECK_TOLERANCE
from test_explore import small  # noqa: F401  (the fixture: tiny_cnn and a drawn bar)


def check_of(caption):
    return float(re.search(r"check (\S+)", caption).group(1))


def test_the_backward_view_shows_every_layers_signal_and_check(small):  # noqa: F811
    model, _, x = small
    panels, table = backward_views.backward_view(model, x, target=3)
    records = viz.step_through(model, x, 3)
    assert len(panels) == len(records) == len(model.layers)
    for (caption, image), record in zip(panels, records):
        assert caption.startswith(f"{record['index']} {type(model.layers[record['index']]).__name__}")
        assert check_of(caption) < CHECK_TOLERANCE
        np.testing.assert_array_equal(image, views.signal_grid(record["grad_in"][0], 320)[0])
    rows = [line for line in table.splitlines() if re.match(r"\| \d+ ", line)]
    assert len(rows) == len(model.layers) and "wrong" not in table
    assert "`dx = g * (x > 0)`" in rows[1]                 # the ReLU's formula
    first = as_numpy(viz.saliency(model, x, 3))[0]         # what layer 0 sent down: d f / d x
    np.testing.assert_array_equal(panels[0][1], views.signal_grid(first, 320)[0])


class ForgetsTheMask(ReLU):
    def backward(self, grad_out):
        return grad_out


def test_a_broken_backward_is_marked_wrong_at_its_own_layer(small):  # noqa: F811
    model, _, x = small
    bad = ForgetsTheMask.__new__(ForgetsTheMask)
    bad.__dict__.update(model.layers[4].__dict__)
    model.layers[4] = bad
    panels, table = backward_views.backward_view(model, x)
    wrong = [i for i, (caption, _) in enumerate(panels) if check_of(caption) > CHECK_TOLERANCE]
    assert wrong == [4]
    assert [line.split()[1] for line in table.splitlines() if "**wrong**" in line] == ["4"]


@pytest.mark.parametrize("rule", ["guided", "lrp-epsilon", "deeplift"])
def test_a_rule_says_its_distance_from_the_gradient(small, rule):  # noqa: F811
    model, _, x = small
    panels, table = backward_views.backward_view(model, x, rule=rule)
    assert len(panels) == len(model.layers) and "check" not in table.split("\n", 2)[2]
    distances = [float(c.split("vs gradient ")[1]) for c, _ in panels]
    assert max(distances) > 0.01                                 # the rule changes some
    if rule == "guided":                                         # ... the ReLUs only
        assert all((d > 0) == isinstance(layer, ReLU) for d, layer in zip(distances, model.layers))


def test_every_choice_of_the_dropdowns_runs(small):  # noqa: F811
    model, _, x = small
    for rule in backward_views.RULES:
        panels, _ = backward_views.backward_view(model, x, rule=rule)
        assert len(panels) == len(model.layers), rule
    for method in backward_views.LRP_CHOICES:
        names, maps, table, _ = backward_views.conservation(model, x, None, method)
        assert np.isfinite(table).all() and maps[0].shape == x.shape, method


def test_conservation_sums_the_maps_and_draws_three_lines(small):  # noqa: F811
    model, _, x = small
    names, maps, table, residuals = backward_views.conservation(model, x, 3, "lrp-0")
    assert names == ["LRP-0", "DeepLIFT", "integrated gradients"]
    assert table.shape == (len(model.layers) + 1, 3)
    # the first row is each map's sum: the maps are the ones the table sums
    np.testing.assert_allclose(table[0], [m.sum() for m in maps], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(maps[0], as_numpy(viz.lrp(model, x, 3, rule="0")), rtol=1e-6)
    blank = views.blank_canvas(model, x)
    np.testing.assert_allclose(maps[1], as_numpy(viz.deeplift(model, x, 3, baseline=blank)))
    assert {"sum-to-delta", "completeness"} <= {k.split(": ")[-1] for k in residuals}
    images, plot = backward_views.conservation_view(model, x, 3, "lrp-0")
    assert [t for t, _ in images] == names and images[0][1].shape == (112, 112, 3)
    assert plot.dtype == np.uint8 and plot.ndim == 3 and plot.shape[1] > 600


# -- the report card ---------------------------------------------------------------
@pytest.fixture
def tiny_run(tmp_path):
    """A run folder of an untrained tiny_cnn and 4 random "test images"."""
    save_model(models.tiny_cnn(seed=0), tmp_path / "model.npz")
    (tmp_path / "config.json").write_text('{"model": "tiny_cnn", "dataset": "mnist"}')
    rng = np.random.default_rng(0)
    return tmp_path, (rng.integers(0, 256, (4, 28, 28)).astype(np.uint8),
                      rng.integers(0, 10, 4))


def test_read_card_puts_its_headings_under_the_pages(tmp_path):
    assert read_card(tmp_path) is None
    (tmp_path / "report-card.md").write_text("# Report card\n\n| a | b |\n|---|---|\n| 1 | 2 |\n")
    assert read_card(tmp_path).splitlines()[:3] == ["### Report card", "", "| a | b |"]
    (tmp_path / "report-card.md").write_bytes(b"\xff\xfe# not text")
    assert "cannot be read" in read_card(tmp_path) and "\n" not in read_card(tmp_path)


def test_the_job_writes_the_commands_card_and_a_second_finds_its_cache(tiny_run, device):
    run, test = tiny_run
    job = CardJob(str(run), test, device, images=4, sanity_images=2)
    assert job.start() and not job.start()                    # one card at a time
    job.thread.join(300)
    assert job.state == "done", job.message
    assert job.progress()[:2] == (len(card_methods(models.tiny_cnn())) - 1,
                                  len(card_methods(models.tiny_cnn())))
    text = read_card(str(run))
    assert all(f"| {name} |" in text for name in card_methods(models.tiny_cnn()))
    again = write_run_card(str(run), *test, 4, 2, device, log=None)   # as the command does
    assert again.cached == again.methods and again.seconds < job.seconds()


def test_a_busy_run_folder_is_said_in_one_line(tiny_run):
    run, test = tiny_run
    job = CardJob(str(run), test, images=2, sanity_images=2)
    with FolderLock(run, "minicnn process"):
        job.start()
        job.thread.join(60)
    assert job.state == "failed" and "in use by another minicnn process" in job.message
    assert not (run / "report-card.md").exists()


def test_the_card_section_offers_the_button_then_the_progress_then_the_table(tiny_run):
    gr = pytest.importorskip("gradio", reason="the explore extra (gradio) is not installed")
    from minicnn.explore.sections import ReportCard
    run, test = tiny_run
    job = CardJob(str(run), test, images=4, sanity_images=2)
    with gr.Blocks():
        section = ReportCard(str(run), job)
    status, button, table, timer = section.show()
    assert "no report card" in status and button.visible and table == "" and not timer.active
    status, button, _, timer = section.start()
    assert "<progress" in status and not button.visible and timer.active
    job.thread.join(300)
    status, button, table, timer = section.show()
    assert status.startswith("report card written in") and "| gradient |" in table
    assert not button.visible and not timer.active


def test_the_page_asks_for_the_commands_numbers():
    from minicnn.cli.command import build_parser
    args = build_parser().parse_args(["report-card", "RUN"])
    assert (args.images, args.sanity_images) == (IMAGES, SANITY_IMAGES)
    assert (CardJob("RUN", None).images, CardJob("RUN", None).sanity_images) == (IMAGES,
                                                                                SANITY_IMAGES)


def test_the_page_builds_with_the_new_sections(tiny_run):
    gradio = pytest.importorskip("gradio", reason="the explore extra (gradio) is not installed")
    from minicnn.explore.page import build
    run, test = tiny_run
    model = models.tiny_cnn(seed=0)
    page = build(model, test_data=test, run_dir=str(run), card=CardJob(str(run), test))
    ids = {getattr(b, "elem_id", None) for b in page.blocks.values()}
    assert {"backward", "backward_checks", "rule", "conservation", "conservation_maps",
            "lrp_rule", "card", "card_button", "card_status"} <= ids
    assert isinstance(page, gradio.Blocks)


def test_the_speed_script_times_every_part_of_a_stroke(small):  # noqa: F811
    from minicnn.explore.speed import measure, strokes
    parts = measure(small[0], strokes(1))
    assert list(parts) == ["fast", "gradient methods", "occlusion", "backward view",
                           "conservation"]
    assert all(seconds > 0 for seconds in parts.values())
