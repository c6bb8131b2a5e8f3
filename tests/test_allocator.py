"""minicnn/cli/allocator.py: the C allocator keeps freed memory for the next step (the
``minicnn`` command asks for it), unless the user set glibc's variables; a training
step then touches no fresh pages."""
import os
import subprocess
import sys
import textwrap

import pytest

from minicnn.cli import allocator, command

glibc_linux = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")


def run_python(code, **env):
    environment = {k: v for k, v in os.environ.items() if k not in allocator.USER_SETTINGS}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True,
                          text=True, env=dict(environment, **env), timeout=120)


@glibc_linux
def test_keep_freed_memory_sets_the_thresholds_unless_the_user_did():
    code = "from minicnn.cli.allocator import keep_freed_memory; print(keep_freed_memory())"
    assert run_python(code).stdout.strip() == "True"
    user = run_python(code, MALLOC_TRIM_THRESHOLD_="131072")
    assert user.stdout.strip() == "False", user.stderr


@glibc_linux
def test_steps_reuse_freed_memory_instead_of_fresh_pages():
    """The same arrays allocated and freed again, as a training step does: with the
    thresholds raised the second round touches no fresh page (glibc's defaults: about
    one fault per 4 KiB)."""
    code = """
        import resource, numpy as np
        from minicnn.cli.allocator import keep_freed_memory
        keep = {keep}
        if keep:
            keep_freed_memory()
        def step():      # a few activations of 2-3 MiB, freed when the step ends
            arrays = [np.ones(600_000, np.float32) for _ in range(8)]
            return sum(float(a[-1]) for a in arrays)
        step(); step()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(5):
            step()
        print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
    kept = int(run_python(code.format(keep=True)).stdout)
    default = int(run_python(code.format(keep=False)).stdout)
    assert kept < 50 < default, (kept, default)


def test_the_command_keeps_freed_memory(monkeypatch):
    calls = []
    monkeypatch.setattr(command, "keep_freed_memory", lambda: calls.append(True))
    assert command.main(["summary", "--model", "tiny_cnn"]) == 0
    assert calls == [True]
