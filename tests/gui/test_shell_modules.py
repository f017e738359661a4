"""The real tabs: all four modules load into the main window and follow the shell's
protocol (undo stack routed to Edit, project switch reaches every tab)."""

from __future__ import annotations

from PyQt5.QtWidgets import QUndoStack

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
        for hook in ("is_modified", "save"):
            assert callable(getattr(module, hook, None)), f"{name} has no {hook}()"
        assert not module.is_modified(), f"{name} is modified right after opening"


def test_edit_menu_follows_the_net_tabs_undo_stack(make_main_window) -> None:
    window: MainWindow = make_main_window()
    window.show_module("Net")
    stack = window._undo_stack_of(window.modules["Net"])
    assert isinstance(stack, QUndoStack)
    assert window._undo_group.activeStack() is stack


def test_switching_projects_reaches_every_tab(make_main_window, tmp_path) -> None:
    window: MainWindow = make_main_window()
    window.start_session()
    other = Project.create(tmp_path / "other")
    assert window.open_project(other.root)
    for name, module in window.modules.items():
        assert module.qt_project.root == other.root, name
