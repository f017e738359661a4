"""The Train tab: set up the solver, launch training, watch it, stop/resume, pick snapshots.

Thin over the Qt-free core: :mod:`dlp.train.runs` (run folders), :mod:`dlp.train.curves`
(live curves), :mod:`dlp.train.log` (the log parser) and ``python -m dlp train`` (or
an external ``caffe train``) as a detached process followed through its log
(:mod:`dlp.gui.train.process`).
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

from PyQt5.QtCore import Qt, QTimer
from PyQt5.QtWidgets import (
    QApplication,
    QFileDialog,
    QFrame,
    QHBoxLayout,
    QLabel,
    QMainWindow,
    QMessageBox,
    QProgressBar,
    QPushButton,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from dlp.errors import DLPError
from dlp.gui.qt_project import QtProject
from dlp.gui.train.process import RunMonitor, launch
from dlp.gui.train.qt_console import QtConsole
from dlp.gui.train.qt_curves import QtCurves
from dlp.gui.train.qt_runs import QtRuns
from dlp.gui.train.qt_solver_form import QtSolverForm
from dlp.gui.workers import Worker
from dlp.train.curves import LiveCurves, best_point, write_curves_csv
from dlp.train.runs import (
    Run,
    caffe_arguments,
    create_run,
    delete_run,
    list_runs,
    train_arguments,
)

STATE_KEY = "train"
_RATE_WINDOW_S = 20.0


def default_solver() -> Any:
    """A solver for a project that has none yet (Caffe's usual FCN settings, shortened)."""
    from dlp.proto import caffe_pb2

    solver = caffe_pb2.SolverParameter()
    solver.type = "SGD"
    solver.base_lr = 0.01
    solver.lr_policy = "fixed"
    solver.momentum = 0.9
    solver.weight_decay = 0.0005
    solver.max_iter = 1000
    solver.display = 20
    solver.snapshot = 500
    solver.test_interval = 100
    solver.test_iter.append(10)
    return solver


def _weight_report_job(net: Any, weights: list[str], progress: Any = None,
                       cancel: Any = None) -> Any:
    from dlp.train.finetune import weight_report

    return weight_report(net, weights)


class _Banner(QFrame):
    """A coloured message strip with optional action buttons (errors, completion)."""

    def __init__(self, color: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("banner")
        self.setStyleSheet(f"#banner {{ background: {color}; border-radius: 4px; }}")
        self.label = QLabel(self)
        self.label.setWordWrap(True)
        self.label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.buttons = QHBoxLayout()
        close = QPushButton("Dismiss", self)
        close.clicked.connect(self.hide)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(8, 6, 8, 6)
        layout.addWidget(self.label, 1)
        layout.addLayout(self.buttons)
        layout.addWidget(close, 0, Qt.AlignTop)
        self.hide()

    def show_message(self, html: str) -> None:
        self.label.setText(html)
        self.show()


class QtTrainModule(QWidget):
    """The Train tab; ``QtTrainModule(qt_project, parent=None)``."""

    def __init__(self, qt_project: QtProject, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.qt_project = qt_project
        self.monitors: dict[str, RunMonitor] = {}  # runs whose process we follow
        self.shown: RunMonitor | None = None       # the run on screen
        self._overlay_cache: dict[str, tuple[float, LiveCurves]] = {}
        self._rate_samples: list[tuple[float, int]] = []
        self._report_worker: Worker | None = None
        self._saved_solver_text = ""
        before = {id(w) for w in QApplication.topLevelWidgets()}
        self._build()
        adopt_orphan_widgets(self, before)
        qt_project.project_changed.connect(self.reload)
        qt_project.net_changed.connect(self._on_net_change)
        qt_project.datasets_changed.connect(self._on_net_change)
        qt_project.runs_changed.connect(self.refresh_runs)
        self.reload()

    # ------------------------------------------------------------------ layout

    def _build(self) -> None:
        self.form = QtSolverForm(self)
        self.form.changed.connect(self._update_buttons)
        self.form.changed.connect(self._on_form_change)
        self.form.weights_changed.connect(self._on_weights_change)
        self.form.check_weights_requested.connect(self.check_weights)
        scroll = QScrollArea(self)
        scroll.setWidget(self.form)
        scroll.setWidgetResizable(True)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(400)

        self.train_button = QPushButton("Train", self)
        self.train_button.setToolTip("Save the solver and start a new run with this net")
        self.train_button.setStyleSheet("font-weight: bold;")
        self.train_button.clicked.connect(self.start_training)
        self.stop_button = QPushButton("Stop", self)
        self.stop_button.setToolTip("Snapshot, then stop (the run can be resumed)")
        self.stop_button.clicked.connect(self.stop_training)
        self.resume_button = QPushButton("Resume", self)
        self.resume_button.setToolTip("Continue the shown run from its latest .solverstate")
        self.resume_button.clicked.connect(self.resume_training)
        self.restart_button = QPushButton("Restart", self)
        self.restart_button.setToolTip("Train the shown run again from iteration 0")
        self.restart_button.clicked.connect(self.restart_training)
        self.progress = QProgressBar(self)
        self.progress.setFormat("iteration %v / %m")
        self.progress.setTextVisible(True)
        self.progress.setMinimumWidth(220)
        self.speed_label = QLabel(self)
        self.status_label = QLabel(self)
        self.status_label.setTextInteractionFlags(Qt.TextSelectableByMouse)

        bar = QHBoxLayout()
        for button in (self.train_button, self.stop_button, self.resume_button,
                       self.restart_button):
            bar.addWidget(button)
        bar.addSpacing(12)
        bar.addWidget(self.progress, 1)
        bar.addWidget(self.speed_label)

        self.error_banner = _Banner("#fde0e0", self)
        self.done_banner = _Banner("#e3f4e1", self)
        self.next_button = QPushButton("Next step: Deploy ▶", self.done_banner)
        self.next_button.setToolTip("Open Deploy with this run's deploy net and best snapshot")
        self.next_button.clicked.connect(self.deploy_best)
        self.done_banner.buttons.addWidget(self.next_button)

        self.curves = QtCurves(self)
        self.console = QtConsole(self)
        self.runs = QtRuns(self)
        self.runs.run_selected.connect(self._on_run_selected)
        self.runs.compare_changed.connect(self._on_compare_change)
        self.runs.delete_requested.connect(self.confirm_delete_run)
        self.runs.export_csv_requested.connect(self._choose_csv)
        self.runs.export_png_requested.connect(self._choose_png)
        self.runs.deploy_requested.connect(self.deploy_snapshot)
        self.bottom_tabs = QTabWidget(self)
        self.bottom_tabs.addTab(self.runs, "Runs and snapshots")
        self.bottom_tabs.addTab(self.console, "Log")

        right_split = QSplitter(Qt.Vertical, self)
        right_split.addWidget(self.curves)
        right_split.addWidget(self.bottom_tabs)
        right_split.setStretchFactor(0, 3)
        right_split.setStretchFactor(1, 2)
        right_split.setSizes([420, 280])  # the curves are what a user watches
        right = QWidget(self)
        right_layout = QVBoxLayout(right)
        right_layout.setContentsMargins(0, 0, 0, 0)
        right_layout.addLayout(bar)
        right_layout.addWidget(self.status_label)
        right_layout.addWidget(self.error_banner)
        right_layout.addWidget(self.done_banner)
        right_layout.addWidget(right_split, 1)

        split = QSplitter(Qt.Horizontal, self)
        split.addWidget(scroll)
        split.addWidget(right)
        split.setStretchFactor(0, 0)
        split.setStretchFactor(1, 1)
        split.setSizes([420, 880])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(split)

        self._speed_timer = QTimer(self)
        self._speed_timer.setInterval(1000)
        self._speed_timer.timeout.connect(self._update_progress)

    def _on_form_change(self) -> None:
        if self.shown is None:
            self._update_progress()

    # ------------------------------------------------------------------ project

    @property
    def project(self) -> Any:
        return self.qt_project.project

    def _state(self) -> dict[str, Any]:
        return self.qt_project.state(STATE_KEY)

    def _save_state(self, **changes: Any) -> None:
        state = self._state()
        state.update(changes)
        # losing a remembered pick is not worth interrupting the user
        with contextlib.suppress(DLPError, OSError):
            self.qt_project.set_state(STATE_KEY, state)

    def reload(self) -> None:
        """(Re)read the project: solver, net, datasets, runs; re-attach running trainings."""
        self._disconnect_shown()
        self.shown = None
        for monitor in self.monitors.values():
            monitor.stop_polling()
            monitor.deleteLater()
        self.monitors.clear()
        self._overlay_cache.clear()
        self.error_banner.hide()
        self.done_banner.hide()
        self._load_solver()
        self._on_net_change()
        state = self._state()
        self.form.set_weights(state.get("weights", []))
        self.curves.set_smoothing(float(state.get("smoothing", 0.6)))
        self.curves.set_log_y(bool(state.get("log_y", False)))
        self.reattach_runs()
        runs = list_runs(self.project.runs_dir)
        names = [r.name for r in runs]
        wanted = state.get("shown_run")
        if wanted not in names:
            wanted = names[-1] if names else None
        self.refresh_runs(selected=wanted, compared=[n for n in state.get("compared", [])
                                                     if n in names])
        if wanted:
            self.show_run(wanted)
        else:
            self.curves.set_curves(None)
            self.curves.set_overlays({})
            self.console.clear()
            self.runs.set_snapshots([], None)
            self._update_progress()
        self._update_buttons()

    def _load_solver(self) -> None:
        from dlp.net.prototxt import read_solver, solver_to_text

        path = self.project.solver_path
        solver = default_solver()
        if path.is_file():
            try:
                solver = read_solver(path)
            except DLPError as exc:
                self.error_banner.show_message(f"<b>Cannot read the solver</b>: {exc}")
        self.form.set_devices(self._devices(), self.project.settings.device)
        self.form.set_solver(solver)
        # The baseline is what the form makes of the file (it normalises a few fields),
        # so an untouched form is not "modified".
        self._saved_solver_text = self._solver_text() or solver_to_text(solver)

    def _devices(self) -> list[str]:
        devices = ["cpu"]
        current = self.project.settings.device
        if current != "cpu":
            devices.append(current)
        return devices

    def _on_net_change(self) -> None:
        from dlp.net.prototxt import read_net

        net = None
        path = self.project.net_path
        if path.is_file():
            try:
                net = read_net(path)
            except DLPError as exc:
                self.error_banner.show_message(f"<b>Cannot read the net</b>: {exc}")
        sources = {int(k): v for k, v in self._state().get("sources", {}).items()}
        self.form.set_net(net, self.qt_project.datasets(), sources)
        self._update_buttons()

    # ------------------------------------------------------------------ module protocol

    def _solver_text(self) -> str | None:
        from dlp.net.prototxt import solver_to_text

        try:
            return solver_to_text(self.form.solver())
        except DLPError:
            return None

    def is_modified(self) -> bool:
        text = self._solver_text()
        return text is not None and text != self._saved_solver_text

    def save(self) -> bool:
        """Write the form's solver to ``nets/solver.prototxt``."""
        from dlp.net.prototxt import solver_to_text, write_solver

        solver = self.form.solver()  # raises DLPError naming a bad field
        if not solver.HasField("net") and self.project.net_path.is_file():
            solver.net = str(self.project.net_path)
        write_solver(solver, self.project.solver_path)
        self._saved_solver_text = solver_to_text(self.form.solver())
        self._save_state(sources={str(k): v for k, v in self.form.source_picks().items()},
                         weights=self.form.weights())
        return True

    def autosave_files(self) -> dict[str, str]:
        text = self._solver_text()
        return {"nets/solver.prototxt": text} if text is not None else {}

    def confirm_close(self) -> bool:
        """A training still running: stop it (with a snapshot), leave it running, or cancel."""
        running = [name for name, m in self.monitors.items() if m.watching]
        if not running:
            return True
        choice = self.ask_running_choice(running)
        if choice == "stop":
            for name in running:
                self._interrupt(self.monitors[name])
        return choice != "cancel"

    def ask_running_choice(self, running: list[str]) -> str:
        """Ask what to do with running trainings: ``stop``, ``leave`` or ``cancel``."""
        box = QMessageBox(QMessageBox.Question, "Training is running",
                          f"Run {', '.join(running)} is still training.\n\n"
                          "Stop it now (a snapshot is written; Resume continues later), or "
                          "leave it running? DLP follows it again when you reopen the project.",
                          parent=self)
        stop = box.addButton("Stop training", QMessageBox.DestructiveRole)
        leave = box.addButton("Leave running", QMessageBox.AcceptRole)
        box.addButton(QMessageBox.Cancel)
        box.setDefaultButton(leave)
        box.exec_()
        clicked = box.clickedButton()
        box.deleteLater()
        return "stop" if clicked is stop else "leave" if clicked is leave else "cancel"

    def shutdown(self) -> None:
        for monitor in self.monitors.values():
            monitor.stop_polling()
        self._speed_timer.stop()
        if self._report_worker is not None:
            self._report_worker.stop_and_wait()
        self._save_state(smoothing=self.curves.smoothing,
                         log_y=self.curves.log_check.isChecked(),
                         compared=self.runs.compared_runs())

    # ------------------------------------------------------------------ runs list

    def refresh_runs(self, selected: str | None = None, compared: list[str] | None = None
                     ) -> None:
        runs = list_runs(self.project.runs_dir)
        progress = {}
        for name, monitor in self.monitors.items():
            progress[name] = (monitor.curves.last_iteration, self._best_text(monitor))
        if self.shown is not None:
            progress[self.shown.run.name] = (self.shown.curves.last_iteration,
                                             self._best_text(self.shown))
        self.runs.set_runs(runs, selected if selected is not None else self._shown_name(),
                           compared if compared is not None else self.runs.compared_runs(),
                           progress)

    def _shown_name(self) -> str | None:
        return self.shown.run.name if self.shown is not None else None

    def _on_run_selected(self, name: str) -> None:
        if name != self._shown_name():
            self.show_run(name)

    def show_run(self, name: str) -> None:
        """Show run ``name``: its curves, log, snapshots and status."""
        path = self.project.runs_dir / name
        if not path.is_dir():
            return
        monitor = self.monitors.get(name)
        if monitor is None:
            monitor = RunMonitor(Run(path), self)
            monitor.read_existing()
        if self.shown is not None:
            self._disconnect_shown(delete=self.shown is not monitor)
        self.shown = monitor
        monitor.lines.connect(self.console.append_lines)
        monitor.curves_changed.connect(self._on_curves_change)
        monitor.records.connect(self._on_records)
        self.curves.set_curves(monitor.curves)
        self.console.clear()
        self.console.append_lines(_tail(monitor.run.log_path))
        self._rate_samples = []
        self._update_best()
        self._update_snapshots()
        self._draw_overlays()
        self.runs.select_run(name)
        self._save_state(shown_run=name)
        self._update_progress()
        self._update_buttons()
        if monitor.run.status == "failed":
            self._show_failure(monitor)

    def _disconnect_shown(self, delete: bool = True) -> None:
        shown = self.shown
        if shown is None:
            return
        for signal, slot in ((shown.lines, self.console.append_lines),
                             (shown.curves_changed, self._on_curves_change),
                             (shown.records, self._on_records)):
            with contextlib.suppress(TypeError):
                signal.disconnect(slot)
        if delete and self.monitors.get(shown.run.name) is not shown:
            shown.stop_polling()
            shown.deleteLater()

    # ------------------------------------------------------------------ live updates

    def _on_curves_change(self, names: set[str]) -> None:
        self.curves.refresh(names)
        self._update_best()
        self._update_progress()

    def _on_records(self, records: list) -> None:
        from dlp.train.log import Snapshot

        if any(isinstance(r, Snapshot) for r in records):
            self._update_snapshots()

    def _best_metric(self, monitor: RunMonitor) -> tuple[str, str]:
        metric = monitor.run.best_metric or self.form.best_metric.currentText().strip()
        return metric, monitor.run.best_mode or "max"

    def _best(self, monitor: RunMonitor) -> tuple[int, float, str] | None:
        metric, mode = self._best_metric(monitor)
        if not metric:
            return None
        series = monitor.curves.series.get(f"test/{metric}")
        if series is None:
            return None
        point = best_point(series, mode)
        return None if point is None else (point[0], point[1], metric)

    def _best_text(self, monitor: RunMonitor) -> str:
        best = self._best(monitor)
        return "" if best is None else f"{best[2]} {best[1]:.4g} @ {best[0]}"

    def _update_best(self) -> None:
        self.curves.set_best(self._best(self.shown) if self.shown is not None else None)

    def _update_snapshots(self) -> None:
        if self.shown is None:
            self.runs.set_snapshots([], None)
            return
        run = self.shown.run
        snapshots = run.snapshots(self.shown.curves)
        metric, mode = self._best_metric(self.shown)
        best = run.best_snapshot(metric, mode, self.shown.curves) if snapshots else None
        starred = best is not None and metric in best.metrics  # not just "the latest"
        self.runs.set_snapshots(snapshots, best.iteration if starred else None)

    def _update_progress(self) -> None:
        monitor = self.shown
        if monitor is None:  # nothing trained yet: the form's iteration count
            self.progress.setRange(0, max(1, self.form.max_iter.value()))
            self.progress.setValue(0)
            self.speed_label.setText("")
            self.status_label.setText("No run yet: set up the solver and press Train.")
            return
        run = monitor.run
        iteration = monitor.curves.last_iteration
        self.progress.setRange(0, max(1, run.max_iter))
        self.progress.setValue(min(iteration, max(1, run.max_iter)))
        now = time.monotonic()
        text = ""
        if monitor.watching:
            self._rate_samples.append((now, iteration))
            self._rate_samples = [s for s in self._rate_samples if now - s[0] <= _RATE_WINDOW_S]
            first_time, first_iter = self._rate_samples[0]
            if now - first_time > 0.5 and iteration > first_iter:
                rate = (iteration - first_iter) / (now - first_time)
                eta = max(0.0, (run.max_iter - iteration) / rate)
                text = f"{rate:.2f} it/s, ETA {_duration(eta)}"
        self.speed_label.setText(text)
        state = "training" if monitor.watching else run.status
        self.runs.update_progress(run.name, "running" if monitor.watching else run.status,
                                  f"{iteration} / {run.max_iter}", self._best_text(monitor))
        engine = run.info.get("engine", "?")
        engine = "built-in engine" if engine == "builtin" else f"engine {engine}"
        self.status_label.setText(f"<b>{run.name}</b> — {state}; {engine}, "
                                  f"{run.info.get('device', 'cpu')}")

    # ------------------------------------------------------------------ buttons

    def _training_running(self) -> bool:
        return any(m.watching for m in self.monitors.values())

    def _update_buttons(self) -> None:
        running = self._training_running()
        shown = self.shown
        shown_running = shown is not None and shown.watching
        self.train_button.setEnabled(not running and self.form._net is not None)
        self.stop_button.setEnabled(shown_running and not shown.stop_requested)
        can_resume = (shown is not None and not running
                      and shown.run.latest_solverstate() is not None
                      and shown.run.status != "done")
        self.resume_button.setEnabled(can_resume)
        self.restart_button.setEnabled(shown is not None and not running)

    # ------------------------------------------------------------------ training

    def start_training(self) -> Run | None:
        """Save the solver, make a new run folder with net + solver, start training."""
        self.error_banner.hide()
        self.done_banner.hide()
        run_dir = None
        try:
            self.save()
            if not self._save_other_tabs():
                return None
            net = self.form.net_for_training()
            solver = self.form.solver()
            settings = self.project.settings
            run_dir = self.qt_project.new_run_dir("run")
            run = create_run(run_dir, net, solver, engine=settings.engine,
                             weights=self.form.weights(), device=self.form.device_name())
        except DLPError as exc:
            if run_dir is not None and run_dir.is_dir() and not any(run_dir.iterdir()):
                run_dir.rmdir()  # no trace of a run that never started
            self.error_banner.show_message(f"<b>Cannot start training</b>: {_html(str(exc))}")
            return None
        self._launch(run)
        return run

    def _save_other_tabs(self) -> bool:
        """Save unsaved edits of the other tabs (the Net tab's net is what trains)."""
        window = self.window()
        modified = getattr(window, "modified_modules", None)
        save_all = getattr(window, "save_all", None)
        if not callable(modified) or not callable(save_all):
            return True
        if not [name for name in modified() if name != "Train"]:
            return True
        if not save_all():
            return False
        self._on_net_change()  # the net on disk may have changed; picks are kept
        return True

    def resume_training(self) -> None:
        if self.shown is None:
            return
        run = self.shown.run
        state = run.latest_solverstate()
        if state is None:
            self.error_banner.show_message(f"<b>{run.name}</b> has no .solverstate to resume "
                                           "from.")
            return
        self._launch(run, resume_from=state)

    def restart_training(self, confirm: bool = True) -> None:
        if self.shown is None:
            return
        run = self.shown.run
        if confirm:
            answer = QMessageBox.question(
                self, "Restart run",
                f"Train {run.name} again from iteration 0? Its log and snapshots are deleted.",
                QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
            if answer != QMessageBox.Yes:
                return
        run.clear_outputs()
        self._launch(run)

    def _launch(self, run: Run, resume_from: Path | None = None) -> None:
        from dlp.gui.launch import dlp_command
        from dlp.project import caffe_binary

        self.error_banner.hide()
        self.done_banner.hide()
        device = str(run.info.get("device", "cpu"))
        try:
            if run.info.get("engine") == "caffe":
                program = str(caffe_binary(self.project.settings.caffe_tools))
                arguments = caffe_arguments(run, resume_from=resume_from, device=device)
                pid = launch(run, program, arguments, log_to_stderr=True,
                             resumed_from=str(resume_from) if resume_from else None)
            else:
                argv = dlp_command(train_arguments(run, resume_from=resume_from, device=device))
                pid = launch(run, argv[0], argv[1:],
                             resumed_from=str(resume_from) if resume_from else None)
        except DLPError as exc:
            run.update(status="failed", error=str(exc))
            self.error_banner.show_message(f"<b>Cannot start training</b>: {_html(str(exc))}")
            self.refresh_runs()
            return
        self._follow(run)
        self.console.append_lines([f"[DLP] started {run.name} (pid {pid})"
                                   + (f", resuming from {resume_from.name}" if resume_from
                                      else "")])
        self.qt_project.notify_runs_changed()

    def _follow(self, run: Run) -> RunMonitor:
        """Follow a run whose process is alive (started now or re-attached)."""
        old = self.monitors.pop(run.name, None)
        if old is not None:
            old.stop_polling()
        if self.shown is not None and self.shown.run.name == run.name:
            self._disconnect_shown()
            self.shown = None
        monitor = RunMonitor(run, self)
        monitor.finished.connect(lambda status, m=monitor: self._on_finished(m, status))
        self.monitors[run.name] = monitor
        monitor.read_existing()
        monitor.watch()
        self.show_run(run.name)
        self._speed_timer.start()
        return monitor

    def reattach_runs(self) -> list[str]:
        """Follow runs left training by an earlier session; settle those that ended."""
        attached = []
        for run in list_runs(self.project.runs_dir):
            if run.status not in ("running", "stopping"):
                continue
            if run.process_alive():
                self._follow(run)
                attached.append(run.name)
            else:
                monitor = RunMonitor(run, self)
                monitor.read_existing()
                status = monitor.final_status()
                run.update(status="done" if status == "done" else
                           ("failed" if monitor.failures else "interrupted"), pid=None)
                monitor.deleteLater()
        return attached

    def stop_training(self) -> None:
        if self.shown is not None and self.shown.watching:
            self._interrupt(self.shown)

    def _interrupt(self, monitor: RunMonitor) -> None:
        if monitor.interrupt():
            monitor.run.update(status="stopping")
            self.console.append_lines(["[DLP] stop requested: the solver snapshots, then exits"])
        self._update_buttons()

    def _on_finished(self, monitor: RunMonitor, status: str) -> None:
        run = monitor.run
        error = "; ".join(monitor.failures) if monitor.failures else None
        if status == "failed" and error is None:
            lines = run.last_stderr_lines(1)
            error = lines[-1] if lines else "the training process ended without finishing"
        run.update(status=status, pid=None, finished=time.time(), error=error)
        self.monitors.pop(run.name, None)
        if self.shown is monitor:
            self._update_snapshots()
            self._update_best()
        if not self.monitors:
            self._speed_timer.stop()
        if status == "failed":
            if self.shown is monitor:
                self._show_failure(monitor)
        elif status == "done":
            self._notify_done(monitor)
        elif status == "stopped":
            self.console.append_lines([f"[DLP] {run.name} stopped; Resume continues it."])
        self.qt_project.notify_runs_changed()  # Deploy lists the new snapshots
        self._update_progress()
        self._update_buttons()

    def _show_failure(self, monitor: RunMonitor) -> None:
        run = monitor.run
        message = "; ".join(monitor.failures) or str(run.info.get("error") or "")
        stderr = [line for line in run.last_stderr_lines(8) if line.strip()]
        details = "<br>".join(_html(line) for line in stderr[-6:])
        html = f"<b>Training of {run.name} failed</b>: {_html(message)}"
        if details:
            html += f"<br><span style='font-family: monospace; font-size: small'>{details}</span>"
        self.error_banner.show_message(html)

    def _notify_done(self, monitor: RunMonitor) -> None:
        run = monitor.run
        best = self._best(monitor)
        text = f"<b>{run.name} finished</b> at iteration {monitor.curves.last_iteration}"
        if monitor.done is not None and monitor.done.stopped_early:
            text += " (stopped early: no improvement)"
        if best is not None:
            text += f"; best {best[2]} = {best[1]:.4g} at iteration {best[0]}"
        self.done_banner.show_message(text + ".")
        self.next_button.setEnabled(run.deploy_path.is_file() and bool(run.snapshots()))
        window = self.window()
        if isinstance(window, QMainWindow) and window is not self:
            window.statusBar().showMessage(f"Training {run.name} finished.", 10000)
        QApplication.alert(self)

    # ------------------------------------------------------------------ deploy

    def deploy_snapshot(self, iteration: int) -> bool:
        if self.shown is None:
            return False
        run = self.shown.run
        snapshot = next((s for s in run.snapshots(self.shown.curves)
                         if s.iteration == iteration), None)
        if snapshot is None or not run.deploy_path.is_file():
            why = run.info.get("deploy_error") or "the snapshot or deploy net is missing"
            self.error_banner.show_message(f"<b>Cannot send to Deploy</b>: {_html(str(why))}")
            return False
        self.qt_project.request_deploy(str(run.deploy_path), str(snapshot.caffemodel))
        return True

    def deploy_best(self) -> bool:
        if self.shown is None:
            return False
        metric, mode = self._best_metric(self.shown)
        best = self.shown.run.best_snapshot(metric, mode, self.shown.curves)
        return best is not None and self.deploy_snapshot(best.iteration)

    # ------------------------------------------------------------------ weights report

    def _on_weights_change(self, weights: list[str]) -> None:
        self._save_state(weights=weights)
        if weights:
            self.check_weights()

    def check_weights(self) -> Worker | None:
        """Compute the fine-tuning report in a worker; shown under the weights field."""
        weights = self.form.weights()
        if not weights:
            self.form.show_weight_report("Training starts from the net's fillers.")
            return None
        if self._report_worker is not None:
            return self._report_worker
        try:
            net = self.form.net_for_training()
        except DLPError as exc:
            self.form.show_weight_report(_html(str(exc)), ok=False)
            return None
        self.form.show_weight_report("checking the weights…")
        worker = Worker(_weight_report_job, net, weights)
        worker.succeeded.connect(self._on_weight_report)
        worker.failed.connect(lambda message, _d: self.form.show_weight_report(_html(message),
                                                                               ok=False))
        worker.done.connect(self._on_report_done)
        self._report_worker = worker
        worker.start()
        return worker

    def _on_weight_report(self, report: Any) -> None:
        lines = [f"<b>{len(report.matched)}</b> layer(s) copied: "
                 f"{_html(', '.join(report.matched)) or '—'}"]
        if report.missing:
            lines.append(f"<b>{len(report.missing)}</b> not in the weights (trained from "
                         f"their fillers): {_html(', '.join(report.missing))}")
        if report.mismatched:
            lines.append(f"<b>{len(report.mismatched)}</b> blob(s) with another shape (not "
                         "copied): " + _html("; ".join(
                             f"{layer}[{i}] net {_shape(e)} vs file {_shape(g)}"
                             for layer, i, e, g in report.mismatched)))
        if report.unused:
            lines.append(f"unused in the weights: {_html(', '.join(report.unused))}")
        self.form.show_weight_report("<br>".join(lines), ok=bool(report.matched))
        self.last_weight_report = report

    def _on_report_done(self) -> None:
        worker, self._report_worker = self._report_worker, None
        if worker is not None:
            worker.wait()
            worker.deleteLater()

    # ------------------------------------------------------------------ compare and export

    def _overlay_curves(self, name: str) -> LiveCurves | None:
        run = Run(self.project.runs_dir / name)
        try:
            stamp = run.log_path.stat().st_mtime
        except FileNotFoundError:
            return None
        cached = self._overlay_cache.get(name)
        if cached is None or cached[0] != stamp:
            cached = (stamp, run.read_curves())
            self._overlay_cache[name] = cached
        return cached[1]

    def _on_compare_change(self, names: list[str]) -> None:
        self._save_state(compared=names)
        self._draw_overlays()

    def _draw_overlays(self) -> None:
        overlays = {}
        for name in self.runs.compared_runs():
            if name == self._shown_name():
                continue
            curves = self._overlay_curves(name)
            if curves is not None:
                overlays[name] = curves
        self.curves.set_overlays(overlays)

    def export_csv(self, path: str | Path) -> Path:
        """The shown run's curves (and the compared runs', prefixed ``RUN:``) as CSV."""
        if self.shown is None:
            raise DLPError("no run to export")
        table = dict(self.shown.curves.as_dict())
        for name in self.runs.compared_runs():
            if name == self._shown_name():
                continue
            curves = self._overlay_curves(name)
            if curves is not None:
                table.update({f"{name}:{k}": v for k, v in curves.as_dict().items()})
        return write_curves_csv(table, path)

    def export_png(self, path: str | Path) -> Path:
        return self.curves.export_png(path)

    def _choose_csv(self) -> None:
        self._choose_export("CSV", "Curves (*.csv)", ".csv", self.export_csv)

    def _choose_png(self) -> None:
        self._choose_export("PNG", "PNG image (*.png)", ".png", self.export_png)

    def _choose_export(self, what: str, filters: str, suffix: str, export: Any) -> None:
        name = self._shown_name() or "curves"
        path, _ = QFileDialog.getSaveFileName(self, f"Export curves as {what}",
                                              str(self.project.results_dir / f"{name}{suffix}"),
                                              filters)
        if not path:
            return
        try:
            export(path)
        except DLPError as exc:
            QMessageBox.warning(self, f"Export {what}", str(exc))

    def confirm_delete_run(self, name: str, confirm: bool = True) -> bool:
        run = Run(self.project.runs_dir / name)
        if confirm:
            answer = QMessageBox.question(
                self, "Delete run", f"Delete {name} with its log and snapshots?",
                QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
            if answer != QMessageBox.Yes:
                return False
        try:
            delete_run(run)
        except (DLPError, OSError) as exc:
            QMessageBox.warning(self, "Delete run", str(exc))
            return False
        if self._shown_name() == name:
            self._disconnect_shown()
            self.shown = None
            self.curves.set_curves(None)
            self.console.clear()
            self.runs.set_snapshots([], None)
        self._overlay_cache.pop(name, None)
        self.qt_project.notify_runs_changed()
        self.refresh_runs()
        self._update_progress()
        self._update_buttons()
        return True


def adopt_orphan_widgets(owner: QWidget, before: set[int]) -> None:
    """Parent the windowless widgets pyqtgraph creates without a parent (its context
    menus) to ``owner``, so they are deleted with it instead of outliving the tab."""
    for widget in QApplication.topLevelWidgets():
        if id(widget) in before or widget is owner or widget.parent() is not None:
            continue
        widget.setParent(owner, widget.windowFlags())


def _tail(path: Path, count: int = 5000) -> list[str]:
    if not path.is_file():
        return []
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = handle.read().splitlines()
    return lines[-count:]


def _duration(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _html(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _shape(shape: Any) -> str:
    return "none" if shape is None else " x ".join(str(n) for n in shape)
