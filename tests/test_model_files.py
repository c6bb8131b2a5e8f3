"""Broken model files and checkpoints: each ends in one clear line naming the file.

Empty, truncated, corrupt, non-npz, ``.npy``, pickled and object-array files, a
missing or malformed header, missing weights, an old checkpoint format, and
architectures too deep or too large to build (refused before any layer is made),
for ``load_model``, ``load_weights``, ``minicnn evaluate RUN`` and ``train --resume``.
None of this needs the MNIST files: the command reads the checkpoint first.
"""
import io
import json
import pickle

import numpy as np
import pytest

from minicnn import layers, load_model, load_weights, models, save_model
from minicnn.cli.command import main
from minicnn.files.model_files import FORMAT, MAX_DEPTH, MAX_PARAMETERS, architecture


def good_bytes(tmp_path):
    save_model(models.tiny_cnn(), tmp_path / "good.npz")
    return (tmp_path / "good.npz").read_bytes()


def npz_bytes(**arrays):
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    return buffer.getvalue()


def header(spec=None, **extra):
    spec = architecture(models.tiny_cnn()) if spec is None else spec
    return np.array(json.dumps({"format": FORMAT, "architecture": spec, **extra}))


def corrupted(raw, at):
    """``raw`` with 64 bytes overwritten at ``at``: the zip's CRC check catches it."""
    return raw[:at] + bytes(64) + raw[at + 64:]


def weights_offset(raw):
    """Where the data of the weight entry '0.weight' starts (past the header entry)."""
    return raw.index(b"0.weight.npy") + 200


def dense(in_features, out_features):
    return {"type": "Sequential", "config": {"input_shape": None}, "children": [
        {"type": "Dense", "config": {"in_features": in_features, "out_features": out_features,
                                     "bias": True}}]}


def nested(depth):
    spec = {"type": "Flatten", "config": {}}
    for _ in range(depth):
        spec = {"type": "Sequential", "config": {"input_shape": None}, "children": [spec]}
    return spec


def deep_json(depth):
    """The JSON of ``nested(depth)``, written without recursion (json.dumps would recurse)."""
    inner = json.dumps({"type": "Flatten", "config": {}})
    opening = '{"type": "Sequential", "config": {"input_shape": null}, "children": ['
    return (json.dumps({"format": FORMAT})[:-1] + ', "architecture": ' + opening * depth
            + inner + "]}" * depth + "}")


def state_without(key):
    state = models.tiny_cnn().state_dict()
    state.pop(key)
    return state


# name -> (the file's bytes, given tmp_path; a phrase the message must contain)
FAULTS = {
    "empty": (lambda t: b"", "the file is empty"),
    "truncated": (lambda t: good_bytes(t)[:len(good_bytes(t)) // 2], "not an .npz archive"),
    "corrupt header": (lambda t: corrupted(good_bytes(t), 200),
                       "'__architecture__': cannot be read"),
    "corrupt weights": (lambda t: corrupted(good_bytes(t), weights_offset(good_bytes(t))),
                        "'0.weight': cannot be read"),
    "text": (lambda t: b"hello, this is not a model\n", "not an .npz archive"),
    "pickle": (lambda t: pickle.dumps({"0.weight": [1, 2]}), "not an .npz archive"),
    ".npy": (lambda t: _npy(), "a single NumPy array"),
    "object array": (lambda t: npz_bytes(__architecture__=np.array([{"a": 1}], dtype=object)),
                     "Python objects"),
    "no header": (lambda t: npz_bytes(**models.tiny_cnn().state_dict()),
                  "no __architecture__ entry"),
    "bad JSON": (lambda t: npz_bytes(__architecture__=np.array("{not json")), "not valid JSON"),
    "header not text": (lambda t: npz_bytes(__architecture__=np.arange(3.0)), "not text"),
    "header is a list": (lambda t: npz_bytes(__architecture__=np.array("[1, 2]")),
                         "not a JSON object"),
    "wrong format": (lambda t: npz_bytes(__architecture__=np.array('{"format": "other-9"}')),
                     "unsupported format 'other-9'"),
    "no architecture": (lambda t: npz_bytes(
        __architecture__=np.array(json.dumps({"format": FORMAT}))), "no 'architecture'"),
    "malformed layer": (lambda t: npz_bytes(__architecture__=header({"type": 3})),
                        "layer description"),
    "unknown layer": (lambda t: npz_bytes(__architecture__=header({"type": "Nope", "config": {}})),
                      "unknown layer type 'Nope'"),
    "bad layer config": (lambda t: npz_bytes(__architecture__=header(
        {"type": "Dense", "config": {"in_features": 3, "colour": "red"}})), "Dense"),
    "missing weight": (lambda t: npz_bytes(__architecture__=header(), **state_without("3.weight")),
                       "'3.weight'"),
    "integer weights": (lambda t: npz_bytes(__architecture__=header(), **{
        k: v.astype(np.int64) for k, v in models.tiny_cnn().state_dict().items()}), "int64"),
    "old checkpoint": (lambda t: npz_bytes(__meta__=np.array(json.dumps(
        {"format": "minicnn-checkpoint-1"})), **{"model/0.weight": np.zeros(3)}),
        "older minicnn"),
    "too deep": (lambda t: npz_bytes(__architecture__=header(nested(MAX_DEPTH + 1))),
                 f"nested more than {MAX_DEPTH} levels deep"),
    "10,000 nested": (lambda t: npz_bytes(__architecture__=np.array(deep_json(10_000))),
                      f"nested more than {MAX_DEPTH} levels deep"),
    "Dense of 10^12": (lambda t: npz_bytes(__architecture__=header(dense(10 ** 6, 10 ** 6))),
                       f"more than {MAX_PARAMETERS:,} parameters"),
    "float size": (lambda t: npz_bytes(__architecture__=header(dense(1e6, 1e6))),
                   f"more than {MAX_PARAMETERS:,} parameters"),
    "negative size": (lambda t: npz_bytes(__architecture__=header(dense(-5, 10))),
                      "in_features -5"),
}


# load_weights reads only the weights: an unbuildable architecture does not stop it, and
# a missing weight is a mismatch with the given model
WEIGHTS_USABLE = {"unknown layer", "bad layer config", "missing weight"}


def _npy():
    buffer = io.BytesIO()
    np.save(buffer, np.zeros(3))
    return buffer.getvalue()


def assert_one_clear_line(message, path, phrase):
    assert "\n" not in message, message
    assert str(path) in message, message
    assert phrase in message, message
    assert "minicnn" in message and ("model file" in message or "checkpoint" in message)
    for leak in ("allow_pickle", "unsafely", "Traceback"):
        assert leak not in message, message


@pytest.fixture
def no_layer_is_built(monkeypatch):
    """Fail if a Dense or Conv2D is constructed: too-large files are refused before."""
    def refuse(*args, **kwargs):
        raise AssertionError("a layer was built (and its weights allocated) before the check")
    monkeypatch.setattr(layers.Dense, "__init__", refuse)
    monkeypatch.setattr(layers.Conv2D, "__init__", refuse)


@pytest.mark.parametrize("fault", list(FAULTS))
@pytest.mark.parametrize("reader", ["load_model", "load_weights"])
def test_a_broken_model_file_gives_one_clear_line(tmp_path, fault, reader):
    make, phrase = FAULTS[fault]
    path = tmp_path / "broken.npz"
    path.write_bytes(make(tmp_path))
    target = models.tiny_cnn()
    with pytest.raises(ValueError) as err:
        load_model(path) if reader == "load_model" else load_weights(target, path)
    if reader == "load_weights" and fault in WEIGHTS_USABLE:
        assert "\n" not in str(err.value) and f"{path} does not match the model" in str(err.value)
    else:
        assert_one_clear_line(str(err.value), path, phrase)


@pytest.mark.parametrize("fault", ["Dense of 10^12", "float size", "too deep", "negative size"])
def test_absurd_architectures_are_refused_before_any_layer_is_built(tmp_path, fault,
                                                                     no_layer_is_built):
    path = tmp_path / "absurd.npz"
    path.write_bytes(FAULTS[fault][0](tmp_path))
    with pytest.raises(ValueError, match="is not a valid minicnn model file"):
        load_model(path)


def test_the_limits_leave_room_for_the_models_shipped(monkeypatch):
    """VGG-19 (143.7 M parameters) and GoogLeNet (three levels deep) pass the checks.
    The layers get 1-element weights here: the architecture alone is what is checked."""
    from minicnn.files.model_files import check_architecture
    from minicnn.layers import conv, dense
    tiny = lambda scheme, shape, *args: (np.zeros((1,) * len(shape), np.float32),  # noqa: E731
                                         np.zeros(1, np.float32))
    for module in (conv, dense):
        monkeypatch.setattr(module, "initial_weights", tiny)
    for name in sorted(models.MODELS):
        check_architecture(architecture(models.get_model(name)), name)


def test_a_missing_file_is_a_file_not_found_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model file at"):
        load_model(tmp_path / "missing.npz")


def test_a_folder_is_not_read_as_a_model(tmp_path):
    with pytest.raises(ValueError, match=f"{tmp_path} cannot be read: Is a directory"):
        load_model(tmp_path)


def run_folder(tmp_path, content):
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.npz").write_bytes(content)
    return run


def command(kind, run):
    return (["evaluate", str(run)] if kind == "evaluate"
            else ["train", "--out", str(run), "--resume", "--no-progress"])


def assert_command_error(capsys, kind, path, phrase):
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"minicnn {'evaluate' if kind == 'evaluate' else 'train'}: error: "), err
    assert_one_clear_line(err, path, phrase)


@pytest.mark.parametrize("fault", ["empty", "truncated", "corrupt header", "corrupt weights",
                                   "text", ".npy", "object array", "bad JSON", "no architecture",
                                   "old checkpoint", "Dense of 10^12", "10,000 nested"])
@pytest.mark.parametrize("kind", ["evaluate", "resume"])
def test_the_command_names_a_broken_checkpoint_in_one_line(tmp_path, capsys, fault, kind):
    run = run_folder(tmp_path, FAULTS[fault][0](tmp_path))
    assert main(command(kind, run)) == 1
    assert_command_error(capsys, kind, run / "checkpoint.npz", FAULTS[fault][1])


@pytest.mark.parametrize("kind", ["evaluate", "resume"])
def test_a_model_file_is_not_a_checkpoint(tmp_path, capsys, kind):
    """A model file holds no optimizer state or run settings: it cannot be resumed."""
    run = run_folder(tmp_path, good_bytes(tmp_path))
    assert main(command(kind, run)) == 1
    assert_command_error(capsys, kind, run / "checkpoint.npz", "no training state")


def test_evaluate_names_a_weight_missing_from_the_checkpoint(tmp_path, capsys):
    record = {"kind": "epoch", "epoch": 1, "step": 2, "loss": 1.0, "train_acc": 0.5,
              "test_acc": 0.5, "test_loss": 1.0, "seconds": 1.0}
    training = {"config": {"model": "tiny_cnn"}, "epoch": 1, "step": 2, "seconds": 1.0,
                "records": [record], "optimizer_steps": 2, "dropout_states": []}
    run = run_folder(tmp_path, npz_bytes(__architecture__=header(checkpoint=training),
                                         **state_without("3.weight")))
    assert main(command("evaluate", run)) == 1
    assert_command_error(capsys, "evaluate", run / "checkpoint.npz", "'3.weight'")
