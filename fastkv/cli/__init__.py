"""The ``fastkv`` command line: the commands and their parser (commands.py),
the progress bar it draws on a terminal (progress.py), and JSON Lines
export and import (transfer.py, also usable from Python).
"""

from fastkv.cli.commands import main

__all__ = ["main"]
