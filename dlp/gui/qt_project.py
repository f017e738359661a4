"""QtProject: the Qt face of :class:`dlp.project.Project` shared by every tab.

The model stays Qt-free; this object turns its plain-Python events into Qt signals
(delivered in the GUI thread even when a worker thread caused them) and lets the
main window swap the open project without the modules holding a stale reference:
modules keep the QtProject and read ``qt_project.project`` when they need it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt5.QtCore import QObject, pyqtSignal

from dlp.project import DatasetEntry, Project, ProjectEvent, ProjectSettings, RunEntry


class QtProject(QObject):
    """Signals: ``project_changed`` (a different project was opened, or it was reloaded),
    ``settings_changed``, ``net_changed``, ``datasets_changed``, ``runs_changed``,
    ``deploy_requested(deploy_net, weights)``."""

    project_changed = pyqtSignal()
    settings_changed = pyqtSignal()
    net_changed = pyqtSignal()
    datasets_changed = pyqtSignal()
    runs_changed = pyqtSignal()
    deploy_requested = pyqtSignal(str, str)

    def __init__(self, project: Project, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._project = project
        project.events.connect(self._on_project_event)

    # ---- the wrapped model

    @property
    def project(self) -> Project:
        return self._project

    def set_project(self, project: Project) -> None:
        """Switch to another project (File → Open); every module hears project_changed."""
        if project is self._project:
            return
        self._project.events.disconnect(self._on_project_event)
        self._project = project
        project.events.connect(self._on_project_event)
        self.project_changed.emit()

    def _on_project_event(self, event: ProjectEvent) -> None:
        if event.kind == "deploy_requested":
            self.deploy_requested.emit(event.data["deploy_net"], event.data["weights"])
            return
        getattr(self, event.kind).emit()

    # ---- the parts of Project every module uses (anything else: ``.project``)

    @property
    def root(self) -> Path:
        return self._project.root

    @property
    def settings(self) -> ProjectSettings:
        return self._project.settings

    @property
    def net_path(self) -> Path:
        return self._project.net_path

    @property
    def solver_path(self) -> Path:
        return self._project.solver_path

    @property
    def layout_path(self) -> Path:
        return self._project.layout_path

    @property
    def library_dir(self) -> Path:
        return self._project.library_dir

    @property
    def datasets_dir(self) -> Path:
        return self._project.datasets_dir

    @property
    def runs_dir(self) -> Path:
        return self._project.runs_dir

    @property
    def deploy_dir(self) -> Path:
        return self._project.deploy_dir

    @property
    def results_dir(self) -> Path:
        return self._project.results_dir

    def datasets(self) -> list[DatasetEntry]:
        return self._project.datasets()

    def runs(self) -> list[RunEntry]:
        return self._project.runs()

    def new_run_dir(self, prefix: str = "run") -> Path:
        return self._project.new_run_dir(prefix)

    def update_settings(self, **changes: Any) -> None:
        self._project.update_settings(**changes)

    def state(self, module: str) -> dict[str, Any]:
        return self._project.state(module)

    def set_state(self, module: str, value: dict[str, Any]) -> None:
        self._project.set_state(module, value)

    def request_deploy(self, deploy_net: str, weights: str) -> None:
        self._project.request_deploy(deploy_net, weights)

    def notify_net_changed(self) -> None:
        self._project.notify_net_changed()

    def notify_datasets_changed(self) -> None:
        self._project.notify_datasets_changed()

    def notify_runs_changed(self) -> None:
        self._project.notify_runs_changed()
