"""The short test summary (pyproject's ``-ra``) gives one line per skip reason with a count:
a skip raised in a fixture (no GPU, no MINICNN_DATA) is reported where the fixture raised
it, not once per test (tests/conftest.py's ``pytest_runtest_makereport``)."""
import os
import re
import shutil
import subprocess
import sys

import tomllib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TESTS = '''
import pytest

def test_a(data_root): pass

@pytest.mark.parametrize("i", range(4))
def test_b(data_root, i): pass

def test_in_body(): pytest.skip("not today")

@pytest.mark.skip(reason="marked")
def test_marked(): pass

def test_fails(): assert False

@pytest.mark.xfail(reason="known")
def test_xfail(): assert False
'''


def test_a_fixtures_skips_are_one_line_with_a_count_and_the_rest_still_show(tmp_path):
    for name in ("conftest.py", "fake_cupy.py"):          # (the conftest imports the stand-in)
        shutil.copy(os.path.join(ROOT, "tests", name), tmp_path / name)
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        addopts = tomllib.load(f)["tool"]["pytest"]["ini_options"]["addopts"]
    (tmp_path / "pytest.ini").write_text(f"[pytest]\naddopts = {addopts}\n")
    (tmp_path / "test_tiny.py").write_text(TESTS)
    env = {k: v for k, v in os.environ.items() if k != "MINICNN_DATA"}
    done = subprocess.run([sys.executable, "-m", "pytest", "-p", "no:cacheprovider"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    summary = done.stdout[done.stdout.index("short test summary info"):].splitlines()[1:-1]
    skipped = [line for line in summary if line.startswith("SKIPPED")]
    line = next(i for i, text in enumerate(open(tmp_path / "conftest.py"), start=1)
                if 'pytest.skip("MINICNN_DATA is not set' in text)
    assert skipped == [
        f"SKIPPED [5] conftest.py:{line}: MINICNN_DATA is not set: real-data test skipped "
        f"(CI sets it to ../shared/data)",
        "SKIPPED [1] test_tiny.py:9: not today",
        "SKIPPED [1] test_tiny.py:11: marked"], done.stdout
    assert [s for s in summary if not s.startswith("SKIPPED")] == [
        "XFAIL test_tiny.py::test_xfail - known",
        "FAILED test_tiny.py::test_fails - assert False"], done.stdout
    assert re.search(r"1 failed, 7 skipped, 1 xfailed", done.stdout)
