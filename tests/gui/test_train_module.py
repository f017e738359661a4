"""The Train tab driven as a user would, with stand-in training processes (no torch):
re-attaching to a run left running, quitting while training, an external Caffe,
Restart, the real-format Caffe log drawn, comparing, exporting and deleting runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from PyQt5.QtCore import Qt

from dlp.project import Project
from dlp.train.log import curves as log_curves
from dlp.train.log import parse_log
from dlp.train.runs import Run, list_runs
from tests.gui.train_support import (  # noqa: F401 (autouse fixtures)
    kill_run_processes,
    make_train_project,
    no_training_left_behind,
    one_thread_children,
    start_fake_trainer,
    train_module,
)

pytestmark = pytest.mark.gui

SAMPLE_LOG = Path(__file__).parents[1] / "train" / "data" / "caffe_train_two_test_nets_restart.log"


def _fake_run(project: Project, name: str, status: str = "created", max_iter: int = 80) -> Run:
    path = project.runs_dir / name
    (path / "snapshots").mkdir(parents=True)
    run = Run(path)
    run.update(name=name, status=status, engine="builtin", device="cpu", max_iter=max_iter,
               best_metric="dice", best_mode="max", starts=[])
    return run


def test_reattaches_to_a_run_left_running_and_announces_completion(make_main_window,
                                                                     project_dir, qtbot):
    project = make_train_project(project_dir)
    run = _fake_run(project, "run-left-running", status="running", max_iter=60)
    process = start_fake_trainer(run.path, 60, pause=0.03)
    try:
        run.update(pid=process.pid)
        _window, module = train_module(make_main_window, project)
        assert list(module.monitors) == ["run-left-running"]  # followed again
        assert module.shown.run.name == "run-left-running"
        qtbot.waitUntil(lambda: not module.monitors, timeout=30000)
    finally:
        process.wait(timeout=30)
    assert Run(run.path).status == "done"
    assert module.done_banner.isVisible()
    assert "finished" in module.done_banner.label.text()
    assert "best dice" in module.done_banner.label.text()
    assert module.curves.items["loss"].xData[-1] == 59
    assert module.curves.best_line.isVisible() and module.curves.best_line.value() == 50
    assert module.curves.best_line.label.toPlainText().startswith("best dice = ")
    assert module.curves.best_line.label.toPlainText().endswith("@ 50")


def test_quitting_while_training_can_stop_it_with_a_snapshot(make_main_window, project_dir,
                                                            qtbot, monkeypatch):
    project = make_train_project(project_dir)
    run = _fake_run(project, "run-quit", status="running", max_iter=100000)
    process = start_fake_trainer(run.path, 100000, pause=0.02)
    try:
        run.update(pid=process.pid)
        _window, module = train_module(make_main_window, project)
        qtbot.waitUntil(lambda: module.shown.curves.last_iteration > 3, timeout=20000)
        monkeypatch.setattr(module, "ask_running_choice", lambda names: "cancel")
        assert module.confirm_close() is False and process.poll() is None
        monkeypatch.setattr(module, "ask_running_choice", lambda names: "stop")
        assert module.confirm_close() is True
        assert process.wait(timeout=20) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert "Optimization stopped early" in run.log_path.read_text()
    assert Run(run.path).status == "stopping"  # settled on the next start


def test_sample_caffe_log_draws_the_parsers_curves(make_main_window, project_dir, qtbot):
    project = make_train_project(project_dir)
    run = _fake_run(project, "run-caffe-sample", status="done")
    shutil.copy(SAMPLE_LOG, run.log_path)
    _window, module = train_module(make_main_window, project)
    module.show_run("run-caffe-sample")
    module.curves.set_smoothing(0.0)
    expected = log_curves(parse_log(SAMPLE_LOG))
    assert set(module.curves.items) == set(expected)
    for name, (iters, values) in expected.items():
        item = module.curves.items[name]
        x, y = item.xData, item.yData  # all points (getData gives the clipped view)
        assert list(x) == iters and list(y) == pytest.approx(values, nan_ok=True)
    # hover readout reports the raw values at the nearest logged iteration
    assert "train loss 0.6931 @0" in module.curves.readout_at(3)
    # the legend is a row above the plot (it hid the curves' ends inside it), one
    # entry per curve a user can tell apart
    legend = module.curves.legend
    labels = [label.text for _sample, label in legend.items]
    assert len(labels) == len(set(labels)) and "train loss" in labels
    plot_area = module.curves.plot.vb.sceneBoundingRect()
    assert legend.sceneBoundingRect().bottom() <= plot_area.top() + 1

    # smoothing changes the noisy training curves only; log scale is one toggle
    raw_loss = list(module.curves.items["loss"].yData)
    raw_accuracy = list(module.curves.items["test/accuracy"].yData)
    module.curves.set_smoothing(0.9)
    assert list(module.curves.items["loss"].yData) != raw_loss
    assert module.curves.items["loss"].yData[0] == pytest.approx(raw_loss[0])
    assert list(module.curves.items["test/accuracy"].yData) == raw_accuracy
    module.curves.set_log_y(True)
    assert module.curves.plot.ctrl.logYCheck.isChecked()

    # the console holds the raw log: searchable and copyable
    module.console.search.setText("Testing net (#1)")
    assert module.console.find_next()
    assert module.console.text.textCursor().selectedText() == "Testing net (#1)"
    module.console.copy_all()
    from PyQt5.QtWidgets import QApplication

    assert "Optimization Done." in QApplication.clipboard().text()


def test_compare_export_and_delete_runs(make_main_window, project_dir, qtbot, tmp_path):
    project = make_train_project(project_dir)
    first = _fake_run(project, "run-a", status="done")
    second = _fake_run(project, "run-b", status="done")
    shutil.copy(SAMPLE_LOG, first.log_path)
    shutil.copy(SAMPLE_LOG, second.log_path)
    _window, module = train_module(make_main_window, project)
    assert module.shown.run.name == "run-b"  # the newest run is shown
    module.runs.set_compared(["run-a"])
    assert [i.name() for i in module.curves.overlay_items] == ["run-a: train loss"]
    combo = module.curves.compare_combo
    combo.setCurrentIndex(combo.findData("test/accuracy"))
    assert [i.name() for i in module.curves.overlay_items] == ["run-a: test accuracy"]
    expected_x = log_curves(parse_log(SAMPLE_LOG))["test/accuracy"][0]
    assert list(module.curves.overlay_items[0].xData) == expected_x

    csv_path = module.export_csv(tmp_path / "curves.csv")
    header = csv_path.read_text().splitlines()[0].split(",")
    assert "loss" in header and "run-a:loss" in header and "test/accuracy" in header
    png = module.export_png(tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    assert module.confirm_delete_run("run-a", confirm=False)
    assert not first.path.exists()
    assert [r.name for r in list_runs(project.runs_dir)] == ["run-b"]
    assert module.runs.runs_tree.topLevelItemCount() == 1
    assert json.loads((second.path / "run.json").read_text())["status"] == "done"


def test_external_caffe_engine_next_step_and_restart(make_main_window, project_dir, qtbot,
                                                     tmp_path, monkeypatch):
    from tests.gui.train_support import make_fake_caffe_tools

    project = make_train_project(project_dir, max_iter=60)
    project.update_settings(engine="caffe",
                            caffe_tools=str(make_fake_caffe_tools(tmp_path / "tools")))
    window, module = train_module(make_main_window, project)
    monkeypatch.setattr(window, "show_module", lambda name: None)  # no Deploy tab here
    module.form.best_metric.setCurrentText("dice")
    qtbot.mouseClick(module.train_button, Qt.LeftButton)
    run = module.shown.run
    qtbot.waitUntil(lambda: not module.monitors, timeout=30000)
    run.reload()
    assert run.status == "done", module.error_banner.label.text()
    assert "best_metric" not in run.solver_path.read_text()  # stripped for a real Caffe
    assert "Optimization Done." in run.log_path.read_text()  # Caffe's stderr is the log
    assert run.info["starts"][0]["command"][1:3] == ["train", "--solver=solver.prototxt"]
    assert module.done_banner.isVisible() and module.next_button.isEnabled()
    assert "best dice = 0.9 at iteration 20" in module.done_banner.label.text()

    with qtbot.waitSignal(module.qt_project.deploy_requested, timeout=5000) as blocker:
        qtbot.mouseClick(module.next_button, Qt.LeftButton)
    assert blocker.args == [str(run.deploy_path),
                            str(run.snapshot_dir / "snapshot_iter_20.caffemodel")]

    assert module.restart_button.isEnabled() and not module.resume_button.isEnabled()
    module.restart_training(confirm=False)
    assert module.monitors and module.shown.curves.last_iteration == 0  # the old log is gone
    qtbot.waitUntil(lambda: not module.monitors, timeout=30000)
    run.reload()
    assert run.status == "done" and len(run.info["starts"]) == 2
    assert run.log_path.read_text().count("Solving fake") == 1


def test_switching_projects_reloads_the_tab(make_main_window, project_dir, qtbot, tmp_path):
    project = make_train_project(project_dir)
    _fake_run(project, "run-first", status="done")
    window, module = train_module(make_main_window, project)
    assert module.shown.run.name == "run-first"
    other = Project.create(tmp_path / "other")
    window.qt_project.set_project(other)
    assert module.shown is None and module.runs.runs_tree.topLevelItemCount() == 0
    assert not module.train_button.isEnabled()  # the new project has no net yet
    assert "No run yet" in module.status_label.text()
