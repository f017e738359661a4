"""Start DLP: the desktop application, or a sub-command (``main.py train --solver S``).

This is also the PyInstaller entry point (dlp.spec): the frozen ``dlp`` executable
starts the GUI with no arguments and runs sub-commands otherwise, which is how the
Train tab launches training in a child process of the frozen app
(see ``dlp.gui.launch.dlp_command``).
"""

from __future__ import annotations

import multiprocessing
import sys

from dlp.cli import main
from dlp.gui.launch import entry_argv

if __name__ == "__main__":
    multiprocessing.freeze_support()  # a frozen child started by multiprocessing runs its task
    sys.exit(main(entry_argv(sys.argv[1:])))
