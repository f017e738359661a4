from __future__ import annotations

import subprocess
import sys

import dlp
from dlp.cli import main


def test_version_flag(capsys) -> None:
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert capsys.readouterr().out.strip() == f"dlp {dlp.__version__}"


def test_help_lists_commands_in_a_subprocess() -> None:
    result = subprocess.run([sys.executable, "-m", "dlp", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "usage: dlp" in result.stdout
