"""Starting DLP: which project opens, the demo project on first start, main.py and
``python -m dlp gui`` doing the same, and the frozen-app command line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from PyQt5.QtGui import QImage

from dlp.demo import (
    DEMO_DATASET,
    build_demo_content,
    demo_dir,
    demo_is_complete,
    ensure_demo_project,
)
from dlp.gui import launch
from dlp.gui.app import choose_startup_project
from dlp.net.prototxt import read_net, read_solver
from dlp.project import Project, RecentProjects
from dlp.proto import caffe_pb2

ROOT = Path(__file__).resolve().parents[2]
TINY = {"cases": 2, "slices": 2, "size": 64}


def test_first_start_without_recent_project_opens_the_demo(isolated_user_config) -> None:
    startup = choose_startup_project(None, False, RecentProjects())
    assert startup.is_demo and startup.warning is None
    assert startup.project.root == demo_dir().resolve()
    assert startup.project.name == "DLP demo"


def test_next_start_reopens_the_last_project(tmp_path: Path) -> None:
    recent = RecentProjects()
    last = Project.create(tmp_path / "last")
    recent.add(last.root)
    startup = choose_startup_project(None, False, recent)
    assert (startup.project.root, startup.is_demo) == (last.root, False)
    explicit = choose_startup_project(tmp_path / "fresh", False, recent)
    assert Project.is_project(tmp_path / "fresh")
    assert explicit.project.root == tmp_path / "fresh"


def test_a_recent_project_that_broke_falls_back_to_the_demo_with_a_warning(
    tmp_path: Path
) -> None:
    recent = RecentProjects()
    last = Project.create(tmp_path / "last")
    recent.add(last.root)
    (last.root / "dlp-project.json").write_text("{")
    startup = choose_startup_project(None, False, recent)
    assert startup.is_demo
    assert "could not be opened" in startup.warning and "invalid JSON" in startup.warning
    assert recent.list() == []


def test_demo_content_is_a_dataset_a_net_reading_it_and_a_solver(tmp_path: Path) -> None:
    project = ensure_demo_project(tmp_path / "demo")
    assert not demo_is_complete(project)
    events = []
    project.events.connect(lambda e: events.append(e.kind))
    report = build_demo_content(project, **TINY)
    assert demo_is_complete(project)
    assert report.counts["train"] > 0 and report.counts["val"] > 0
    net = read_net(project.net_path)
    sources = {layer.name: layer.data_param.source for layer in net.layer if layer.type == "Data"}
    dataset = project.dataset_path(DEMO_DATASET)
    assert sorted(sources.values()) == sorted(
        str(dataset / f"{split}_db" / kind) for split in ("train", "val")
        for kind in ("features", "labels"))
    assert all(Path(source).is_dir() for source in sources.values())
    solver = read_solver(project.solver_path)
    assert solver.net == str(project.net_path)
    # one pass over the val split per test round, in the TEST Data layers' batches
    test_batch = max(layer.data_param.batch_size for layer in net.layer
                     if layer.type == "Data" and layer.include[0].phase == caffe_pb2.TEST)
    assert solver.test_iter[0] == -(-report.counts["val"] // test_batch)
    assert (project.deploy_dir / "label.txt").read_text().splitlines()[0].lower().startswith(
        "background")
    assert {"datasets_changed", "net_changed"} <= set(events)


def test_window_builds_the_demo_in_a_worker_and_the_data_tab_shows_it(
    make_main_window, qtbot
) -> None:
    window = make_main_window(ensure_demo_project(), modules=("Data",))
    worker = window.build_demo_content_if_needed(**TINY)
    assert worker is not None and window.progress_panel.isVisible()
    qtbot.waitUntil(lambda: window._demo_worker is None, timeout=60000)
    assert demo_is_complete(window.qt_project.project)
    assert not window.progress_panel.isVisible()
    assert "demo project is ready" in window.statusBar().currentMessage()
    data_tab = window.modules["Data"]
    assert data_tab.browser.table.item(0, 0).text() == DEMO_DATASET
    assert data_tab.browser.grid.tiles
    assert window.build_demo_content_if_needed() is None  # built once, never again


def test_cancelling_the_demo_build_leaves_no_half_dataset(make_main_window, qtbot) -> None:
    window = make_main_window(ensure_demo_project(), modules=("Data",))
    window.build_demo_content_if_needed(**TINY)
    window.progress_panel.cancel_button.click()
    qtbot.waitUntil(lambda: window._demo_worker is None, timeout=60000)
    project = window.qt_project.project
    assert not demo_is_complete(project)
    assert not project.dataset_path(DEMO_DATASET).exists()


def test_dlp_command_runs_python_or_the_frozen_app(monkeypatch: pytest.MonkeyPatch) -> None:
    assert launch.dlp_command(["train", "--solver", "s.prototxt"]) == [
        sys.executable, "-m", "dlp", "train", "--solver", "s.prototxt"]
    monkeypatch.setattr(sys, "frozen", True, raising=False)
    assert launch.dlp_command(["train", "--solver", "s.prototxt"]) == [
        sys.executable, "train", "--solver", "s.prototxt"]


def test_the_entry_point_dispatches_sub_commands_and_defaults_to_the_gui() -> None:
    assert launch.entry_argv([]) == ["gui"]
    assert launch.entry_argv(["/data/project"]) == ["gui", "/data/project"]
    assert launch.entry_argv(["train", "--solver", "s"]) == ["train", "--solver", "s"]
    assert launch.entry_argv(["--version"]) == ["--version"]


def _env(isolated_user_config: Path) -> dict[str, str]:
    env = dict(os.environ)
    env["QT_QPA_PLATFORM"] = "offscreen"
    env["DLP_CONFIG_DIR"] = str(isolated_user_config / "config")
    env["DLP_DEMO_DIR"] = str(isolated_user_config / "DLP-demo")
    return env


def test_main_py_opens_the_window_and_renders_it(tmp_path: Path, isolated_user_config) -> None:
    shot = tmp_path / "window.png"
    result = subprocess.run(
        [sys.executable, str(ROOT / "main.py"), str(tmp_path / "proj"), "--screenshot", str(shot)],
        capture_output=True, text=True, env=_env(isolated_user_config), timeout=120)
    assert result.returncode == 0, result.stderr
    image = QImage(str(shot))
    assert image.width() >= 800 and image.height() >= 500
    assert Project.is_project(tmp_path / "proj")


def test_main_py_runs_sub_commands_like_the_frozen_app(isolated_user_config) -> None:
    result = subprocess.run([sys.executable, str(ROOT / "main.py"), "--version"],
                            capture_output=True, text=True, env=_env(isolated_user_config),
                            timeout=60)
    assert result.returncode == 0
    assert result.stdout.startswith("dlp ")


def test_gui_on_a_broken_project_exits_with_one_line(tmp_path: Path, isolated_user_config) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "dlp-project.json").write_text("[1, 2")
    result = subprocess.run(
        [sys.executable, "-m", "dlp", "gui", str(broken), "--screenshot", str(tmp_path / "x.png")],
        capture_output=True, text=True, env=_env(isolated_user_config), timeout=120, cwd=ROOT)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "dlp-project.json:1:" in result.stderr


def test_file_open_demo_switches_to_the_demo_and_starts_its_build(
    make_main_window, qtbot
) -> None:
    window = make_main_window(modules=("Data",))
    window.start_session()
    window.demo_action.trigger()
    assert window.qt_project.root == demo_dir().resolve()
    assert window.recent.list()[0] == demo_dir().resolve()
    assert window._demo_worker is not None and window.progress_panel.isVisible()
    window.progress_panel.cancel_button.click()
    qtbot.waitUntil(lambda: window._demo_worker is None, timeout=60000)
    assert not demo_is_complete(window.qt_project.project)
