"""The Qt-free core never imports Qt or the GUI (napari's rule, enforced)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORE = ["dlp.net", "dlp.engine", "dlp.data", "dlp.deploy", "dlp.train", "dlp.project", "dlp.proto"]


def test_import_linter_contracts_hold() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "importlinter.cli", "--no-cache"],
        cwd=ROOT, capture_output=True, text=True,
    )
    if result.returncode != 0 and "No module named" in result.stderr:
        result = subprocess.run(
            [str(Path(sys.executable).with_name("lint-imports")), "--no-cache"],
            cwd=ROOT, capture_output=True, text=True,
        )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("module", CORE)
def test_core_module_loads_without_qt(module: str) -> None:
    """Importing a core package (and all its submodules) must not load PyQt5."""
    code = (
        "import importlib, pkgutil, sys\n"
        f"mod = importlib.import_module({module!r})\n"
        "names = [mod.__name__]\n"
        "if hasattr(mod, '__path__'):\n"
        "    names += [m.name for m in pkgutil.walk_packages(mod.__path__, mod.__name__ + '.')]\n"
        "for name in names:\n"
        "    importlib.import_module(name)\n"
        "bad = [m for m in sys.modules\n"
        "       if m.split('.')[0] in ('PyQt5', 'pyqtgraph') or m.startswith('dlp.gui')]\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_ruff_clean() -> None:
    ruff = Path(sys.executable).with_name("ruff")
    result = subprocess.run([str(ruff), "check", "dlp", "tests", "bench", "main.py"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
