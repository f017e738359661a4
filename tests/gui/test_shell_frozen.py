"""The PyInstaller build (dlp.spec): it starts, renders its window and trains.

Building takes minutes, so the default test run does not build; after
``pyinstaller dlp.spec`` run::

    DLP_FROZEN_APP=dist/dlp/dlp .venv/bin/python -m pytest tests/gui/test_shell_frozen.py
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from dlp.demo import build_demo_content, ensure_demo_project
from dlp.net.prototxt import read_solver, write_solver

FROZEN = os.environ.get("DLP_FROZEN_APP")
pytestmark = pytest.mark.skipif(not FROZEN, reason="set DLP_FROZEN_APP to a built dist/dlp/dlp")


def run_frozen(args: list[str], home: Path, timeout: int = 300) -> subprocess.CompletedProcess:
    env = dict(os.environ, QT_QPA_PLATFORM="offscreen", DLP_CONFIG_DIR=str(home / "config"),
               DLP_DEMO_DIR=str(home / "demo"))
    return subprocess.run([str(Path(FROZEN).resolve()), *args], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=home)


def test_frozen_version(tmp_path: Path) -> None:
    import dlp

    result = run_frozen(["--version"], tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"dlp {dlp.__version__}"


def test_frozen_app_opens_its_window(tmp_path: Path) -> None:
    shot = tmp_path / "window.png"
    result = run_frozen([str(tmp_path / "project"), "--screenshot", str(shot)], tmp_path)
    assert result.returncode == 0, result.stderr
    assert shot.stat().st_size > 10_000


def test_frozen_app_trains_the_demo_net(tmp_path: Path) -> None:
    project = ensure_demo_project(tmp_path / "demo")
    build_demo_content(project, cases=2, slices=2, size=64)
    solver = read_solver(project.solver_path)
    solver.max_iter = solver.snapshot = solver.test_interval = 2
    solver.snapshot_prefix = str(tmp_path / "snapshots" / "demo")
    (tmp_path / "snapshots").mkdir()
    write_solver(solver, tmp_path / "solver.prototxt")
    result = run_frozen(["train", "--solver", str(tmp_path / "solver.prototxt"),
                         "--log", str(tmp_path / "train.log")], tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "snapshots" / "demo_iter_2.caffemodel").is_file()
    assert "Optimization Done" in (tmp_path / "train.log").read_text()
