"""Start the DLP desktop application: ``run_app()`` behind ``python -m dlp gui`` and main.py."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

from PyQt5.QtCore import QTimer
from PyQt5.QtWidgets import QApplication, QMessageBox, QStyleFactory

from dlp.errors import DLPError
from dlp.project import Project, RecentProjects


def make_application(argv: list[str] | None = None) -> QApplication:
    """The QApplication, created once, with DLP's name, icon and light style."""
    from dlp.gui.resources import icon, style_sheet

    app = QApplication.instance()
    if app is None:
        app = QApplication(argv if argv is not None else sys.argv[:1])
    app.setApplicationName("DLP")
    app.setOrganizationName("DLP")
    app.setWindowIcon(icon("dlp"))
    if "Fusion" in list(QStyleFactory.keys()):  # a Qt list, not a dict
        app.setStyle("Fusion")
    app.setStyleSheet(style_sheet())
    return app


@dataclass(frozen=True)
class Startup:
    """What to open at start: the project, whether it is the demo, a warning to show."""

    project: Project
    is_demo: bool
    warning: str | None = None


def choose_startup_project(project_dir: str | Path | None, demo: bool,
                           recent: RecentProjects) -> Startup:
    """An explicit folder wins (a broken one is an error); then ``--demo``; then the
    most recent project; a first start (no recent project) opens the demo so a new
    user has something to click.  A recent project that no longer opens falls back to
    the demo with a warning, and leaves the recent list.
    """
    from dlp.demo import demo_dir, ensure_demo_project

    if project_dir is not None:
        return Startup(Project.open_or_create(project_dir), False)
    warning = None
    if not demo:
        last = recent.last()
        if last is not None:
            try:
                return Startup(Project.open(last), False)
            except DLPError as exc:
                recent.remove(last)
                warning = ("The last project could not be opened, so the demo opened "
                           f"instead.\n\n{exc}")
    return Startup(ensure_demo_project(demo_dir()), True, warning)


def run_app(project_dir: str | Path | None = None, *, demo: bool = False,
            screenshot: str | None = None) -> int:
    """Open the main window and run the event loop; the exit code."""
    from dlp.demo import demo_is_complete
    from dlp.gui.main_window import MainWindow

    app = make_application()
    recent = RecentProjects()
    try:
        startup = choose_startup_project(project_dir, demo, recent)
    except DLPError as exc:
        if screenshot is None:
            QMessageBox.critical(None, "DLP cannot open the project", str(exc))
        print(f"dlp gui: error: {exc}", file=sys.stderr)
        return 1
    project = startup.project
    window = MainWindow(project, recent=recent)
    window.show()
    if screenshot is not None:
        def grab_and_quit() -> None:
            window.grab().save(screenshot)
            window.close_discarding_changes()

        QTimer.singleShot(300, grab_and_quit)
    else:
        if startup.warning:
            QMessageBox.warning(window, "DLP", startup.warning)
        window.start_session()
        if startup.is_demo and not demo_is_complete(project):
            window.build_demo_content_if_needed()
    return int(app.exec_())
