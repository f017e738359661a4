"""The application shell driven as a user would: tabs, menus, Undo/Redo routing,
unsaved-changes prompts, projects and recent projects, autosave and crash recovery.

The tabs here are small test modules that implement the module protocol of
docs/ARCHITECTURE.md (undo stack, is_modified/save, autosave_files), so the shell's
behaviour is checked independently of the real modules; test_shell_modules.py
checks the real ones load.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PyQt5.QtWidgets import QMessageBox, QUndoCommand, QUndoStack, QWidget

from dlp.gui import main_window as main_window_module
from dlp.gui.main_window import MainWindow, ModuleSpec, ModuleUnavailable
from dlp.gui.qt_project import QtProject
from dlp.project import Project, RecentProjects


class _SetText(QUndoCommand):
    def __init__(self, module: NoteModule, text: str) -> None:
        super().__init__(f"set text to {text!r}")
        self.module, self.new, self.old = module, text, module.text

    def redo(self) -> None:
        self.module.text = self.new

    def undo(self) -> None:
        self.module.text = self.old


class NoteModule(QWidget):
    """A tab keeping one text in ``nets/<tab>.txt``: the module protocol, nothing more."""

    tab = "note"

    def __init__(self, qt_project: QtProject, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.qt_project = qt_project
        self.undo_stack = QUndoStack(self)
        self.saves = 0
        self.text = ""
        qt_project.net_changed.connect(self.reload)
        qt_project.project_changed.connect(self.reload)
        self.reload()

    @property
    def path(self) -> Path:
        return self.qt_project.root / "nets" / f"{self.tab}.txt"

    def reload(self) -> None:
        self.text = self.path.read_text() if self.path.exists() else ""
        self.undo_stack.clear()

    def edit(self, text: str) -> None:
        self.undo_stack.push(_SetText(self, text))

    def is_modified(self) -> bool:
        return not self.undo_stack.isClean()

    def save(self) -> bool:
        self.path.write_text(self.text)
        self.undo_stack.setClean()
        self.saves += 1
        return True

    def autosave_files(self) -> dict[str, str]:
        return {f"nets/{self.tab}.txt": self.text}


class FirstNotes(NoteModule):
    tab = "first"


class SecondNotes(NoteModule):
    tab = "second"


class ThirdNotes(NoteModule):
    tab = "third"


@pytest.fixture
def note_tabs(monkeypatch: pytest.MonkeyPatch) -> None:
    """Data, Net and Deploy are note modules; Train names a module that does not exist."""
    import sys
    import types

    fake = types.ModuleType("tests_gui_fake_modules")
    fake.FirstNotes, fake.SecondNotes, fake.ThirdNotes = FirstNotes, SecondNotes, ThirdNotes
    monkeypatch.setitem(sys.modules, "tests_gui_fake_modules", fake)
    monkeypatch.setattr(main_window_module, "MODULES", (
        ModuleSpec("Data", "tests_gui_fake_modules", "FirstNotes", "data"),
        ModuleSpec("Net", "tests_gui_fake_modules", "SecondNotes", "net"),
        ModuleSpec("Train", "dlp.gui.no_such_train_module", "QtTrainModule", "train"),
        ModuleSpec("Deploy", "tests_gui_fake_modules", "ThirdNotes", "deploy"),
    ))


def answer_questions(monkeypatch: pytest.MonkeyPatch, *answers: int) -> list[str]:
    """Make QMessageBox.question return ``answers`` in turn; returns the texts asked."""
    asked: list[str] = []
    queue = list(answers)

    def question(parent, title, text, *args, **kwargs):
        asked.append(text)
        return queue.pop(0)

    monkeypatch.setattr(QMessageBox, "question", staticmethod(question))
    return asked


def test_window_shows_the_four_tabs_and_the_project_in_the_status_bar(
    make_main_window, note_tabs, project_dir: Path
) -> None:
    window: MainWindow = make_main_window()
    titles = [window.tabs.tabText(i) for i in range(window.tabs.count())]
    assert titles == ["Data", "Net", "Train", "Deploy"]
    assert str(project_dir.resolve()) in window.project_label.text()
    assert window.device_label.text() == "Device: cpu"
    assert "built-in" in window.engine_label.text()
    assert window.windowTitle().startswith(project_dir.name)
    menus = [a.text().replace("&", "") for a in window.menuBar().actions()]
    assert menus == ["File", "Edit", "View", "Tools", "Help"]


def test_a_missing_module_is_a_disabled_tab_that_says_why(make_main_window, note_tabs) -> None:
    window: MainWindow = make_main_window()
    train_index = 2
    assert not window.tabs.isTabEnabled(train_index)
    placeholder = window.tabs.widget(train_index)
    assert isinstance(placeholder, ModuleUnavailable)
    assert "dlp.gui.no_such_train_module" in placeholder.reason
    assert "not installed" in window.tabs.tabToolTip(train_index)
    assert set(window.modules) == {"Data", "Net", "Deploy"}


def test_a_module_without_its_class_is_reported(note_tabs) -> None:
    cls, reason = main_window_module.load_module_class(
        ModuleSpec("Deploy", "tests_gui_fake_modules", "NoSuchClass", "deploy"))
    assert cls is None and "has no NoSuchClass" in reason


def test_a_module_whose_own_imports_fail_is_not_hidden(monkeypatch, tmp_path) -> None:
    """Only a missing tab module falls back; a bug inside one must surface."""
    package = tmp_path / "tests_gui_broken_tab"
    package.mkdir()
    (package / "__init__.py").write_text("import numpyy_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    spec = ModuleSpec("Data", "tests_gui_broken_tab", "QtDataModule", "data")
    with pytest.raises(ModuleNotFoundError, match="numpyy_is_not_installed"):
        main_window_module.load_module_class(spec)


def test_undo_and_redo_act_on_the_current_tab(make_main_window, note_tabs, qtbot) -> None:
    window: MainWindow = make_main_window()
    data, net = window.modules["Data"], window.modules["Net"]
    window.show_module("Data")
    data.edit("a")
    window.show_module("Net")
    net.edit("b")
    assert window.undo_action.isEnabled()
    window.undo_action.trigger()
    assert (data.text, net.text) == ("a", "")
    assert not window.undo_action.isEnabled()  # nothing left on the Net tab's stack
    window.show_module("Data")
    window.undo_action.trigger()
    assert data.text == ""
    window.redo_action.trigger()
    assert data.text == "a"
    assert window.isWindowModified()


def test_closing_with_unsaved_changes_asks_and_cancel_keeps_the_window(
    make_main_window, note_tabs, monkeypatch
) -> None:
    window: MainWindow = make_main_window()
    window.modules["Net"].edit("unsaved")
    asked = answer_questions(monkeypatch, QMessageBox.Cancel)
    assert not window.close()
    assert window.isVisible()
    assert "Net tab has unsaved changes" in asked[0]


def test_closing_and_choosing_save_saves_the_module(
    make_main_window, note_tabs, monkeypatch
) -> None:
    window: MainWindow = make_main_window()
    net = window.modules["Net"]
    net.edit("keep me")
    answer_questions(monkeypatch, QMessageBox.Save)
    assert window.close()
    assert net.path.read_text() == "keep me"


def test_closing_and_choosing_discard_leaves_files_and_no_autosave(
    make_main_window, note_tabs, monkeypatch
) -> None:
    window: MainWindow = make_main_window()
    window.start_session()
    net = window.modules["Net"]
    net.edit("throw away")
    assert window.autosave_now() == ["Net"]
    answer_questions(monkeypatch, QMessageBox.Discard)
    assert window.close()
    assert not net.path.exists()
    assert not Project.open(window.qt_project.root).needs_recovery()


def test_file_save_saves_every_modified_tab(make_main_window, note_tabs) -> None:
    window: MainWindow = make_main_window()
    window.modules["Data"].edit("one")
    window.modules["Net"].edit("two")
    window.save_action.trigger()
    assert window.modules["Data"].path.read_text() == "one"
    assert window.modules["Net"].path.read_text() == "two"
    assert not window.isWindowModified()


def test_switching_project_asks_about_unsaved_changes_and_reloads_tabs(
    make_main_window, note_tabs, monkeypatch, tmp_path
) -> None:
    other = Project.create(tmp_path / "other")
    (other.nets_dir / "second.txt").write_text("other project's note")
    window: MainWindow = make_main_window()
    window.start_session()
    window.modules["Net"].edit("unsaved")
    asked = answer_questions(monkeypatch, QMessageBox.Cancel, QMessageBox.Discard)
    assert not window.open_project(other.root)
    assert window.qt_project.root != other.root
    assert window.open_project(other.root)
    assert "switch projects" in asked[0]
    assert window.qt_project.root == other.root
    assert window.modules["Net"].text == "other project's note"
    assert str(other.root) in window.project_label.text()
    assert window.recent.list()[0] == other.root


def test_recent_projects_menu_lists_and_reopens(make_main_window, note_tabs, tmp_path) -> None:
    first = Project.create(tmp_path / "first")
    second = Project.create(tmp_path / "second")
    window: MainWindow = make_main_window(first)
    window.start_session()
    window.open_project(second.root)
    window.recent_menu.aboutToShow.emit()
    entries = [a.text() for a in window.recent_menu.actions() if a.text()]
    assert entries[:2] == [str(second.root), str(first.root)]
    next(a for a in window.recent_menu.actions() if a.text() == str(first.root)).trigger()
    assert window.qt_project.root == first.root
    # The list is in the user config and survives a restart.
    assert RecentProjects().list()[:2] == [first.root, second.root]


def test_open_of_a_broken_project_shows_one_clear_error_and_keeps_the_old_one(
    make_main_window, note_tabs, monkeypatch, tmp_path
) -> None:
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "dlp-project.json").write_text("{not json")
    errors = []
    monkeypatch.setattr(QMessageBox, "critical",
                        staticmethod(lambda parent, title, text: errors.append(text)))
    window: MainWindow = make_main_window()
    before = window.qt_project.root
    assert not window.open_project(broken)
    assert window.qt_project.root == before
    assert errors and "dlp-project.json:1:2: invalid JSON" in errors[0]


def test_autosave_then_crash_then_recovery_on_next_start(
    make_main_window, note_tabs, monkeypatch, project_dir
) -> None:
    window: MainWindow = make_main_window()
    window.start_session()
    window.modules["Net"].edit("work in progress")
    assert window.autosave_now() == ["Net"]
    # A crash: no close, no end of session.  The next DLP opens the same project.
    asked = answer_questions(monkeypatch, QMessageBox.Yes)
    second: MainWindow = make_main_window(Project.open(project_dir))
    second.start_session()
    assert "did not close properly" in asked[0] and "Net" in asked[0]
    assert second.modules["Net"].text == "work in progress"
    assert (project_dir / "nets" / "second.txt").read_text() == "work in progress"
    window._session_started = False  # the "crashed" window must not clean up on teardown


def test_recovery_declined_discards_the_autosave(
    make_main_window, note_tabs, monkeypatch, project_dir
) -> None:
    window: MainWindow = make_main_window()
    window.start_session()
    window.modules["Net"].edit("unwanted")
    window.autosave_now()
    window._session_started = False
    answer_questions(monkeypatch, QMessageBox.No)
    second: MainWindow = make_main_window(Project.open(project_dir))
    second.start_session()
    assert second.modules["Net"].text == ""
    assert not Project.open(project_dir).autosaved()


def test_autosave_timer_writes_the_autosave(make_main_window, note_tabs, qtbot,
                                            project_dir) -> None:
    window: MainWindow = make_main_window()
    window.modules["Data"].edit("timer")
    window.set_autosave_interval(1)
    index = project_dir / ".autosave" / "Data" / "index.json"
    qtbot.waitUntil(index.exists, timeout=5000)
    assert json.loads(index.read_text())["files"] == {"nets/first.txt": "000.txt"}


def test_save_as_copies_the_project_and_opens_the_copy(
    make_main_window, note_tabs, tmp_path
) -> None:
    window: MainWindow = make_main_window()
    window.modules["Net"].edit("copied")
    target = tmp_path / "copy"
    assert window.save_project_as(target)
    assert window.qt_project.root == target.resolve()
    assert (target / "nets" / "second.txt").read_text() == "copied"
    assert Project.is_project(target)


def test_deploy_request_brings_the_deploy_tab_forward(make_main_window, note_tabs) -> None:
    window: MainWindow = make_main_window()
    window.show_module("Net")
    window.qt_project.request_deploy("deploy.prototxt", "best.caffemodel")
    assert window.tabs.tabText(window.tabs.currentIndex()) == "Deploy"
    with pytest.raises(KeyError, match="no module tab 'Nope'"):
        window.show_module("Nope")


def test_settings_menu_changes_the_status_bar(make_main_window, note_tabs, monkeypatch) -> None:
    from dlp.gui.settings_dialog import QtSettingsDialog

    def exec_and_accept(dialog: QtSettingsDialog) -> int:
        dialog.python_layers.setChecked(True)
        dialog.autosave_spin.setValue(15)
        dialog.accept()
        return dialog.result()

    monkeypatch.setattr(QtSettingsDialog, "exec_", exec_and_accept)
    monkeypatch.setattr("dlp.gui.settings_dialog.available_devices",
                        lambda: [("cpu", "CPU"), ("cuda:0", "CUDA 0: Test GPU")])

    def exec_pick_gpu(dialog: QtSettingsDialog) -> int:
        dialog.device_combo.setCurrentIndex(dialog.device_combo.findData("cuda:0"))
        dialog.accept()
        return dialog.result()

    window: MainWindow = make_main_window()
    assert not window.python_label.isVisible()
    assert window.open_settings()
    assert window.qt_project.settings.python_layers
    assert window.python_label.isVisible()
    assert window.python_label.text() == "Python layers allowed"
    monkeypatch.setattr(QtSettingsDialog, "exec_", exec_pick_gpu)
    assert window.open_settings()
    assert window.device_label.text() == "Device: cuda:0"
    assert Project.open(window.qt_project.root).settings.device == "cuda:0"
    assert main_window_module.app_settings().value("autosave_seconds", type=int) == 15


def test_about_and_documentation(make_main_window, note_tabs, monkeypatch) -> None:
    shown = []
    monkeypatch.setattr(QMessageBox, "about",
                        staticmethod(lambda parent, title, text: shown.append(text)))
    opened = []
    monkeypatch.setattr("dlp.gui.main_window.QDesktopServices.openUrl",
                        lambda url: opened.append(url) or True)
    window: MainWindow = make_main_window()
    window.about_action.trigger()
    window.docs_action.trigger()
    assert "DLP 0.1.0" in shown[0]
    assert opened[0].toLocalFile().endswith("README.md")


def test_undo_names_the_command_in_the_menu_but_stays_short_in_the_toolbar(
    make_main_window, note_tabs
) -> None:
    window: MainWindow = make_main_window()
    window.show_module("Net")
    window.modules["Net"].edit("x")
    assert window.undo_action.text() == "&Undo set text to 'x'"
    assert window.undo_action.iconText() == "Undo"


def test_close_discarding_changes_never_asks(make_main_window, note_tabs) -> None:
    window: MainWindow = make_main_window()
    window.modules["Net"].edit("dropped")
    assert window.close_discarding_changes()  # the fixture fails on any question
    assert not window.modules["Net"].path.exists()


def test_a_project_open_in_another_dlp_is_flagged_not_recovered(
    make_main_window, note_tabs, project_dir
) -> None:
    project = Project.open_or_create(project_dir)
    project.write_autosave("Net", {"nets/second.txt": "the other window's work"})
    (project_dir / ".autosave" / "session.json").write_text(json.dumps({"pid": 1}))
    window: MainWindow = make_main_window(project)
    window.start_session()  # the fixture fails on any recovery question
    assert "open in another DLP" in window.statusBar().currentMessage()
    assert window.modules["Net"].text == ""
