"""Python started in the folder that holds the clone (``~`` above ``~/minicnn``): the clone's
folder is found first under the name ``minicnn`` and hides the installed package. The import
stops with one line that says so (the repository's top-level ``__init__.py``)."""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def python(cwd, *args):
    return subprocess.run([sys.executable, *args], cwd=cwd, capture_output=True, text=True,
                          timeout=120)


def test_the_clone_folder_shadowing_the_package_is_named_in_one_line(tmp_path):
    (tmp_path / "minicnn").symlink_to(ROOT, target_is_directory=True)   # ~/minicnn, the clone
    (tmp_path / "mine.py").write_text("from minicnn import Conv2D\n")
    clone = tmp_path / "minicnn"
    expected = (f"ImportError: {clone} is the minicnn repository, not the package: Python "
                f"looks in {tmp_path} (the current folder, or the script's) first and finds "
                f"it there, so it hides the installed minicnn; run Python from another folder "
                f"(e.g. cd {clone}) or move the script out of {tmp_path}")
    for args in (["-c", "from minicnn import Conv2D"], ["mine.py"]):
        done = python(tmp_path, *args)
        assert done.returncode != 0
        assert done.stderr.strip().splitlines()[-1] == expected, done.stderr
    done = python(tmp_path, "-m", "minicnn", "summary")
    assert done.returncode != 0 and expected.removeprefix("ImportError: ") in done.stderr
    # the examples run from there: Python looks in the script's folder, examples/, first
    done = python(tmp_path, os.path.join("minicnn", "examples", "train_mnist.py"), "--help")
    assert done.returncode == 0, done.stderr


def test_inside_the_clone_the_package_imports():
    done = python(ROOT, "-c", "from minicnn import Conv2D; print(Conv2D.__module__)")
    assert done.returncode == 0 and done.stdout.strip() == "minicnn.layers.conv", done.stderr
