"""How the GUI starts DLP sub-commands as child processes (training, batch deploy).

In a normal install the child is ``python -m dlp <command> …``.  In the frozen
PyInstaller app there is no ``python``: ``sys.executable`` *is* DLP, and its entry
point (main.py) dispatches sub-commands itself, so the child is ``dlp <command> …``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence


def is_frozen() -> bool:
    """True inside a PyInstaller build."""
    return bool(getattr(sys, "frozen", False))


def dlp_command(args: Sequence[str]) -> list[str]:
    """The argv that runs ``dlp <args…>`` in a child process, frozen or not."""
    if is_frozen():
        return [sys.executable, *args]
    return [sys.executable, "-m", "dlp", *args]


def entry_argv(argv: Sequence[str]) -> list[str]:
    """Map the arguments of main.py / the frozen ``dlp`` executable onto ``dlp.cli``.

    ``dlp train --solver S`` (a sub-command, or ``--help``/``--version``) runs as given,
    which is how the frozen app trains in a child of itself; anything else —
    nothing, or a project folder — starts the GUI.
    """
    from dlp.cli import COMMANDS

    args = list(argv)
    if args and (args[0] in COMMANDS or args[0] in ("-h", "--help", "--version")):
        return args
    return ["gui", *args]
