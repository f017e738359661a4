"""The real tabs: all four modules load into the main window and follow the shell's
protocol (undo stack routed to Edit, project switch reaches every tab)."""

from __future__ import annotations

from PyQt5.QtCore import QCoreApplication, QEvent
from PyQt5.QtWidgets import QUndoStack, QWidget

from dlp.errors import DLPError
from dlp.gui.main_window import MODULES, MainWindow, load_module_class
from dlp.project import Project


def test_every_module_class_imports() -> None:
    missing = {spec.title: reason for spec in MODULES
               for cls, reason in [load_module_class(spec)] if cls is None}
    assert not missing


def test_all_four_tabs_are_real_modules_and_enabled(make_main_window) -> None:
    window: MainWindow = make_main_window()
    assert not window.unavailable
    assert list(window.modules) == ["Data", "Net", "Train", "Deploy"]
    for index in range(window.tabs.count()):
        assert window.tabs.isTabEnabled(index)
    for name, module in window.modules.items():
        # The protocol is optional; a tab that keeps edits must say whether it has any.
        is_modified = getattr(module, "is_modified", None)
        if is_modified is not None:
            assert callable(getattr(module, "save", None)), f"{name} has no save()"
            assert not is_modified(), f"{name} is modified right after opening"
    assert window.modified_modules() == []
    assert window.close()  # no question: the fixture fails on any unexpected dialog


def test_edit_menu_follows_the_net_tabs_undo_stack(make_main_window) -> None:
    window: MainWindow = make_main_window(modules=("Data", "Net"))
    window.show_module("Net")
    stack = window._undo_stack_of(window.modules["Net"])
    assert isinstance(stack, QUndoStack)
    assert window._undo_group.activeStack() is stack


def test_switching_projects_reaches_every_tab(make_main_window, tmp_path, monkeypatch) -> None:
    from PyQt5.QtWidgets import QMessageBox

    # Whether a fresh tab counts as modified is checked above; here only the switch.
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.Discard))
    window: MainWindow = make_main_window()
    window.start_session()
    other = Project.create(tmp_path / "other")
    assert window.open_project(other.root)
    for name, module in window.modules.items():
        assert module.qt_project.root == other.root, name


def test_the_demo_opens_in_every_tab_once_built(make_main_window, qtbot) -> None:
    from dlp.demo import ensure_demo_project

    window: MainWindow = make_main_window(ensure_demo_project(), modules=("Data", "Net"))
    window.build_demo_content_if_needed(cases=2, slices=2, size=64)
    qtbot.waitUntil(lambda: window._demo_worker is None, timeout=60000)
    net_tab = window.modules["Net"]
    qtbot.waitUntil(lambda: len(net_tab.doc.to_net().layer) > 0, timeout=10000)
    data_layers = [layer for layer in net_tab.doc.to_net().layer if layer.type == "Data"]
    assert data_layers and all("sunnybrook-phantom" in layer.data_param.source
                               for layer in data_layers)
    assert not net_tab.is_modified()


def test_an_unsaved_net_edit_survives_a_crash(make_main_window, monkeypatch, project_dir) -> None:
    """Autosave → crash → next start → recovery, with the real Net tab."""
    from PyQt5.QtWidgets import QMessageBox

    window: MainWindow = make_main_window(modules=("Net",))
    window.start_session()
    net_tab = window.modules["Net"]
    assert net_tab.editor.add_layer("Input", (0.0, 0.0)) is not None
    assert net_tab.is_modified()
    assert window.autosave_now() == ["Net"]
    window._session_started = False  # "crash": the session is never ended
    monkeypatch.setattr(QMessageBox, "question", staticmethod(lambda *a, **k: QMessageBox.Yes))
    second: MainWindow = make_main_window(Project.open(project_dir), modules=("Net",))
    second.start_session()
    recovered = second.modules["Net"].doc.to_net()
    assert [layer.type for layer in recovered.layer] == ["Input"]
    assert (project_dir / "nets" / "train_val.prototxt").is_file()


def test_ctrl_s_in_the_net_tab_saves_the_net(make_main_window, qtbot, project_dir) -> None:
    """The tab's own Save key would make Ctrl+S ambiguous (Qt then fires nothing)."""
    from PyQt5.QtCore import Qt
    from PyQt5.QtWidgets import QApplication

    window: MainWindow = make_main_window(modules=("Data", "Net"))
    QApplication.setActiveWindow(window)  # shortcuts of a window fire only when it is active
    qtbot.waitActive(window)
    window.show_module("Net")
    net_tab = window.modules["Net"]
    net_tab.editor.add_layer("Input", (0.0, 0.0))
    net_tab.view.setFocus()
    qtbot.keyClick(net_tab.view, Qt.Key_S, Qt.ControlModifier)
    assert not net_tab.is_modified()
    assert (project_dir / "nets" / "train_val.prototxt").is_file()
    assert ("Net", "Save", "Ctrl+S") in window.claimed_shortcuts
    qtbot.keyClick(net_tab.view, Qt.Key_Z, Qt.ControlModifier)
    assert net_tab.is_modified()  # Ctrl+Z undid the add through Edit → Undo


def test_show_module_of_a_tab_not_built_is_a_status_message(make_main_window) -> None:
    window: MainWindow = make_main_window(modules=("Data", "Net"))
    window.show_module("Net")
    assert window.show_module("Deploy") is False  # e.g. a deploy request from Train
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Net"
    assert "Deploy tab is not available" in window.statusBar().currentMessage()
    window.qt_project.request_deploy("deploy.prototxt", "w.caffemodel")  # no exception
    assert window.show_module("Data") is True


def test_a_tab_whose_construction_fails_says_why_and_the_rest_work(
        make_main_window, monkeypatch) -> None:
    from dlp.gui.train import QtTrainModule

    def broken(self, qt_project, parent=None) -> None:
        QWidget.__init__(self, parent)  # half-built, as a real failure leaves it
        raise DLPError("solver.prototxt:3: bad field")

    monkeypatch.setattr(QtTrainModule, "__init__", broken)
    window: MainWindow = make_main_window(modules=("Net", "Train"))
    assert "Train" not in window.modules and "Net" in window.modules
    assert "solver.prototxt:3: bad field" in window.unavailable["Train"]
    index = [window.tabs.tabText(i) for i in range(window.tabs.count())].index("Train")
    assert not window.tabs.isTabEnabled(index)
    assert "bad field" in window.tabs.tabToolTip(index)
    assert window.show_module("Train") is False
    assert "could not be built" in window.statusBar().currentMessage()
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    assert window.tabs.findChildren(QtTrainModule) == []  # the half-built one is gone
