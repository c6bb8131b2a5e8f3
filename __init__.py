"""Not a package: the top folder of the minicnn repository (the package is ``minicnn/`` below).

This file is here for one mistake. Python started in the folder that holds the clone (``~``
above ``~/minicnn``: ``python -c ...``, the REPL, a script or a notebook kept there) looks in
that folder first and finds the clone under the name ``minicnn``. Without this file it would
import the clone as an empty namespace package, which hides the installed package:
``from minicnn import Conv2D`` would fail with "cannot import name 'Conv2D' from 'minicnn'
(unknown location)". The installed package cannot see that happen (it is never imported), but
this file is what Python imports then, so it stops the import with one line that says what to
do. The example scripts and the notebooks are not affected: Python looks in the script's
folder first, and a notebook runs in its own folder.

Imported under any other name (pytest imports it as ``__init__`` when it collects the
repository) it does nothing.
"""
import os

if __name__ == "minicnn":
    _clone = os.path.dirname(os.path.abspath(__file__))
    _above = os.path.dirname(_clone)
    raise ImportError(
        f"{_clone} is the minicnn repository, not the package: Python looks in {_above} (the "
        f"current folder, or the script's) first and finds it there, so it hides the installed "
        f"minicnn; run Python from another folder (e.g. cd {_clone}) or move the script out of "
        f"{_above}")
