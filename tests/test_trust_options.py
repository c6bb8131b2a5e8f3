"""Bad option values of ``minicnn``: one line naming the option, exit code 2, no usage block;
and the same rules for Python users of ``TrainConfig`` (issue 24)."""
import math
import sys

import pytest

from minicnn.cli import command as cli
from minicnn.cli.command import build_parser, main
from minicnn.training.config import TrainConfig

# Every numeric option, by command. The huge value: 10**30 for whole numbers; for --lr and
# --weight-decay a finite huge value is allowed (training then diverges and stops in one
# line, exit 3: test_trust_fpe.py), so theirs overflows to infinity.
NUMERIC = {
    "train": ["--epochs", "--batch-size", "--lr", "--momentum", "--beta1", "--beta2",
              "--weight-decay", "--warmup", "--step-size", "--label-smoothing", "--seed",
              "--validation", "--train-subset", "--test-subset"],
    "evaluate": ["--test-subset"],
    "explore": ["--port"],
    "report-card": ["--images", "--sanity-images"],
    "doctor": ["--repeats"],
}
WHOLE = {"--epochs", "--batch-size", "--step-size", "--seed", "--validation", "--train-subset",
         "--test-subset", "--port", "--images", "--sanity-images", "--repeats"}
HUGE = {"--lr": "1e999", "--weight-decay": "1e999"}


def command_line(command, option, value):
    run = [] if command in ("train", "doctor") else ["RUN"]
    return [command, *run, f"{option}={value}"]       # "=": also "-1" is the option's value


@pytest.fixture
def nothing_runs(monkeypatch):
    """Options that pass parsing must not start anything: the commands are replaced."""
    def refuse(args):
        raise AssertionError(f"the options were accepted: {vars(args)}")
    for name in ("cmd_train", "cmd_evaluate", "cmd_explore", "cmd_report_card", "cmd_doctor"):
        monkeypatch.setattr(cli, name, refuse)


def one_line_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert info.value.code == 2, err
    assert len(lines) == 1, err                  # no usage block
    return lines[0]


def huge(option):
    return "1" + "0" * 30 if option in WHOLE else HUGE.get(option, "1e30")


@pytest.mark.parametrize("command, option", [(c, o) for c, opts in NUMERIC.items() for o in opts])
@pytest.mark.parametrize("value", ["nan", "inf", "-1", "huge", "abc"])
def test_every_numeric_option_refuses_bad_values_in_one_line(capsys, nothing_runs, command,
                                                            option, value):
    value = huge(option) if value == "huge" else value
    line = one_line_exit_2(capsys, command_line(command, option, value))
    assert line.startswith(f"minicnn {command}: error: argument {option}: must be "), line
    assert " got " in line


def test_the_table_lists_every_numeric_option():
    """A numeric option added later is tested above too: every option with a type (other
    than --model's name check) is in NUMERIC."""
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command").choices
    for name, sub in commands.items():
        typed = {a.option_strings[0] for a in sub._actions
                 if a.type is not None and a.option_strings and a.dest != "model"}
        assert typed == set(NUMERIC.get(name, [])), name


@pytest.mark.parametrize("argv", [
    ["train", "--momentum", "0"], ["train", "--label-smoothing", "0.99"],
    ["train", "--beta2", "0.999"], ["train", "--seed", str(2 ** 32 - 1)],
    ["train", "--validation", "0"], ["train", "--lr", "1e30"], ["train", "--weight-decay", "0"],
    ["train", "--schedule", "cosine", "--epochs", "2", "--warmup", "1.5"],
    ["train", "--batch-size", "60000"], ["evaluate", "RUN", "--test-subset", "10000"],
    ["explore", "RUN", "--port", "1"], ["explore", "RUN", "--port", "65535"]])
def test_values_at_the_limits_are_accepted(argv, nothing_runs):
    with pytest.raises(AssertionError, match="the options were accepted"):
        main(argv)


@pytest.mark.parametrize("option, value, limit", [
    ("momentum", math.nan, "in [0, 1)"), ("momentum", 1.0, "in [0, 1)"),
    ("beta1", -0.1, "in [0, 1)"), ("beta2", math.inf, "in [0, 1)"),
    ("label_smoothing", 1.0, "in [0, 1)"), ("weight_decay", math.inf, "finite number >= 0"),
    ("lr", math.nan, "finite number > 0"), ("warmup", math.nan, "in [0, "),
    ("seed", -1, "whole number in [0, 4294967295]"), ("seed", 2 ** 32, "4294967295"),
    ("epochs", 10 ** 12, "whole number in [1, "), ("batch_size", 2.5, "whole number"),
    ("eval_batch_size", 0, "whole number"), ("log_every", True, "whole number"),
    ("test_subset", 10 ** 30, "whole number"), ("lr", "0.1", "finite number > 0"),
    ("validation", -1, "whole number in [0, 60000]")])   # (run_split checks what is left)
def test_python_users_get_the_same_rules(option, value, limit):
    with pytest.raises(ValueError) as info:
        TrainConfig(**{option: value}).validate()
    assert str(info.value).startswith(f"{option} must be ") and limit in str(info.value)


@pytest.mark.parametrize("option, value", [
    ("momentum", "nan"), ("label-smoothing", "1"), ("seed", "-1"), ("epochs", str(10 ** 12)),
    ("lr", "-1"), ("weight-decay", "inf"), ("warmup", "-0.5")])
def test_one_source_of_the_ranges(capsys, nothing_runs, option, value):
    """The command line's message is TrainConfig.validate's, with the option named."""
    line = one_line_exit_2(capsys, ["train", f"--{option}={value}"])
    field = option.replace("-", "_")
    number = int(value) if option in ("seed", "epochs") else float(value)
    with pytest.raises(ValueError) as info:
        TrainConfig(**{field: number}).validate()
    assert line == f"minicnn train: error: argument --{option}: " + \
        str(info.value).removeprefix(f"{field} ")


@pytest.mark.parametrize("argv, words", [
    (["train", "--warmup", "1"], ["argument --warmup", "step or cosine"]),
    (["train", "--recipe", "fast", "--warmup", "0.5"], ["argument --warmup", "onecycle"]),
    (["train", "--schedule", "cosine", "--warmup", "2"], ["argument --warmup", "2 epochs"]),
    (["train", "--schedule", "step", "--epochs", "3", "--warmup", "4"], ["3 epochs"])])
def test_options_that_do_not_go_together_are_bad_values(capsys, nothing_runs, argv, words):
    line = one_line_exit_2(capsys, argv)
    assert line.startswith("minicnn train: error: ") and all(w in line for w in words), line


def test_warmup_must_end_before_the_run_does():
    with pytest.raises(ValueError, match="warmup must be shorter than the run's 2 epochs"):
        TrainConfig(schedule="cosine", epochs=2, warmup=2.0).validate()


@pytest.mark.parametrize("argv, words", [
    (["train", "--model", "nope"], ["argument --model: unknown model 'nope'", "lenet",
                                    "mobilenet_mnist"]),
    (["train", "--model", "alexnet"], ["argument --model: model 'alexnet' is ImageNet-sized",
                                       "minicnn summary --model alexnet"]),
    (["summary", "--model", "nope"], ["minicnn summary: error: argument --model: unknown "
                                      "model 'nope'", "vgg19"]),
    (["train", "--device", "tpu"], ["argument --device: invalid choice: 'tpu'"]),
    (["evaluate"], ["minicnn evaluate: error: the following arguments are required: RUN_DIR"]),
    (["train", "--epochs"], ["argument --epochs: expected one argument"]),
    ([], ["minicnn: error: choose a command: train, evaluate, summary, explore, report-card or doctor"]),
    (["nope"], ["minicnn: error: argument COMMAND: invalid choice: 'nope'"]),
])
def test_usage_errors_are_one_line(capsys, nothing_runs, argv, words):
    line = one_line_exit_2(capsys, argv)
    assert all(w in line for w in words), line


def test_help_still_shows_the_usage(capsys):
    with pytest.raises(SystemExit) as info:
        main(["train", "--help"])
    assert info.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: minicnn train") and "--momentum" in out


@pytest.mark.parametrize("argv", [["train", "--lr", "-1e-3"], ["train", "--epochs"]])
def test_a_missing_value_says_how_to_give_one_that_starts_with_a_dash(capsys, nothing_runs,
                                                                       argv):
    """argparse takes "-1e-3" for an option, not a value (only "-1" and "-1.5" look like
    numbers to it): the one line says how to write it."""
    line = one_line_exit_2(capsys, argv)
    assert line.endswith("expected one argument (a value that starts with '-' is "
                         f"written {argv[1]}=VALUE)"), line


@pytest.mark.skipif(sys.platform != "linux", reason="an address-space limit (RLIMIT_AS)")
def test_a_batch_that_does_not_fit_in_memory_is_one_line(data_root, tmp_path):
    """A batch size within the limits can still need more memory than there is: under a
    3 GB address-space limit, lenet's first convolution of 30,000 images needs 2.8 GiB."""
    import os
    import resource
    import subprocess

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 * 10 ** 9, 3 * 10 ** 9))
    done = subprocess.run(
        [sys.executable, "-m", "minicnn", "train", "--batch-size", "30000", "--epochs", "1",
         "--test-subset", "64", "--no-progress", "--data-dir", data_root,
         "--out", str(tmp_path / "run")],
        preexec_fn=limit, capture_output=True, text=True, timeout=300,   # (one thread: a
        env=dict(os.environ, MINICNN_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"))  # few buffers)
    lines = done.stderr.strip().splitlines()
    assert done.returncode == 1 and len(lines) == 1, done.stderr
    assert lines[0].startswith("minicnn train: error: out of memory (")
    assert lines[0].endswith("lower --batch-size")
