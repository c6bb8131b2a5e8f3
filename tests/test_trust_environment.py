"""Environment variables set to garbage: one line, never a traceback (issue 24).

``MINICNN_NUM_THREADS`` is minicnn's own: an unusable value is refused. ``OPENBLAS_NUM_THREADS``,
``OMP_NUM_THREADS`` and ``NUMBA_NUM_THREADS`` belong to other libraries too, which skip a value
they cannot use: minicnn ignores one with a one-line note. A count above the cores is capped.
"""
import os
import re
import subprocess
import sys

import pytest
from minicnn.kernels import threads

from minicnn.cli.command import main

ENGINES_PAGE = os.path.join(os.path.dirname(__file__), "..", "docs", "explanations", "engines.md")


@pytest.fixture
def clean_env(monkeypatch):
    """No thread variable set, and the count read again from the environment."""
    for name in threads.ENVIRONMENT:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(threads, "_threads", None)
    return monkeypatch


def cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()


def run(code, **env):
    clean = {k: v for k, v in os.environ.items()
             if k not in threads.ENVIRONMENT and k != "MINICNN_IMPL"}
    return subprocess.run([sys.executable, "-c", code], env=clean | env, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.parametrize("value", ["abc", "0", "-3", "2.5", "1e3", "4,2x", "\u00b2", "+2"])
def test_minicnn_num_threads_garbage_is_refused_naming_it(clean_env, value):
    clean_env.setenv("MINICNN_NUM_THREADS", value)
    with pytest.raises(ValueError, match=f"MINICNN_NUM_THREADS must be a whole number >= 1, "
                                         f"got {re.escape(repr(value))}"):
        threads.num_threads()


@pytest.mark.parametrize("name", ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "NUMBA_NUM_THREADS"])
@pytest.mark.parametrize("value", ["abc", "0", "-3", "2.5"])
def test_other_libraries_garbage_is_ignored_with_one_line(clean_env, capsys, name, value):
    clean_env.setenv(name, value)
    assert threads.num_threads() == cores()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{name}={value!r} ignored" in err, err


def test_an_ignored_value_falls_through_to_the_next(clean_env, capsys):
    clean_env.setenv("OPENBLAS_NUM_THREADS", "many")
    clean_env.setenv("OMP_NUM_THREADS", "1")
    assert threads.num_threads() == 1
    assert "OPENBLAS_NUM_THREADS='many' ignored" in capsys.readouterr().err


@pytest.mark.parametrize("name", threads.ENVIRONMENT)
def test_an_empty_value_counts_as_unset(clean_env, capsys, name):
    clean_env.setenv(name, " ")
    assert threads.num_threads() == cores()
    assert capsys.readouterr().err == ""


def test_openmp_lists_take_their_first_number(clean_env, capsys):
    clean_env.setenv("OMP_NUM_THREADS", "1,3")          # OpenMP: threads per nesting level
    assert threads.num_threads() == 1
    assert capsys.readouterr().err == ""


@pytest.mark.parametrize("name", threads.ENVIRONMENT)
def test_a_huge_count_is_capped_with_a_note(clean_env, capsys, name):
    clean_env.setenv(name, "10000")
    assert threads.num_threads() == cores()
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"{name}=10000" in err and f"{cores()} core" in err, err


def test_the_command_line_refuses_minicnn_num_threads_in_one_line(clean_env, capsys, tmp_path):
    clean_env.setenv("MINICNN_NUM_THREADS", "abc")
    assert main(["evaluate", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err.startswith("minicnn evaluate: error: MINICNN_NUM_THREADS must be a whole "
                          "number >= 1, got 'abc'") and err.count("\n") == 1, err


@pytest.mark.parametrize("value, note", [
    ("abc", "NUMBA_NUM_THREADS='abc' ignored"),      # Numba: a nine-line warning
    ("0", "NUMBA_NUM_THREADS='0' ignored"),          # Numba: a traceback at import
    ("", None),                                      # unset
    ("10000", None),                                 # Numba takes it; minicnn caps it when read
])
def test_numba_num_threads_at_import_is_one_line_at_most(value, note):
    done = run("import minicnn; from minicnn import kernels; print(kernels.fast.loops("
               "__import__('numpy').zeros(1)).__name__)", NUMBA_NUM_THREADS=value)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "minicnn.kernels.cpu"          # Numba's kernels still run
    if note is None:
        assert done.stderr == ""
    else:
        assert done.stderr.count("\n") == 1 and note in done.stderr, done.stderr


def test_numba_garbage_and_the_command_line(tmp_path):
    """A thread count read after Numba ignored the value, and a command's --help."""
    code = ("import sys; from minicnn.kernels import threads; print(threads.num_threads()); "
            "from minicnn.cli.command import main; sys.exit(main(['train', '--help']))")
    done = run(code, NUMBA_NUM_THREADS="-3")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0] == str(cores()) and "usage: minicnn train" in done.stdout
    assert done.stderr.count("\n") == 1, done.stderr


def test_docs_and_code_agree_on_the_order():
    """The first variable set wins, in the order of threads.ENVIRONMENT; the Threads
    section of docs/explanations/engines.md names them in that order (its first paragraph)."""
    text = open(ENGINES_PAGE).read()
    paragraph = text[text.index("## Threads\n\n") + len("## Threads\n\n"):].split("\n\n")[0]
    named = list(dict.fromkeys(re.findall(r"`([A-Z_]+_NUM_THREADS)", paragraph)))
    assert named == list(threads.ENVIRONMENT)


@pytest.mark.parametrize("value", ["htps://example.org/mnist", "gopher://x", "ftp:/x"])
def test_a_mirror_with_a_scheme_minicnn_cannot_fetch_is_one_line(value, tmp_path, monkeypatch,
                                                                 capsys):
    monkeypatch.delenv("MINICNN_DATA", raising=False)
    monkeypatch.setenv("MINICNN_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("MINICNN_MIRRORS", f"/some/folder {value}")
    assert main(["train", "--out", str(tmp_path / "run"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "MINICNN_MIRRORS" in err and repr(value) in err, err
