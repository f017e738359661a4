"""Start the DLP desktop application (same as ``python -m dlp gui``)."""

from __future__ import annotations

import sys

from dlp.cli import main

if __name__ == "__main__":
    sys.exit(main(["gui", *sys.argv[1:]]))
