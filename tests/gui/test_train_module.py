"""The Train tab driven as a user would: real training on a tiny phantom, Stop, Resume,
failures, re-attaching to a run left running, comparing and exporting runs."""

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
from tests.gui.train_support import make_train_project, start_fake_trainer

pytestmark = pytest.mark.gui

SAMPLE_LOG = Path(__file__).parents[1] / "train" / "data" / "caffe_train_two_test_nets_restart.log"


@pytest.fixture(autouse=True)
def one_thread_children(monkeypatch: pytest.MonkeyPatch) -> None:
    """Training children use one OpenMP thread: on this shared 2-core machine two
    threads per process made the tiny net ~40x slower."""
    monkeypatch.setenv("OMP_NUM_THREADS", "1")


def _train_module(make_main_window, project: Project, modules: tuple[str, ...] = ("Train",)):
    window = make_main_window(project, modules=modules)
    return window, window.modules["Train"]


def test_train_stop_resume_and_send_to_deploy(make_main_window, project_dir, qtbot,
                                              monkeypatch):
    project = make_train_project(project_dir)
    window, module = _train_module(make_main_window, project)
    shown_tabs: list[str] = []
    monkeypatch.setattr(window, "show_module", shown_tabs.append)
    dataset = project.dataset_path("phantom")
    # The relative sources of the net were pointed at the project's dataset.
    assert module.form.source_picks() == {
        0: str(dataset / "train_db/features"), 1: str(dataset / "train_db/labels"),
        2: str(dataset / "val_db/features"), 3: str(dataset / "val_db/labels")}
    module.form.best_metric.setCurrentText("dice_per_class[1]")

    qtbot.mouseClick(module.train_button, Qt.LeftButton)
    assert len(module.monitors) == 1
    run = module.shown.run
    assert (run.path / "train_val.prototxt").is_file() and run.deploy_path.is_file()
    assert not module.train_button.isEnabled() and module.stop_button.isEnabled()
    # the solver was saved into the project before the run started
    assert 'best_metric: "dice_per_class[1]"' in project.solver_path.read_text()

    live = module.shown.curves
    qtbot.waitUntil(lambda: "test/dice_per_class[1]" in live.series
                    and len(live.series["loss"]) >= 4, timeout=90000)
    plotted_x = module.curves.items["loss"].xData
    assert len(plotted_x) >= 4 and plotted_x[0] == 0
    assert "test/accuracy" in module.curves.items and "lr" in module.curves.items
    assert module.progress.value() >= 15 and module.progress.maximum() == 3000
    assert "Iteration" in module.console.plain_text()

    qtbot.mouseClick(module.stop_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not module.monitors, timeout=60000)
    run.reload()
    assert run.status == "stopped"
    state = run.latest_solverstate()
    assert state is not None and state.is_file()
    stopped_at = int(state.stem.rsplit("_", 1)[1])
    assert module.resume_button.isEnabled() and module.train_button.isEnabled()

    qtbot.mouseClick(module.resume_button, Qt.LeftButton)
    live = module.shown.curves
    qtbot.waitUntil(lambda: live.last_iteration >= stopped_at + 10, timeout=90000)
    loss_x = live.series["loss"].x
    assert (loss_x[1:] > loss_x[:-1]).all()  # one continuous curve, no repeated iterations
    assert loss_x[-1] >= stopped_at + 10 and loss_x[0] == 0
    qtbot.mouseClick(module.stop_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not module.monitors, timeout=60000)
    assert [s["resume_from"] for s in Run(run.path).info["starts"]] == [None, str(state)]

    # The snapshots list shows test metrics; the best is starred and goes to Deploy.
    tree = module.runs.snapshots_tree
    assert tree.topLevelItemCount() >= 2
    headers = [tree.headerItem().text(i) for i in range(tree.columnCount())]
    assert "dice_per_class[1]" in headers
    assert any("★" in tree.topLevelItem(i).text(0) for i in range(tree.topLevelItemCount()))
    best = run.best_snapshot("dice_per_class[1]", "max")
    with qtbot.waitSignal(module.qt_project.deploy_requested, timeout=5000) as blocker:
        qtbot.mouseClick(module.runs.deploy_button, Qt.LeftButton)
    assert blocker.args == [str(run.deploy_path), str(best.caffemodel)]
    assert shown_tabs == ["Deploy"]  # the main window brings Deploy to the front


def test_broken_dataset_path_shows_the_error_and_ui_stays_usable(make_main_window, project_dir,
                                                                  qtbot):
    project = make_train_project(project_dir)
    net_text = project.net_path.read_text().replace('"val_db/labels"', '"/nowhere/val_db/labels"')
    project.net_path.write_text(net_text)
    _window, module = _train_module(make_main_window, project)
    combo = module.form._source_combos[3]
    combo.setCurrentIndex(0)  # "as in the net": the missing path
    qtbot.mouseClick(module.train_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not module.monitors, timeout=60000)
    assert module.error_banner.isVisible()
    text = module.error_banner.label.text()
    assert "failed" in text and "/nowhere/val_db/labels" in text
    assert "data_param.source" in text and "'label'" in text
    assert module.shown.run.status == "failed"
    assert module.train_button.isEnabled() and module.form.isEnabled()
    assert module.runs.runs_tree.topLevelItem(0).text(1) == "failed"


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
        _window, module = _train_module(make_main_window, project)
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


def test_quitting_while_training_can_stop_it_with_a_snapshot(make_main_window, project_dir,
                                                            qtbot, monkeypatch):
    project = make_train_project(project_dir)
    run = _fake_run(project, "run-quit", status="running", max_iter=100000)
    process = start_fake_trainer(run.path, 100000, pause=0.02)
    try:
        run.update(pid=process.pid)
        _window, module = _train_module(make_main_window, project)
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
    _window, module = _train_module(make_main_window, project)
    module.show_run("run-caffe-sample")
    module.curves.set_smoothing(0.0)
    expected = log_curves(parse_log(SAMPLE_LOG))
    assert set(module.curves.items) == set(expected)
    for name, (iters, values) in expected.items():
        item = module.curves.items[name]
        x, y = item.xData, item.yData  # all points (getData gives the clipped view)
        assert list(x) == iters and list(y) == pytest.approx(values, nan_ok=True)
    # hover readout reports the raw values at the nearest logged iteration
    assert "train loss" in module.curves.readout_at(iters[0])


def test_compare_export_and_delete_runs(make_main_window, project_dir, qtbot, tmp_path):
    project = make_train_project(project_dir)
    first = _fake_run(project, "run-a", status="done")
    second = _fake_run(project, "run-b", status="done")
    shutil.copy(SAMPLE_LOG, first.log_path)
    shutil.copy(SAMPLE_LOG, second.log_path)
    _window, module = _train_module(make_main_window, project)
    assert module.shown.run.name == "run-b"  # the newest run is shown
    module.runs.set_compared(["run-a"])
    assert [i.name() for i in module.curves.overlay_items] == ["run-a: train loss"]

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
