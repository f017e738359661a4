"""The Deploy tab: configure a model, switch it on, drop images, read the segmentation.

Thin over :mod:`dlp.deploy`: the same :func:`~dlp.deploy.batch.run_batch` and
:class:`~dlp.deploy.session.InferenceSession` the CLI uses run here in
:class:`~dlp.gui.workers.Worker` threads, so the window stays responsive.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QCloseEvent, QColor
from PyQt5.QtWidgets import (
    QLabel,
    QListWidget,
    QListWidgetItem,
    QScrollArea,
    QSplitter,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from dlp.deploy.config import DeployConfig, run_model_files
from dlp.errors import DLPError
from dlp.gui.deploy.qt_batch import QtBatchPanel
from dlp.gui.deploy.qt_drop_zone import QtDropZone
from dlp.gui.deploy.qt_evaluate import QtEvaluateView
from dlp.gui.deploy.qt_measurements import QtMeasurementsTable
from dlp.gui.deploy.qt_model_config import QtModelConfig
from dlp.gui.deploy.qt_viewer import QtSegmentationViewer
from dlp.gui.workers import Worker

CONFIG_FILE = "config.json"


def _segment_job(session, paths, out_dir, truth_dir, on_predicted, on_result,
                 group_series=True, progress=None, cancel=None):
    """Worker body for dropped paths: collect inputs, then the batch runner (kept results)."""
    from dlp.deploy.batch import run_batch
    from dlp.deploy.inputs import collect_inputs

    items = collect_inputs(paths, group_series=group_series)
    if not items:
        raise DLPError("no images found in what was dropped")
    return run_batch(session, items, out_dir or None, ground_truth=truth_dir or None,
                     progress=progress, cancel=cancel, on_result=on_result,
                     keep_predictions=True, on_predicted=on_predicted)


def _evaluate_job(session, images, truth, out_dir, progress=None, cancel=None):
    from dlp.deploy.batch import run_batch
    from dlp.deploy.inputs import collect_inputs

    # Ground truth is per image file (a mask or contour each), so series are not grouped.
    items = collect_inputs([images], group_series=False)
    if not items:
        raise DLPError(f"{images}: no images found")
    return run_batch(session, items, out_dir, ground_truth=truth, progress=progress,
                     cancel=cancel)


class QtDeployModule(QWidget):
    """The Deploy tab.  ``qt_project`` is the shared :class:`~dlp.gui.qt_project.QtProject`."""

    session_changed = pyqtSignal()
    results_shown = pyqtSignal()         # a dropped input's result is on screen
    drop_finished = pyqtSignal(object)   # BatchReport of the last drop
    _drop_predicted = pyqtSignal(object)  # ItemResult with its prediction, from the worker
    _drop_result = pyqtSignal(object)     # the same ItemResult once its files are written

    def __init__(self, qt_project: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.qt_project = qt_project
        self.session: Any = None
        self._loaded_config: DeployConfig | None = None
        self._pending_paths: list[str] = []
        self._workers: dict[str, Worker] = {}
        self.results: list[Any] = []
        self.current: Any = None
        self.last_drop_report: Any = None
        self.last_evaluation: Any = None
        self._drop_shown = False

        self.config_form = QtModelConfig()
        self.drop_zone = QtDropZone()
        self.inputs_list = QListWidget()
        self.inputs_list.setToolTip("segmented inputs; click one to view it")
        self.message = QLabel()
        self.message.setWordWrap(True)
        self.message.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.viewer = QtSegmentationViewer()
        self.measurements = QtMeasurementsTable()
        self.evaluate_view = QtEvaluateView()
        self.batch_panel = QtBatchPanel()
        self.tabs = QTabWidget()
        self.tabs.addTab(self.measurements, "Measurements")
        self.tabs.addTab(self.evaluate_view, "Evaluate")
        self.tabs.addTab(self.batch_panel, "Batch")

        left = QWidget()
        left_layout = QVBoxLayout(left)
        left_layout.addWidget(self.config_form)
        left_layout.addWidget(self.drop_zone)
        left_layout.addWidget(QLabel("Inputs"))
        left_layout.addWidget(self.inputs_list, 1)
        left_layout.addWidget(self.message)
        scroll = QScrollArea()
        scroll.setWidget(left)
        scroll.setWidgetResizable(True)
        scroll.setMinimumWidth(420)
        right = QSplitter(Qt.Vertical)
        right.addWidget(self.viewer)
        right.addWidget(self.tabs)
        right.setStretchFactor(0, 3)
        right.setStretchFactor(1, 2)
        right.setSizes([520, 340])
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([430, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        self.config_form.config_changed.connect(self._on_config_change)
        self.config_form.engine_toggled.connect(self._on_engine_toggle)
        self.config_form.snapshot_chosen.connect(self._on_snapshot_chosen)
        self.drop_zone.paths_dropped.connect(self.segment_paths)
        self.inputs_list.itemClicked.connect(self._on_input_click)
        self._drop_predicted.connect(self._on_drop_predicted)
        self._drop_result.connect(self._on_drop_result)
        self.measurements.slice_requested.connect(self.viewer.set_slice)
        self.viewer.slice_changed.connect(self._on_slice_change)
        self.evaluate_view.run_requested.connect(self.run_evaluation)
        self.evaluate_view.cancel_requested.connect(lambda: self._cancel("evaluate"))
        self.evaluate_view.view_requested.connect(self._on_evaluation_view)
        self.batch_panel.start_requested.connect(self.run_batch)
        self.batch_panel.cancel_requested.connect(lambda: self._cancel("batch"))
        self.batch_panel.view_requested.connect(self._on_batch_view)
        qt_project.project_changed.connect(self._on_project_change)
        qt_project.runs_changed.connect(self._refresh_runs)
        qt_project.deploy_requested.connect(self._on_deploy_requested)
        self._on_project_change()

    # ------------------------------------------------------------------ config
    @property
    def config_path(self) -> Path:
        return Path(self.qt_project.deploy_dir) / CONFIG_FILE

    def _on_project_change(self) -> None:
        self.unload()
        try:
            config = DeployConfig.load(self.config_path)
        except DLPError as exc:
            config = DeployConfig()
            self.message.setText(str(exc))
        if not config.out_dir:
            config.out_dir = str(Path(self.qt_project.results_dir) / "deploy")
        label_file = Path(self.qt_project.deploy_dir) / "label.txt"
        if not config.labels and label_file.is_file():
            config.labels = str(label_file)
        self.config_form.set_config(config)
        self._refresh_runs()
        self._update_readiness()

    def _refresh_runs(self) -> None:
        runs = []
        try:
            entries = self.qt_project.runs()
        except DLPError:
            entries = []
        for run in entries:
            weights = run_model_files(run.path).get("weights")
            if weights is not None:
                runs.append((f"{run.name}: {weights.name}", str(run.path)))
        self.config_form.set_runs(runs)

    def config(self) -> DeployConfig:
        return self.config_form.config()

    def set_config(self, config: DeployConfig) -> None:
        """Fill the form (as a user would) and save it; the engine stays off until switched on."""
        self.config_form.set_config(config)
        self._on_config_change()

    def _on_config_change(self) -> None:
        config = self.config()
        try:
            config.save(self.config_path)
        except OSError as exc:
            self.message.setText(f"cannot save {self.config_path}: {exc}")
        if self.session is not None and self._loaded_config is not None:
            model_fields = ("deploy_net", "derive_from_train", "train_net", "weights", "labels",
                            "manifest", "device")
            if any(getattr(config, f) != getattr(self._loaded_config, f) for f in model_fields):
                self.unload()
        self._update_readiness()

    def _update_readiness(self) -> None:
        problems = self.config().problems()
        self.config_form.show_problems(problems)
        if self.session is not None:
            return
        if "load" in self._workers:
            return
        if problems:
            self.config_form.set_status("off", next(iter(problems.values())))
        else:
            self.config_form.set_status("ready", "Every field is valid: switch the engine on.")

    def _on_snapshot_chosen(self, folder: str) -> None:
        found = run_model_files(folder)
        config = self.config()
        if "deploy_net" in found:
            config.deploy_net = str(found["deploy_net"])
            config.derive_from_train = False
        elif "train_net" in found:
            config.train_net = str(found["train_net"])
            config.derive_from_train = True
        if "weights" in found:
            config.weights = str(found["weights"])
        if "manifest" in found:
            config.manifest = str(found["manifest"])
        self.set_config(config)

    def _on_deploy_requested(self, deploy_net: str, weights: str) -> None:
        config = self.config()
        config.deploy_net, config.weights, config.derive_from_train = deploy_net, weights, False
        run_dir = Path(weights).parent
        for folder in (run_dir, run_dir.parent):
            found = run_model_files(folder)
            if "manifest" in found and not config.manifest:
                config.manifest = str(found["manifest"])
        self.set_config(config)
        self.load_model()

    # ------------------------------------------------------------------ engine
    def _on_engine_toggle(self, on: bool) -> None:
        if on:
            self.load_model()
        else:
            self.unload()
            self._update_readiness()

    def load_model(self) -> None:
        """Load the configured model once, in the background; the indicator follows."""
        config = self.config()
        problems = config.problems()
        if problems:
            self.config_form.set_status("error", next(iter(problems.values())))
            return
        if "load" in self._workers:
            return
        self.unload()
        self.config_form.set_status("loading", "Loading the model…")
        worker = Worker(config.load_session, pass_progress=False, pass_cancel=False)
        worker.succeeded.connect(lambda session: self._on_loaded(session, config))
        worker.failed.connect(self._on_load_failed)
        self._start("load", worker)

    def _on_loaded(self, session: Any, config: DeployConfig) -> None:
        self._workers.pop("load", None)  # loading is over even before the thread ends
        self.session = session
        self._loaded_config = config
        names = ", ".join(session.labels.names)
        device = session.device
        self.config_form.set_status(
            "on", f"Engine on: {session.num_classes} classes ({names}) on {device}."
        )
        self.config_form.set_policy(session.size_policy())
        self.session_changed.emit()
        if self._pending_paths:
            paths, self._pending_paths = self._pending_paths, []
            self.segment_paths(paths)

    def _on_load_failed(self, message: str, _details: str) -> None:
        self._workers.pop("load", None)
        self.session = None
        self._pending_paths = []
        self.config_form.set_status("error", message)

    def unload(self) -> None:
        if self.session is not None:
            self.session.close()
        self.session = None
        self._loaded_config = None
        self.config_form.set_policy("")
        self.session_changed.emit()

    # ------------------------------------------------------------------ drops
    def segment_paths(self, paths: list[str]) -> None:
        """Segment dropped/opened files and folders (loading the model first if needed)."""
        if not paths:
            return
        if self.session is None:
            problems = self.config().problems()
            if problems:
                self.message.setText("Cannot segment yet: " + next(iter(problems.values())))
                return
            self._pending_paths = list(paths)
            self.load_model()
            return
        if "drop" in self._workers:
            self.message.setText("Still segmenting the previous drop; use Batch for big folders.")
            return
        config = self.config()
        self._drop_shown = False
        self.message.setText("Segmenting…")
        worker = Worker(_segment_job, self.session, list(paths), config.out_dir,
                        config.ground_truth, self._drop_predicted.emit, self._drop_result.emit)
        worker.succeeded.connect(self._on_drop_done)
        worker.failed.connect(lambda msg, _d: self.message.setText(msg))
        worker.progressed.connect(
            lambda done, total, msg: self.message.setText(f"Segmenting {done}/{total}: {msg}")
        )
        self._start("drop", worker)

    def _on_drop_predicted(self, result: Any) -> None:
        """Show a prediction at once; its files are still being written."""
        self._add_input(result, f"✓ {result.item.name}")
        if not self._drop_shown:  # the first result of a drop; the rest wait in the list
            self._drop_shown = True
            self.show_result(result)

    def _on_drop_result(self, result: Any) -> None:
        if not result.ok:
            item = self._add_input(result, f"✗ {result.item.name}: {result.error}")
            item.setForeground(QColor("#c62828"))
            item.setToolTip(result.error)
            return
        row = next((i for i, r in enumerate(self.results) if r is result), None)
        if row is None:
            return
        tips = [str(result.item.path), *result.prediction.notes] if result.prediction else []
        if result.files is not None:
            tips += [f"results: {result.files.folder}", *result.files.warnings]
        self.inputs_list.item(row).setToolTip("\n".join(tips))
        if result is self.current and result.files is not None and result.files.warnings:
            self.message.setText("\n".join(result.files.warnings))

    def _add_input(self, result: Any, text: str) -> QListWidgetItem:
        self.results.append(result)
        item = QListWidgetItem(text)
        item.setData(Qt.UserRole, len(self.results) - 1)
        self.inputs_list.addItem(item)
        return item

    def _on_drop_done(self, report: Any) -> None:
        self.last_drop_report = report
        failed = report.failures
        text = f"{len(report.succeeded)} of {report.total} segmented"
        if report.out_dir is not None:
            text += f"; results in {report.out_dir}"
        if failed:
            text += "\nFailed: " + "; ".join(f"{r.item.name}: {r.error}" for r in failed)
        self.message.setText(text)
        self.drop_finished.emit(report)

    def _on_input_click(self, item: QListWidgetItem) -> None:
        result = self.results[int(item.data(Qt.UserRole))]
        if result.ok:
            self.show_result(result)
        else:
            self.message.setText(f"{result.item.name}: {result.error}")

    def show_result(self, result: Any) -> None:
        """Put one segmented input in the viewer and its measurements in the table."""
        self.current = result
        prediction = result.prediction
        if prediction is None:
            return
        volume = prediction.volume
        self.viewer.set_result(volume.array, prediction.labels, prediction.probabilities,
                               self.session.labels if self.session else _labels_of(result),
                               volume.window)
        spacing_known = bool((volume.meta or {}).get("spacing_known", True))
        self.measurements.set_rows(result.rows, spacing_known)
        notes = list(prediction.notes)
        if result.truth_path is not None:
            notes.append(f"ground truth: {result.truth_path.name}")
        if result.files is not None:
            notes += result.files.warnings
        if notes:
            self.message.setText("\n".join(notes))
        self.results_shown.emit()

    def _on_slice_change(self, index: int) -> None:
        for row, data in enumerate(self.measurements.rows()):
            if data.get("slice") == index + 1:
                self.measurements.selectRow(row)
                break

    # ------------------------------------------------------------------ evaluate / batch
    def run_evaluation(self, images: str, truth: str) -> None:
        if self.session is None:
            self.evaluate_view.summary.setText("Switch the engine on first.")
            return
        if not images or not Path(images).is_dir():
            self.evaluate_view.summary.setText("Choose the folder of images to evaluate.")
            return
        if not truth or not Path(truth).is_dir():
            self.evaluate_view.summary.setText("Choose the ground-truth folder.")
            return
        out = self.config().out_dir
        out_dir = str(Path(out) / "evaluation") if out else None
        worker = Worker(_evaluate_job, self.session, images, truth, out_dir)
        worker.progressed.connect(self.evaluate_view.set_progress)
        worker.succeeded.connect(self._on_evaluation_done)
        worker.failed.connect(lambda msg, _d: self.evaluate_view.summary.setText(msg))
        worker.done.connect(lambda: self.evaluate_view.set_running(False))
        self.evaluate_view.set_running(True)
        self._start("evaluate", worker)

    def _on_evaluation_done(self, report: Any) -> None:
        self.last_evaluation = report
        if report.evaluation is None or not report.evaluation.rows:
            reasons = "; ".join(f"{r.item.name}: {r.error}" for r in report.failures[:3])
            self.evaluate_view.summary.setText(
                "No image had ground truth to compare with" + (f" ({reasons})" if reasons else "")
            )
            return
        self.evaluate_view.show_report(report.evaluation)

    def _on_evaluation_view(self, scores: Any) -> None:
        if scores is not None and self.session is not None:
            self.segment_paths([str(scores.path)])

    def run_batch(self, source: str, target: str) -> None:
        if self.session is None:
            self.batch_panel.status.setText("Switch the engine on first.")
            return
        if not source or not Path(source).is_dir():
            self.batch_panel.status.setText("Choose the folder of studies.")
            return
        target = target or self.config().out_dir
        if not target:
            self.batch_panel.status.setText("Choose a results folder.")
            return
        self.batch_panel.target.set_text(target)
        # Unlike a drop, the batch keeps no predictions: hundreds of studies would fill memory.
        worker = Worker(_batch_job, self.session, [source], target,
                        self.config().ground_truth, self.batch_panel.result_arrived.emit)
        worker.progressed.connect(self.batch_panel.set_progress)
        worker.succeeded.connect(self._on_batch_done)
        worker.failed.connect(lambda msg, _d: self.batch_panel.finish(msg))
        worker.cancelled.connect(lambda: self.batch_panel.finish("Cancelled."))
        self.batch_panel.set_running(True)
        self._start("batch", worker)

    def _on_batch_done(self, report: Any) -> None:
        text = f"{len(report.succeeded)} of {report.total} done, {len(report.failures)} failed"
        if report.cancelled:
            text = "Cancelled: " + text
        self.batch_panel.finish(f"{text}; results in {report.out_dir}")

    def _on_batch_view(self, result: Any) -> None:
        self.segment_paths([str(result.item.path)])

    # ------------------------------------------------------------------ workers
    def _start(self, key: str, worker: Worker) -> None:
        self._workers[key] = worker
        worker.done.connect(lambda: self._on_worker_done(key, worker))
        worker.start()

    def _on_worker_done(self, key: str, worker: Worker) -> None:
        if self._workers.get(key) is worker:
            del self._workers[key]
        worker.wait()
        worker.deleteLater()
        if key == "load":
            self._update_readiness()

    def _cancel(self, key: str) -> None:
        worker = self._workers.get(key)
        if worker is not None:
            worker.cancel()

    def is_busy(self) -> bool:
        return bool(self._workers)

    def shutdown(self) -> None:
        """Stop background work and free the model (the window is closing)."""
        for worker in list(self._workers.values()):
            worker.stop_and_wait()
        self._workers.clear()
        self.unload()

    def closeEvent(self, event: QCloseEvent) -> None:
        self.shutdown()
        super().closeEvent(event)


def _batch_job(session, paths, out_dir, truth_dir, on_result, progress=None, cancel=None):
    from dlp.deploy.batch import run_batch
    from dlp.deploy.inputs import collect_inputs

    items = collect_inputs(paths)
    if not items:
        raise DLPError(f"{paths[0]}: no images found")
    return run_batch(session, items, out_dir, ground_truth=truth_dir or None,
                     progress=progress, cancel=cancel, on_result=on_result)


def _labels_of(result: Any):
    from dlp.deploy.labels import LabelMap

    return LabelMap.default(int(result.prediction.probabilities.shape[1]))
