"""The ``minicnn`` command: ``command.py`` holds its parser and hands each subcommand
to its module (``train``, ``evaluate``, ``report_card``, ``doctor``; ``common`` holds
what they share)."""
from .command import main

__all__ = ["main"]
