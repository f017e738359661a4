"""DLP's main window: the Data, Net, Train and Deploy tabs around one project.

The window owns what is shared: the project (through :class:`QtProject`), menus,
toolbar, status bar, unsaved-changes prompts, autosave and crash recovery.  Each tab
is a module widget built as ``ModuleClass(qt_project, parent)``; the window talks to
it only through this small, optional protocol (see docs/ARCHITECTURE.md):

- ``undo_stack``: a ``QUndoStack`` (Edit → Undo/Redo act on the current tab's stack);
- ``is_modified() -> bool`` and ``save() -> bool | None`` (False = not saved);
- ``autosave_files() -> dict[str, str]``: project-relative path → text that ``save()``
  would write; kept in ``<project>/.autosave/`` while unsaved, offered after a crash;
- ``confirm_close() -> bool``: last word before the project closes (e.g. a training
  run still going); ``shutdown()``: release threads/processes, the window is closing.
"""

from __future__ import annotations

import importlib
import logging
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

from PyQt5.QtCore import QSettings, Qt, QTimer, QUrl
from PyQt5.QtGui import QCloseEvent, QDesktopServices, QKeySequence
from PyQt5.QtWidgets import (
    QAction,
    QFileDialog,
    QLabel,
    QMainWindow,
    QMenu,
    QMessageBox,
    QTabWidget,
    QUndoGroup,
    QUndoStack,
    QVBoxLayout,
    QWidget,
)

import dlp
from dlp.errors import DLPError
from dlp.gui.qt_project import QtProject
from dlp.gui.resources import icon, resources_dir
from dlp.gui.widgets.progress_panel import ProgressPanel
from dlp.gui.workers import Worker
from dlp.project import Project, RecentProjects, config_dir

log = logging.getLogger(__name__)

DEFAULT_AUTOSAVE_SECONDS = 60


@dataclass(frozen=True)
class ModuleSpec:
    """Where a tab's widget class lives."""

    title: str
    module: str
    class_name: str
    icon: str


MODULES: tuple[ModuleSpec, ...] = (
    ModuleSpec("Data", "dlp.gui.data", "QtDataModule", "data"),
    ModuleSpec("Net", "dlp.gui.net", "QtNetModule", "net"),
    ModuleSpec("Train", "dlp.gui.train", "QtTrainModule", "train"),
    ModuleSpec("Deploy", "dlp.gui.deploy", "QtDeployModule", "deploy"),
)


def app_settings() -> QSettings:
    """Per-user application settings (window geometry, autosave interval), not per project."""
    return QSettings(str(config_dir() / "dlp.ini"), QSettings.IniFormat)


def load_module_class(spec: ModuleSpec) -> tuple[type[QWidget] | None, str | None]:
    """The tab's class, or None and why it is missing (only a missing module is tolerated)."""
    try:
        module = importlib.import_module(spec.module)
    except ModuleNotFoundError as exc:
        if exc.name and (spec.module == exc.name or spec.module.startswith(exc.name + ".")):
            return None, f"The {spec.title} module ({spec.module}) is not installed."
        raise
    cls = getattr(module, spec.class_name, None)
    if cls is None:
        return None, f"The {spec.title} module ({spec.module}) has no {spec.class_name}."
    return cls, None


class ModuleUnavailable(QWidget):
    """What a tab shows when its module cannot be loaded: the reason, nothing else."""

    def __init__(self, title: str, reason: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.reason = reason
        layout = QVBoxLayout(self)
        label = QLabel(f"<h3>{title}</h3><p>{reason}</p>")
        label.setWordWrap(True)
        label.setAlignment(Qt.AlignCenter)
        layout.addWidget(label)


class MainWindow(QMainWindow):
    """The application window.  ``MainWindow(project)``; call :meth:`start_session` once shown.

    ``modules`` limits which tabs are built (by title; default all of :data:`MODULES`) —
    tests of one tab need not construct the others.
    """

    def __init__(self, project: Project | QtProject, parent: QWidget | None = None,
                 recent: RecentProjects | None = None,
                 modules: tuple[str, ...] | None = None) -> None:
        super().__init__(parent)
        self._module_titles = modules
        self.qt_project = project if isinstance(project, QtProject) else QtProject(project, self)
        self.recent = recent if recent is not None else RecentProjects()
        self.modules: dict[str, QWidget] = {}
        self.unavailable: dict[str, str] = {}
        self._undo_group = QUndoGroup(self)
        self._demo_worker: Worker | None = None
        self._session_started = False
        self._discard_on_close = False
        self.claimed_shortcuts: list[tuple[str, str, str]] = []  # (tab, action, key)

        self.setWindowIcon(icon("dlp"))
        self.resize(1280, 820)
        geometry = app_settings().value("geometry")
        if geometry is not None:
            self.restoreGeometry(geometry)
        self._build_tabs()
        self._build_actions()
        self._build_menus()
        self._build_toolbar()
        self._build_status_bar()
        self._claim_shortcuts()

        self._autosave_timer = QTimer(self)
        self._autosave_timer.timeout.connect(self.autosave_now)
        self.set_autosave_interval(
            int(app_settings().value("autosave_seconds", DEFAULT_AUTOSAVE_SECONDS))
        )

        self.qt_project.project_changed.connect(self._on_project_change)
        self.qt_project.settings_changed.connect(self._update_status)
        self.qt_project.deploy_requested.connect(lambda *_: self.show_module("Deploy"))
        self._on_project_change()

    # ------------------------------------------------------------------ construction

    def _build_tabs(self) -> None:
        self.tabs = QTabWidget(self)
        self.tabs.setObjectName("main-tabs")
        self.setCentralWidget(self.tabs)
        specs = [s for s in MODULES
                 if self._module_titles is None or s.title in self._module_titles]
        for spec in specs:
            cls, reason = load_module_class(spec)
            widget: QWidget
            if cls is None:
                widget = ModuleUnavailable(spec.title, reason or "", self.tabs)
                self.unavailable[spec.title] = reason or ""
            else:
                before = set(self.tabs.findChildren(QWidget, options=Qt.FindDirectChildrenOnly))
                try:
                    widget = cls(self.qt_project, self.tabs)
                except Exception as exc:  # one broken tab must not stop DLP: say why instead
                    log.exception("the %s tab could not be built", spec.title)
                    for half_built in self.tabs.findChildren(
                            QWidget, options=Qt.FindDirectChildrenOnly):
                        if half_built not in before:
                            half_built.hide()
                            half_built.deleteLater()
                    cls, reason = None, f"The {spec.title} tab could not be built: {exc}"
                    widget = ModuleUnavailable(spec.title, reason, self.tabs)
                    self.unavailable[spec.title] = reason
            if cls is not None:
                self.modules[spec.title] = widget
                stack = self._undo_stack_of(widget)
                if stack is not None:
                    self._undo_group.addStack(stack)
                    stack.cleanChanged.connect(self._update_title)
            index = self.tabs.addTab(widget, icon(spec.icon), spec.title)
            if cls is None:
                self.tabs.setTabEnabled(index, False)
                self.tabs.setTabToolTip(index, reason or "")
        self.tabs.currentChanged.connect(self._on_tab_change)
        self._on_tab_change(self.tabs.currentIndex())

    def _action(self, text: str, slot: Callable[[], Any], shortcut: Any = None,
                icon_name: str | None = None, tip: str = "") -> QAction:
        action = QAction(text, self)
        if icon_name:
            action.setIcon(icon(icon_name))
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
        if tip:
            action.setStatusTip(tip)
            action.setToolTip(tip)
        action.triggered.connect(lambda _checked=False: slot())
        return action

    def _build_actions(self) -> None:
        self.new_action = self._action("&New Project…", self.choose_new_project,
                                       QKeySequence.New, "new",
                                       "Create a project in an empty folder")
        self.open_action = self._action("&Open Project (Set Directory)…", self.choose_open_project,
                                        QKeySequence.Open, "open",
                                        "Open a working directory as the project")
        self.demo_action = self._action("Open &Demo Project", self.open_demo_project,
                                        tip="The ready-made Sunnybrook phantom project")
        self.save_action = self._action("&Save", self.save_all, QKeySequence.Save, "save",
                                        "Save every tab's changes into the project")
        self.save_as_action = self._action("Save Project &As…", self.choose_save_as,
                                           QKeySequence.SaveAs,
                                           tip="Copy the project to a new folder and open it")
        self.quit_action = self._action("&Quit", self.close, QKeySequence.Quit)
        self.undo_action = self._undo_group.createUndoAction(self, "&Undo")
        self.undo_action.setShortcut(QKeySequence.Undo)
        self.undo_action.setIcon(icon("undo"))
        self.redo_action = self._undo_group.createRedoAction(self, "&Redo")
        self.redo_action.setShortcut(QKeySequence.Redo)
        self.redo_action.setIcon(icon("redo"))
        self.settings_action = self._action("&Settings…", self.open_settings, "Ctrl+,",
                                            "settings", "Engine, device and Python layers")
        self.about_action = self._action("&About DLP", self.show_about, icon_name="about")
        self.docs_action = self._action("&Documentation", self.open_documentation,
                                        QKeySequence.HelpContents, "docs")

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file_menu = bar.addMenu("&File")
        file_menu.addAction(self.new_action)
        file_menu.addAction(self.open_action)
        self.recent_menu = QMenu("Open &Recent", self)
        self.recent_menu.aboutToShow.connect(self._fill_recent_menu)
        file_menu.addMenu(self.recent_menu)
        file_menu.addAction(self.demo_action)
        file_menu.addSeparator()
        file_menu.addAction(self.save_action)
        file_menu.addAction(self.save_as_action)
        file_menu.addSeparator()
        file_menu.addAction(self.quit_action)

        edit_menu = bar.addMenu("&Edit")
        edit_menu.addAction(self.undo_action)
        edit_menu.addAction(self.redo_action)

        view_menu = bar.addMenu("&View")
        for number, spec in enumerate(MODULES, start=1):
            view_menu.addAction(self._action(
                spec.title, lambda title=spec.title: self.show_module(title),
                f"Ctrl+{number}", spec.icon))
        view_menu.addSeparator()
        self.view_menu = view_menu

        tools_menu = bar.addMenu("&Tools")
        tools_menu.addAction(self.settings_action)

        help_menu = bar.addMenu("&Help")
        help_menu.addAction(self.docs_action)
        help_menu.addAction(self.about_action)

    def _build_toolbar(self) -> None:
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("main-toolbar")
        toolbar.setMovable(False)
        toolbar.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        for action in (self.new_action, self.open_action, self.save_action):
            toolbar.addAction(action)
        toolbar.addSeparator()
        toolbar.addAction(self.undo_action)
        toolbar.addAction(self.redo_action)
        toolbar.addSeparator()
        toolbar.addAction(self.settings_action)
        for action in (self.new_action, self.open_action):
            action.setIconText(action.text().replace("&", "").split(" (")[0].rstrip("…"))
        # The group renames Undo/Redo after the command ("Undo Add Convolution"); the
        # menu shows that, the toolbar keeps a short label.
        self.undo_action.setIconText("Undo")
        self.redo_action.setIconText("Redo")
        self.toolbar = toolbar
        self.view_menu.addAction(toolbar.toggleViewAction())

    def _build_status_bar(self) -> None:
        status = self.statusBar()
        self.project_label = QLabel()
        self.project_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.device_label = QLabel()
        self.engine_label = QLabel()
        self.python_label = QLabel()
        self.python_label.setProperty("role", "warning")
        self.progress_panel = ProgressPanel(self)
        self.progress_panel.hide()
        status.addWidget(self.project_label, 1)
        status.addPermanentWidget(self.progress_panel)
        status.addPermanentWidget(self.python_label)
        status.addPermanentWidget(self.device_label)
        status.addPermanentWidget(self.engine_label)

    def _claim_shortcuts(self) -> None:
        """The window's keys (Ctrl+S, Ctrl+O, Ctrl+Z, …) win over a tab's own action with
        the same key: Qt fires neither of two matching shortcuts ("ambiguous overload").
        The tab's action keeps its button and menu entry, only the key moves to the window.
        """
        owned = {action.shortcut().toString() for action in self.findChildren(QAction)
                 if not action.shortcut().isEmpty() and action.parent() is self}
        for name, widget in self.modules.items():
            for action in [*widget.actions(), *widget.findChildren(QAction)]:
                key = action.shortcut().toString()
                if key and key in owned:
                    action.setShortcut(QKeySequence())
                    self.claimed_shortcuts.append((name, action.text(), key))

    # ------------------------------------------------------------------ modules

    @staticmethod
    def _undo_stack_of(widget: QWidget) -> QUndoStack | None:
        stack = getattr(widget, "undo_stack", None)
        if callable(stack) and not isinstance(stack, QUndoStack):
            stack = stack()
        return stack if isinstance(stack, QUndoStack) else None

    def show_module(self, name: str) -> bool:
        """Bring the tab titled ``name`` (Data, Net, Train, Deploy) to the front.

        A module that is not built here (``modules=`` left it out) or could not be built
        is not an error of the user's: the status bar says why and False is returned.
        A name that is no module at all is a programming error (KeyError).
        """
        titles = [s.title for s in MODULES]
        if name not in titles:
            raise KeyError(f"no module tab {name!r}; tabs are {titles}")
        for index in range(self.tabs.count()):
            if self.tabs.tabText(index) == name and self.tabs.isTabEnabled(index):
                self.tabs.setCurrentIndex(index)
                return True
        reason = self.unavailable.get(name) or "it is not part of this window"
        self.statusBar().showMessage(f"The {name} tab is not available: {reason}", 10000)
        return False

    def current_module(self) -> QWidget | None:
        return self.modules.get(self.tabs.tabText(self.tabs.currentIndex()))

    def _on_tab_change(self, index: int) -> None:
        widget = self.modules.get(self.tabs.tabText(index))
        stack = self._undo_stack_of(widget) if widget is not None else None
        self._undo_group.setActiveStack(stack)

    def modified_modules(self) -> list[str]:
        names = []
        for name, widget in self.modules.items():
            is_modified = getattr(widget, "is_modified", None)
            if callable(is_modified) and is_modified():
                names.append(name)
        return names

    def _update_title(self, *_: object) -> None:
        project = self.qt_project.project
        self.setWindowTitle(f"{project.name} [*] — DLP")
        self.setWindowModified(bool(self.modified_modules()))

    def _update_status(self) -> None:
        project = self.qt_project.project
        settings = project.settings
        self.project_label.setText(f"Project: {project.root}")
        self.project_label.setToolTip(str(project.root))
        self.device_label.setText(f"Device: {settings.device}")
        engine = "built-in (PyTorch)" if settings.engine == "builtin" else \
            f"external Caffe ({settings.caffe_tools})"
        self.engine_label.setText(f"Engine: {engine}")
        self.python_label.setText("Python layers allowed" if settings.python_layers else "")
        self.python_label.setVisible(settings.python_layers)

    def _on_project_change(self) -> None:
        self._update_title()
        self._update_status()

    # ------------------------------------------------------------------ saving

    def save_all(self) -> bool:
        """Save every modified tab; False (with a message) when one could not be saved."""
        for name in self.modified_modules():
            if not self._save_module(name):
                return False
        self.qt_project.project.save()
        self.qt_project.project.clear_autosave()
        self._update_title()
        self.statusBar().showMessage("Saved.", 3000)
        return True

    def _save_module(self, name: str) -> bool:
        widget = self.modules[name]
        try:
            result = widget.save()
        except DLPError as exc:
            QMessageBox.critical(self, f"Cannot save {name}", str(exc))
            return False
        if result is False:
            return False
        self.qt_project.project.clear_autosave(name)
        return True

    def confirm_project_close(self, action: str = "close the project") -> bool:
        """Ask about unsaved tabs before ``action``; True when it may go ahead."""
        for widget in self.modules.values():
            confirm = getattr(widget, "confirm_close", None)
            if callable(confirm) and not confirm():
                return False
        modified = self.modified_modules()
        if not modified:
            return True
        answer = QMessageBox.question(
            self, "Unsaved changes",
            f"The {', '.join(modified)} tab{'s have' if len(modified) > 1 else ' has'} "
            f"unsaved changes. Save before you {action}?",
            QMessageBox.Save | QMessageBox.Discard | QMessageBox.Cancel, QMessageBox.Save)
        if answer == QMessageBox.Cancel:
            return False
        if answer == QMessageBox.Save:
            return all(self._save_module(name) for name in modified)
        return True  # Discard: the autosave is dropped with the session

    # ------------------------------------------------------------------ autosave

    def set_autosave_interval(self, seconds: int) -> None:
        """Autosave every ``seconds`` (0 turns it off)."""
        self._autosave_timer.stop()
        if seconds > 0:
            self._autosave_timer.start(seconds * 1000)

    def autosave_now(self) -> list[str]:
        """Keep every modified tab's unsaved content in ``.autosave/``; the tabs autosaved."""
        project = self.qt_project.project
        saved = []
        for name, widget in self.modules.items():
            files_of = getattr(widget, "autosave_files", None)
            is_modified = getattr(widget, "is_modified", None)
            if not callable(files_of) or not callable(is_modified):
                continue
            try:
                if is_modified():
                    project.write_autosave(name, files_of())
                    saved.append(name)
                else:
                    project.clear_autosave(name)
            except (DLPError, OSError) as exc:
                # An autosave failing must not interrupt the user; say it once, quietly.
                self.statusBar().showMessage(f"Autosave of {name} failed: {exc}", 10000)
        return saved

    def start_session(self) -> None:
        """Offer crash recovery for the open project, then mark it open by us."""
        project = self.qt_project.project
        if project.other_session_alive():
            self.statusBar().showMessage(
                "This project is also open in another DLP window: saving in both "
                "overwrites each other's files.", 15000)
        elif project.needs_recovery():
            modules = ", ".join(sorted(project.autosaved()))
            answer = QMessageBox.question(
                self, "Recover unsaved changes?",
                f"DLP did not close properly last time. Unsaved changes of the {modules} "
                f"tab(s) were kept in {project.autosave_dir}.\n\n"
                "Restore them into the project? (No discards them.)",
                QMessageBox.Yes | QMessageBox.No, QMessageBox.Yes)
            if answer == QMessageBox.Yes:
                written = project.recover_autosave()
                self.statusBar().showMessage(
                    f"Recovered {len(written)} file(s) from the autosave.", 10000)
            else:
                project.clear_autosave()
        project.begin_session()
        self._session_started = True
        self.recent.add(project.root)

    def _end_session(self) -> None:
        if self._session_started:
            self.qt_project.project.end_session()
            self._session_started = False

    # ------------------------------------------------------------------ projects

    def open_project(self, root: str | Path, create: bool = True) -> bool:
        """Switch to the project in ``root`` (made a project when ``create``); False if not."""
        if not self.confirm_project_close("switch projects"):
            return False
        try:
            project = Project.open_or_create(root) if create else Project.open(root)
        except DLPError as exc:
            QMessageBox.critical(self, "Cannot open project", str(exc))
            return False
        self._end_session()
        self.qt_project.set_project(project)
        self.start_session()
        self.statusBar().showMessage(f"Opened {project.root}", 5000)
        return True

    def choose_open_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Set the working directory",
                                                  str(self.qt_project.root.parent))
        if folder:
            self.open_project(folder)

    def choose_new_project(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "New project: choose an empty folder",
                                                  str(self.qt_project.root.parent))
        if not folder:
            return
        if Project.is_project(folder):
            QMessageBox.warning(self, "New project",
                                f"{folder} already holds a DLP project; use File → Open.")
            return
        self.open_project(folder)

    def choose_save_as(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Save project as: choose an empty folder",
                                                  str(self.qt_project.root.parent))
        if folder:
            self.save_project_as(Path(folder))

    def save_project_as(self, target: Path) -> bool:
        """Save, copy the whole project into ``target`` (empty or new) and open the copy."""
        target = target.expanduser().resolve()
        source = self.qt_project.root
        if target == source or source in target.parents:
            QMessageBox.warning(self, "Save As", f"{target} is inside the current project.")
            return False
        if target.exists() and any(target.iterdir()):
            QMessageBox.warning(self, "Save As", f"{target} is not empty; choose an empty folder.")
            return False
        if not self.save_all():
            return False
        try:
            shutil.copytree(source, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns(".autosave"))
        except OSError as exc:
            QMessageBox.critical(self, "Save As", f"Copying to {target} failed: {exc}")
            return False
        return self.open_project(target, create=False)

    def _fill_recent_menu(self) -> None:
        self.recent_menu.clear()
        paths = self.recent.list()
        for path in paths:
            action = self.recent_menu.addAction(str(path))
            action.triggered.connect(lambda _checked=False, p=path: self.open_project(p, False))
        if not paths:
            self.recent_menu.addAction("(no recent projects)").setEnabled(False)
        else:
            self.recent_menu.addSeparator()
            self.recent_menu.addAction("Clear list", self.recent.clear)

    # ------------------------------------------------------------------ demo project

    def open_demo_project(self) -> bool:
        from dlp.demo import demo_dir, ensure_demo_project

        if not self.confirm_project_close("open the demo project"):
            return False
        project = ensure_demo_project(demo_dir())
        self._end_session()
        self.qt_project.set_project(project)
        self.start_session()
        self.build_demo_content_if_needed()
        return True

    def build_demo_content_if_needed(self, **options: Any) -> Worker | None:
        """Build the demo's dataset and net in a worker (first use only); the worker or None."""
        from dlp.demo import build_demo_content, demo_is_complete

        project = self.qt_project.project
        if demo_is_complete(project) or self._demo_worker is not None:
            return self._demo_worker
        worker = Worker(build_demo_content, project, **options)
        self._demo_worker = worker
        self.progress_panel.attach(worker, "Building the demo dataset")
        worker.succeeded.connect(self._on_demo_built)
        worker.failed.connect(
            lambda message, _details: QMessageBox.warning(self, "Demo project", message))
        worker.done.connect(self._on_demo_done)
        worker.start()
        return worker

    def _on_demo_built(self, _report: object) -> None:
        # build_demo_content announced the new dataset, net and solver itself.
        self.statusBar().showMessage(
            "The demo project is ready: look at the data, then Net → Train → Deploy.", 10000)

    def _on_demo_done(self) -> None:
        worker, self._demo_worker = self._demo_worker, None
        if worker is not None:
            worker.wait()
            worker.deleteLater()

    # ------------------------------------------------------------------ tools and help

    def open_settings(self) -> bool:
        from dlp.gui.settings_dialog import QtSettingsDialog

        dialog = QtSettingsDialog(self.qt_project.project, self,
                                  autosave_seconds=self._autosave_seconds())
        accepted = dialog.exec_() == QtSettingsDialog.Accepted
        if accepted:
            app_settings().setValue("autosave_seconds", dialog.autosave_seconds())
            self.set_autosave_interval(dialog.autosave_seconds())
        dialog.deleteLater()
        return accepted

    def _autosave_seconds(self) -> int:
        return int(app_settings().value("autosave_seconds", DEFAULT_AUTOSAVE_SECONDS))

    def show_about(self) -> None:
        try:
            torch_version = metadata.version("torch")
        except metadata.PackageNotFoundError:
            torch_version = "not installed"
        QMessageBox.about(
            self, "About DLP",
            f"<h3>DLP {dlp.__version__}</h3>"
            "<p>A desktop deep-learning platform for medical image segmentation: "
            "Caffe networks (prototxt, caffemodel, LMDB) on a PyTorch engine with "
            "Caffe's layer semantics.</p>"
            f"<p>PyTorch {torch_version}, Qt through PyQt5.</p>")

    def documentation_url(self) -> QUrl:
        for candidate in (resources_dir().parent / "README.md",
                          resources_dir().parent / "docs" / "ARCHITECTURE.md"):
            if candidate.is_file():
                return QUrl.fromLocalFile(str(candidate))
        return QUrl("https://github.com/BVLC/caffe/wiki")

    def open_documentation(self) -> None:
        QDesktopServices.openUrl(self.documentation_url())

    # ------------------------------------------------------------------ closing

    def close_discarding_changes(self) -> bool:
        """Close without asking (smoke checks, screenshots): unsaved changes are dropped."""
        self._discard_on_close = True
        return self.close()

    def closeEvent(self, event: QCloseEvent) -> None:
        if not self._discard_on_close and \
                not self.confirm_project_close("quit"):
            event.ignore()
            return
        if self._demo_worker is not None:
            self._demo_worker.stop_and_wait()
        for widget in self.modules.values():
            shutdown = getattr(widget, "shutdown", None)
            if callable(shutdown):
                shutdown()
        self._autosave_timer.stop()
        self._end_session()
        app_settings().setValue("geometry", self.saveGeometry())
        event.accept()
