"""Test configuration shared by the whole suite.

Qt runs offscreen here (set before any Qt import), so the suite needs no display.
"""

from __future__ import annotations

import os

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("XDG_RUNTIME_DIR", "/tmp/dlp-test-runtime")
os.makedirs(os.environ["XDG_RUNTIME_DIR"], mode=0o700, exist_ok=True)
# Two cores: keep torch from oversubscribing them when pytest runs helpers in parallel.
os.environ.setdefault("OMP_NUM_THREADS", "2")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """An empty working directory for a DLP project."""
    root = tmp_path / "project"
    root.mkdir()
    return root
