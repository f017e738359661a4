"""GUI test fixtures: a main-window factory that owns teardown (napari's
``make_napari_viewer`` habit) and a user config redirected into the test's temp dir."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PyQt5.QtCore import QCoreApplication, QEvent
from PyQt5.QtWidgets import QApplication, QMessageBox, QWidget

# Widgets Qt itself keeps at top level between tests (not created by DLP code).
_QT_INTERNAL_TOPLEVELS = {"QDesktopWidget", "QTipLabel", "QDesktopScreenWidget"}


@pytest.fixture(autouse=True)
def isolated_user_config(tmp_path_factory: pytest.TempPathFactory,
                         monkeypatch: pytest.MonkeyPatch) -> Path:
    """No GUI test reads or writes the real ~/.config/dlp or ~/DLP-demo."""
    root = tmp_path_factory.mktemp("user")
    monkeypatch.setenv("DLP_CONFIG_DIR", str(root / "config"))
    monkeypatch.setenv("DLP_DEMO_DIR", str(root / "DLP-demo"))
    return root


def _new_toplevels(before: set[int]) -> list[QWidget]:
    return [w for w in QApplication.topLevelWidgets()
            if id(w) not in before and type(w).__name__ not in _QT_INTERNAL_TOPLEVELS]


@pytest.fixture
def make_main_window(qtbot, project_dir: Path, monkeypatch: pytest.MonkeyPatch
                     ) -> Iterator[Callable[..., object]]:
    """``make_main_window(project=None, **kwargs) -> MainWindow`` (shown).

    Teardown closes every window made (discarding unsaved changes, waiting for
    workers), deletes it, and fails the test when a top-level widget leaked.
    """
    from dlp.gui.main_window import MainWindow
    from dlp.project import Project

    before = {id(w) for w in QApplication.topLevelWidgets()}
    windows: list[MainWindow] = []

    # Offscreen, a modal message box would wait forever: an unexpected one fails the
    # test with its text instead.  Tests expecting a question patch it themselves.
    def unexpected_dialog(*args: object, **kwargs: object) -> int:
        texts = [a for a in args if isinstance(a, str)]
        raise AssertionError(f"unexpected modal dialog: {texts}")

    for name in ("question", "warning", "critical", "information", "about"):
        monkeypatch.setattr(QMessageBox, name, staticmethod(unexpected_dialog))
    monkeypatch.setattr(QMessageBox, "exec_", unexpected_dialog)

    def factory(project: Project | None = None, show: bool = True, **kwargs: object):
        if project is None:
            project = Project.open_or_create(project_dir)
        window = MainWindow(project, **kwargs)
        windows.append(window)
        if show:
            window.show()
            qtbot.waitExposed(window)
        return window

    yield factory

    monkeypatch.setattr(QMessageBox, "question",
                        staticmethod(lambda *a, **k: QMessageBox.Discard))
    for window in windows:
        window.close()
        window.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    QCoreApplication.processEvents()
    leaked = _new_toplevels(before)
    for widget in leaked:
        widget.deleteLater()
    QCoreApplication.sendPostedEvents(None, QEvent.DeferredDelete)
    assert not leaked, f"top-level widgets leaked by the test: {leaked}"
