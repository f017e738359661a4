"""``python -m dlp`` — the headless entry point (the GUI is ``python -m dlp gui``)."""

from __future__ import annotations

import sys

from dlp.cli import main

if __name__ == "__main__":
    sys.exit(main())
