"""Training with batch norm, schedules, AdamW and label smoothing: resume stays bit-exact,
the schedule the trainer follows is the one configured, and the CLI exposes every option."""
import json
import os

import numpy as np
import pytest
from test_train import assert_same_state, mnist, small  # noqa: F401 (fixture)

from minicnn.cli.command import main
from minicnn.optim import Adam
from minicnn.parameter import Parameter
from minicnn.training.config import RECIPES, make_schedule
from minicnn.training.trainer import Trainer


class Stop(Exception):
    pass


def stop_after_first_epoch(epoch, model):
    if epoch == 1:
        raise Stop            # as if the process died right after the epoch-1 checkpoint


def straight_split_resumed(settings, mnist, tmp_path):
    """``(straight, split, resumed)``: one run trained straight through, one stopped after
    its first epoch, and that one resumed from its run folder (not yet trained on)."""
    straight = Trainer(small(**settings), *mnist, tmp_path / "straight", progress=False)
    straight.fit()
    split = Trainer(small(**settings), *mnist, tmp_path / "split", progress=False,
                    callbacks=[stop_after_first_epoch])
    with pytest.raises(Stop):
        split.fit()
    return straight, split, Trainer.resume(tmp_path / "split", *mnist, progress=False)


@pytest.mark.parametrize("settings", [
    dict(model="fast_cnn", schedule="onecycle", lr=0.01, beta1=0.9),
    dict(model="fast_cnn", optimizer="adamw", weight_decay=0.05, schedule="cosine", warmup=0.5,
         label_smoothing=0.1),
    dict(model="tiny_cnn", optimizer="sgd", lr=0.05, schedule="step", step_size=1),
], ids=["onecycle", "adamw-cosine-warmup-smoothing", "sgd-step"])
def test_resume_is_bit_exact_with_batch_norm_and_schedules(mnist, tmp_path, settings):
    straight, split, resumed = straight_split_resumed(settings, mnist, tmp_path)
    assert resumed.optimizer.lr == split.optimizer.lr          # the schedule is where it was
    resumed.fit()
    assert_same_state(resumed.model.state_dict(), straight.model.state_dict())
    assert resumed.optimizer.lr == straight.optimizer.lr


def test_the_trainer_follows_the_configured_schedule(mnist, tmp_path):
    config = small(model="fast_cnn", schedule="onecycle", lr=0.02, epochs=1)
    trainer = Trainer(config, *mnist, tmp_path, progress=False)
    steps = len(trainer.train_batches)
    expected = make_schedule(config, Adam([Parameter(np.zeros(1))], lr=config.lr), steps)
    for _ in range(steps):
        expected.step()
    trainer.fit()
    assert trainer.optimizer.lr == expected.lr


def test_horizon_schedules_cannot_be_extended_on_resume(mnist, tmp_path):
    Trainer(small(schedule="cosine", epochs=1), *mnist, tmp_path, progress=False).fit()
    with pytest.raises(ValueError, match="cosine schedule, which spans its 1 epochs"):
        Trainer.resume(tmp_path, *mnist, epochs=2, progress=False)


def test_cli_recipe_and_options_reach_the_config(mnist, tmp_path, capsys):
    data = os.environ["MINICNN_DATA"]
    out = tmp_path / "fast"
    assert main(["train", "--recipe", "fast", "--train-subset", "256", "--test-subset", "100",
                 "--label-smoothing", "0.1", "--data-dir", data, "--out", str(out),
                 "--no-progress"]) == 0
    saved = json.loads((out / "config.json").read_text())
    assert {k: saved[k] for k in RECIPES["fast"]} == RECIPES["fast"]
    assert saved["label_smoothing"] == 0.1
    assert "schedule onecycle" in capsys.readouterr().out
    assert main(["train", "--recipe", "fast", "--resume", "--out", str(out)]) == 1
    assert "--recipe starts a run" in capsys.readouterr().err


def test_cli_evaluate_tta_and_average_of_runs(mnist, tmp_path, capsys):
    data = os.environ["MINICNN_DATA"]
    runs = []
    for seed in (0, 1):
        out = tmp_path / f"run{seed}"
        assert main(["train", "--model", "tiny_cnn", "--epochs", "1", "--train-subset", "256",
                     "--test-subset", "100", "--seed", str(seed), "--data-dir", data,
                     "--out", str(out), "--no-progress"]) == 0
        runs.append(str(out))
    capsys.readouterr()
    assert main(["evaluate", *runs, "--tta", "--test-subset", "200"]) == 0
    out = capsys.readouterr().out
    assert "200 test images; accuracy per run (plain / TTA)" in out
    assert "average of the 2 runs' probabilities:" in out
