"""``minicnn ... | head``: a reader that stops early ends the command quietly, without a
traceback (Python raises BrokenPipeError on the next write to the closed pipe)."""
import subprocess
import sys


def test_a_closed_pipe_ends_the_command_without_a_traceback():
    command = subprocess.Popen([sys.executable, "-m", "minicnn", "summary", "--model", "lenet"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    command.stdout.close()                       # the reader is gone before anything is written
    err = command.stderr.read().decode()
    assert command.wait(timeout=120) == 1
    assert err == "", err
