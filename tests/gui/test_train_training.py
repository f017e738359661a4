"""The Train tab with the real solver: train a tiny phantom FCN from the panel, see the
curves grow, Stop (snapshot), Resume (the iteration continues), send the best snapshot
to Deploy; a broken dataset path shows the solver's error and the tab stays usable."""

from __future__ import annotations

import pytest
from PyQt5.QtCore import Qt

from dlp.train.runs import Run
from tests.gui.train_support import (  # noqa: F401 (autouse fixtures)
    kill_run_processes,
    make_train_project,
    no_training_left_behind,
    one_thread_children,
    train_module,
)

pytestmark = pytest.mark.gui


def test_train_stop_resume_and_send_to_deploy(make_main_window, project_dir, qtbot,
                                              monkeypatch):
    # a snapshot every test round, so snapshots carry test metrics whenever Stop comes
    project = make_train_project(project_dir, snapshot=20)
    window, module = train_module(make_main_window, project)
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
    qtbot.waitUntil(lambda: "it/s" in module.speed_label.text(), timeout=30000)
    assert "ETA" in module.speed_label.text()
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
    _window, module = train_module(make_main_window, project)
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
