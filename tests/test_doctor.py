"""``minicnn doctor``: versions, the kernels of each device, and every layer type of the zoo
on every engine available (the GPU's on the stand-in in its run)."""
import re

from minicnn.cli import doctor
from minicnn.cli.command import main


def test_doctor_checks_every_layer_on_every_engine(backend, device, capsys):
    assert main(["doctor", "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    for name in ("Python", "NumPy", "Numba", "CuPy", "numba-cuda", "NVVM", "NVIDIA driver"):
        assert re.search(rf"^  {name} +\S", out, re.M), name
    assert re.search(r"^  cpu +Numba loops", out, re.M)
    rows = re.findall(r"^  (\S.*?) {2,}((?:cpu|gpu) \w+) +(\S+) +(\S+)  (ok|MISMATCH)$", out,
                      re.M)
    engines = {"cpu fast", "cpu textbook", "cpu reference"}
    if device == "gpu":
        engines |= {"gpu fast", "gpu textbook"}
    assert {(layer, engine) for layer, engine, *_ in rows} == \
        {(name, engine) for name, _, _ in doctor.CASES for engine in engines}
    for layer, engine, worst, ms, verdict in rows:
        assert float(worst) < doctor.TOLERANCE and verdict == "ok", (layer, engine, worst)
        assert float(ms) > 0
    assert out.rstrip().endswith("every engine agrees")
    for layer in ("Conv2D 3x3", "Conv2D depthwise", "Conv2D Winograd-eligible", "MaxPool2D",
                  "AvgPool2D", "Dense", "ReLU", "LeakyReLU", "BatchNorm1D", "BatchNorm2D",
                  "Dropout (eval)", "GlobalAvgPool2D", "Flatten", "SoftmaxCrossEntropy"):
        assert layer in {name for name, _, _ in doctor.CASES}


def test_doctor_says_mismatch_and_exits_1(monkeypatch, capsys):
    monkeypatch.setattr(doctor, "TOLERANCE", -1.0)          # nothing is close enough
    monkeypatch.setattr(doctor, "CASES", doctor.CASES[:1])
    assert main(["doctor", "--repeats", "1"]) == 1
    out = capsys.readouterr().out
    assert "MISMATCH" in out and out.rstrip().endswith("rows disagree")
