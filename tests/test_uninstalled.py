"""Importing minicnn from a clone that was never installed: one line that says what to do."""
import os
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_import_from_an_uninstalled_copy_says_to_install(tmp_path):
    # a copy of the source tree, imported with -S: no site-packages, so neither the
    # editable install's finder nor an installed minicnn can be found
    for folder in ("minicnn", "kernels"):
        shutil.copytree(os.path.join(ROOT, folder), tmp_path / folder,
                        ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
    done = subprocess.run([sys.executable, "-S", "-c", "import minicnn"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=60)
    assert done.returncode != 0
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("ImportError: minicnn is not installed"), done.stderr
    assert "pip install -e ." in last and "minicnn.kernels" in last
    assert "circular" not in done.stderr
