"""The Deploy tab: configure a model, switch it on, drop images, read the segmentation.

Thin over :mod:`dlp.deploy`: the same :func:`~dlp.deploy.batch.run_batch` and
:class:`~dlp.deploy.session.InferenceSession` the CLI uses run here in
:class:`~dlp.gui.workers.Worker` threads, so the window stays responsive.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import Any

from PyQt5.QtCore import Qt, QTimer, pyqtSignal
from PyQt5.QtGui import (
    QCloseEvent,
    QColor,
    QDragEnterEvent,
    QDragLeaveEvent,
    QDropEvent,
    QShowEvent,
)
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

from dlp.deploy.config import (
    DeployConfig,
    fill_project_defaults,
    run_model_files,
    snapshot_title,
)
from dlp.deploy.early_read import EarlyRead
from dlp.errors import DLPError
from dlp.gui.deploy.qt_batch import QtBatchPanel
from dlp.gui.deploy.qt_drop_zone import QtDropZone, local_paths
from dlp.gui.deploy.qt_evaluate import QtEvaluateView
from dlp.gui.deploy.qt_measurements import QtMeasurementsTable
from dlp.gui.deploy.qt_model_config import QtModelConfig
from dlp.gui.deploy.qt_viewer import QtSegmentationViewer
from dlp.gui.workers import Worker
from dlp.memory import release_free_memory

CONFIG_FILE = "config.json"
#: idle time after a drop before its memory is handed back to the system
MEMORY_RELEASE_MS = 20_000


class FirstShownGate:
    """Lets the worker write the first result's files only once the GUI has drawn it.

    Exporting (PNG compression, building a DICOM SEG) holds the GIL in bursts; running it
    while the GUI thread draws the overlay would delay exactly the moment the user waits
    for.  The worker waits at most ``timeout`` seconds; :meth:`open` is also called on
    cancel and shutdown, so nothing can wait on a GUI that is gone.
    """

    def __init__(self, timeout: float = 5.0) -> None:
        self._event = threading.Event()
        self._timeout = timeout
        self._first = True

    def wrap(self, emit: Any) -> Any:
        def on_predicted(result: Any) -> None:
            emit(result)
            if self._first:
                self._first = False
                self._event.wait(self._timeout)

        return on_predicted

    def open(self) -> None:
        self._event.set()


def _segment_job(session, paths, out_dir, truth_dir, on_predicted, on_result, on_loaded=None,
                 on_measured=None, group_series=True, read_input=None, progress=None,
                 cancel=None):
    """Worker body for dropped paths: collect inputs, then the batch runner (kept results)."""
    from dlp.deploy.batch import run_batch
    from dlp.deploy.inputs import collect_inputs, load_input

    items = collect_inputs(paths, group_series=group_series)
    if not items:
        raise DLPError("no images found in what was dropped")
    # One input's overlay is its progress: a progress event would only wake the GUI
    # thread while the net runs, taking a core from it.
    return run_batch(session, items, out_dir or None, ground_truth=truth_dir or None,
                     progress=progress if len(items) > 1 else None, cancel=cancel,
                     on_result=on_result,
                     keep_predictions=True, on_predicted=on_predicted, on_loaded=on_loaded,
                     on_measured=on_measured, release_memory=False,
                     read_input=read_input or load_input)


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
    _drop_loaded = pyqtSignal(object, object)  # InputItem, ImageVolume: read, not yet segmented
    _drop_measured = pyqtSignal(object)   # the ItemResult with its measurements added

    def __init__(self, qt_project: Any, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.qt_project = qt_project
        self.session: Any = None
        self._loaded_config: DeployConfig | None = None
        self._pending_paths: list[str] = []
        self._queued_drops: list[list[str]] = []  # dropped while a drop was still running
        self._workers: dict[str, Worker] = {}
        # Workers whose job is over but whose thread has not ended yet: the reference
        # keeps Python from deleting a running QThread (Qt aborts the process then).
        self._retiring: list[Worker] = []
        self.results: list[Any] = []
        self.current: Any = None
        self.last_drop_report: Any = None
        self.last_evaluation: Any = None
        self._drop_shown = False
        self._drop_image_shown = False
        self._weights_hint: str | None = None  # why no weights could be found in the project
        self._shown_gate = FirstShownGate()
        self._first_overlay: tuple[Any, FirstShownGate] | None = None  # shown, not listed
        self._segmenting_note = QTimer(self)
        self._segmenting_note.setSingleShot(True)
        self._segmenting_note.setInterval(300)
        self._segmenting_note.timeout.connect(self._say_segmenting)
        self._early_read = EarlyRead()  # a hovering drag's files, read before the drop
        # A drag passing from the tab onto the drop zone leaves one to enter the other:
        # what it read is forgotten only if no drag comes back within a second.
        self._early_read_expiry = QTimer(self)
        self._early_read_expiry.setSingleShot(True)
        self._early_read_expiry.setInterval(1000)
        self._early_read_expiry.timeout.connect(self._early_read.discard)
        # Drops keep the memory of their forward passes for the next drop (faulting
        # it in again costs a 256x256 slice ~15 ms here); a pause hands it back.
        self._memory_release = QTimer(self)
        self._memory_release.setSingleShot(True)
        self._memory_release.setInterval(MEMORY_RELEASE_MS)
        self._memory_release.timeout.connect(self._release_memory)

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
        # Evaluate and Batch get the full height: their tables list many images.
        segmentation = QSplitter(Qt.Vertical)
        segmentation.addWidget(self.viewer)
        segmentation.addWidget(self.measurements)
        segmentation.setStretchFactor(0, 4)
        segmentation.setStretchFactor(1, 1)
        segmentation.setSizes([560, 150])
        segmentation.setChildrenCollapsible(False)
        self.tabs = QTabWidget()
        self.tabs.addTab(segmentation, "Segmentation")
        self.tabs.addTab(self.evaluate_view, "Evaluate")
        self.tabs.addTab(self.batch_panel, "Batch")
        self.tabs.setTabToolTip(0, "the dropped image with its segmentation and measurements")
        self.tabs.setTabToolTip(1, "score the model on a folder of images with ground truth")
        self.tabs.setTabToolTip(2, "segment a whole folder of studies in the background")

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
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(420)
        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(self.tabs)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([430, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

        self.setAcceptDrops(True)
        self.config_form.config_changed.connect(self._on_config_change)
        self.config_form.engine_toggled.connect(self._on_engine_toggle)
        self.config_form.snapshot_chosen.connect(self._on_snapshot_chosen)
        self.drop_zone.paths_dropped.connect(self.segment_paths)
        self.drop_zone.paths_entered.connect(self._on_drag_entered)
        self.drop_zone.drag_left.connect(self._early_read_expiry.start)
        self.inputs_list.itemClicked.connect(self._on_input_click)
        self._drop_predicted.connect(self._on_drop_predicted)
        self._drop_result.connect(self._on_drop_result)
        self._drop_loaded.connect(self._on_drop_loaded)
        self._drop_measured.connect(self._on_drop_measured)
        self.measurements.slice_requested.connect(self.viewer.set_slice)
        self.viewer.slice_changed.connect(self._on_slice_change)
        self.evaluate_view.run_requested.connect(self.run_evaluation)
        self.evaluate_view.cancel_requested.connect(self._on_evaluate_cancel)
        self.evaluate_view.view_requested.connect(self._on_evaluation_view)
        self.batch_panel.start_requested.connect(self.run_batch)
        self.batch_panel.cancel_requested.connect(self._on_batch_cancel)
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

    def _run_dirs(self) -> list[Path]:
        try:
            return [run.path for run in self.qt_project.runs()]
        except DLPError:
            return []

    def _refresh_runs(self) -> None:
        """List the runs' snapshots and fill what the user left empty from the newest run."""
        runs = []
        run_dirs = self._run_dirs()
        for folder in run_dirs:
            weights = run_model_files(folder).get("weights")
            if weights is not None:
                runs.append((f"{snapshot_title(weights)} of {folder.name}", str(folder)))
        self.config_form.set_runs(runs)
        config = self.config()
        filled, self._weights_hint = fill_project_defaults(config, self.qt_project.net_path,
                                                           run_dirs)
        if filled != config:
            self.set_config(filled)  # saves it and updates the readiness
        else:
            self._update_readiness()
        self.config_form.select_run(self.config().weights)

    def showEvent(self, event: QShowEvent) -> None:
        # A run may have written its first snapshot while another tab was shown.
        if self.session is None and "load" not in self._workers and (
                not self.config().weights or self._weights_hint):
            self._refresh_runs()
        super().showEvent(event)

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
        if "weights" in problems and self._weights_hint and not self.config().weights:
            problems["weights"] = self._weights_hint
        self.config_form.show_problems(problems)
        if self.session is not None:
            return
        if "load" in self._workers:
            return
        if problems:
            self.config_form.set_status("off", next(iter(problems.values())))
        else:
            self.config_form.set_status("ready", "Ready: drop images (the model loads on the "
                                                 "first drop) or switch the engine on.")

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
        worker.config = config
        worker.succeeded.connect(self._on_loaded)
        worker.failed.connect(self._on_load_failed)
        self._start("load", worker)

    def _on_loaded(self, session: Any) -> None:
        worker = self._retire("load")  # loading is over even before the thread ends
        config = worker.config if worker is not None else self.config()
        self.session = session
        self._loaded_config = config
        names = ", ".join(session.labels.names)
        device = session.device
        self.config_form.set_status(
            "on", f"Engine on: {session.num_classes} classes ({names}) on {device}."
        )
        self.config_form.set_policy(session.size_policy())
        self.config_form.device.list_gpus()  # torch is loaded now: listing GPUs is cheap
        self.session_changed.emit()
        if self._pending_paths:
            paths, self._pending_paths = self._pending_paths, []
            self.segment_paths(paths)

    def _on_load_failed(self, message: str, _details: str) -> None:
        self._retire("load")
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
            # The previous drop is still being segmented or written: this one follows it.
            self._queued_drops.append(list(paths))
            self.message.setText("Queued: segmented when the previous drop is done "
                                 "(Batch suits whole folders).")
            return
        config = self.config()
        self._drop_shown = False
        self._drop_image_shown = False
        self._shown_gate.open()  # a gate left by an earlier drop never blocks anything
        self._shown_gate = FirstShownGate()
        worker = Worker(_segment_job, self.session, list(paths), config.out_dir,
                        config.ground_truth, self._shown_gate.wrap(self._drop_predicted.emit),
                        self._drop_result.emit, self._emit_loaded_volume,
                        self._drop_measured.emit, read_input=self._early_read.take())
        worker.succeeded.connect(self._on_drop_done)
        worker.failed.connect(self._on_drop_failed)
        worker.progressed.connect(self._on_drop_progress)
        self._start("drop", worker)
        # Said only if the result takes long enough to wait for: relaying out the message
        # while one slice is segmented would delay its overlay.
        self._segmenting_note.start()

    def _say_segmenting(self) -> None:
        if "drop" in self._workers and not self._drop_shown and not self._drop_image_shown:
            self.message.setText("Segmenting…")

    def _on_drop_failed(self, message: str, _details: str) -> None:
        self._segmenting_note.stop()
        self.message.setText(message)

    def _on_drop_progress(self, done: int, total: int, text: str) -> None:
        # One input: its overlay is the progress (relaying out the label costs latency).
        if total > 1:
            self.message.setText(f"Segmenting {done}/{total}: {text}")

    def _emit_loaded_volume(self, item: Any, volume: Any) -> None:
        """In the worker: hand a read volume of several slices to the GUI thread.

        One slice is segmented in tens of milliseconds; drawing it meanwhile (or even
        waking the GUI thread) would only take a core from the net on a small machine.
        """
        if volume.array.shape[0] >= 2:
            self._drop_loaded.emit(item, volume)

    def _on_drop_loaded(self, item: Any, volume: Any) -> None:
        """Draw the first dropped volume while the net segments it (the overlay follows)."""
        if self._drop_shown or self._drop_image_shown:
            return
        self._drop_image_shown = True
        labels = self.session.labels if self.session is not None else self.viewer.label_map
        self.viewer.set_result(volume.array, None, None, labels, volume.window,
                               _file_windows(volume))
        self.message.setText(f"Segmenting {item.name}…")

    def _on_drop_predicted(self, result: Any) -> None:
        """Show a prediction at once; its files are still being written."""
        if self._drop_shown:  # the first result of a drop is shown; the rest wait in the list
            self._add_input(result, f"✓ {result.item.name}")
            return
        self._drop_shown = True
        self.show_result(result, measurements=False)
        # The list entry, the measurements and the files follow once the frame with the
        # overlay is done (the worker waits at the gate until then).  A viewer that is
        # not visible is never painted: the longer timer lets them follow anyway.
        # (Bound methods only: Qt drops their timers if this widget is destroyed.)
        self._first_overlay = (result, self._shown_gate)
        self.viewer.call_after_paint(self._after_first_overlay_frame)
        QTimer.singleShot(100, self._after_first_overlay)

    def _after_first_overlay_frame(self) -> None:
        QTimer.singleShot(0, self._after_first_overlay)  # in paint: the frame is not done

    def _after_first_overlay(self) -> None:
        if self._first_overlay is None:  # done already: after the frame or by the timer
            return
        result, gate = self._first_overlay
        self._first_overlay = None
        self._add_input(result, f"✓ {result.item.name}")
        if result is self.current:
            self.measurements.set_rows([])  # the previous input's; these come when measured
        gate.open()

    def _on_drop_measured(self, result: Any) -> None:
        if result is self.current:
            self._show_measurements(result)

    def _on_drop_result(self, result: Any) -> None:
        row = next((i for i, r in enumerate(self.results) if r is result), None)
        if not result.ok:
            # Shown already if it failed after its prediction (say, a bad ground truth).
            text = f"✗ {result.item.name}: {result.error}"
            item = self._add_input(result, text) if row is None else self.inputs_list.item(row)
            item.setText(text)
            item.setForeground(QColor("#c62828"))
            item.setToolTip(result.error)
            if result is self.current:
                self.message.setText(f"{result.item.name}: {result.error}")
            return
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
        self._segmenting_note.stop()
        self.last_drop_report = report
        failed = report.failures
        text = f"{len(report.succeeded)} of {report.total} segmented"
        if report.out_dir is not None:
            text += f"; results in {report.out_dir}"
        if failed:
            text += "\nFailed: " + "; ".join(f"{r.item.name}: {r.error}" for r in failed)
        self.message.setText(text)
        self.drop_finished.emit(report)

    # Files dropped anywhere on the tab (the viewer is the natural target) are segmented
    # like those dropped on the drop zone.
    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self._on_drag_entered(paths)
        else:
            event.ignore()

    def dragLeaveEvent(self, event: QDragLeaveEvent) -> None:
        self._early_read_expiry.start()
        super().dragLeaveEvent(event)

    def _on_drag_entered(self, paths: list[str]) -> None:
        self._early_read_expiry.stop()
        self._early_read.start(paths)

    def dropEvent(self, event: QDropEvent) -> None:
        paths = local_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.segment_paths(paths)

    def _on_input_click(self, item: QListWidgetItem) -> None:
        result = self.results[int(item.data(Qt.UserRole))]
        if result.ok:
            self.show_result(result)
        else:
            self.message.setText(f"{result.item.name}: {result.error}")

    def show_result(self, result: Any, measurements: bool = True) -> None:
        """Put one segmented input in the viewer and (unless told not to: a drop's are
        still being computed) its measurements in the table."""
        self.current = result
        prediction = result.prediction
        if prediction is None:
            return
        self.tabs.setCurrentIndex(0)
        volume = prediction.volume
        self.viewer.set_result(volume.array, prediction.labels, prediction.probabilities,
                               self.session.labels if self.session else _labels_of(result),
                               volume.window, _file_windows(volume))
        if measurements:
            self._show_measurements(result)
        else:
            self._show_notes(result)
        self.results_shown.emit()

    def _show_measurements(self, result: Any) -> None:
        """The table and notes of the shown result (a drop's come just after its overlay)."""
        prediction = result.prediction
        if prediction is None:
            return
        spacing_known = bool((prediction.volume.meta or {}).get("spacing_known", True))
        self.measurements.set_rows(result.rows, spacing_known)
        self._on_slice_change(self.viewer.slice_slider.value())  # the row of the shown slice
        self._show_notes(result)

    def _show_notes(self, result: Any) -> None:
        """How the image was fitted to the model, the ground truth used, export warnings."""
        prediction = result.prediction
        notes = list(prediction.notes)
        if result.truth_path is not None:
            notes.append(f"ground truth: {result.truth_path.name}")
        if result.files is not None:
            notes += result.files.warnings
        if notes:
            self.message.setText("\n".join(notes))

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
        worker.failed.connect(self.evaluate_view.show_failure)
        worker.done.connect(self.evaluate_view.set_idle)
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
        worker.failed.connect(self.batch_panel.show_failure)
        worker.cancelled.connect(self.batch_panel.show_cancelled)
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
        # Every worker signal goes to a bound method of this widget or its children, never
        # a lambda: Qt then drops the connection (and any queued call) when the widget is
        # destroyed, so a worker finishing after the tab is gone cannot touch dead widgets.
        worker.setObjectName(key)
        self._workers[key] = worker
        worker.done.connect(self._on_worker_done)
        worker.start()

    def _on_worker_done(self) -> None:
        worker = self.sender()
        if not isinstance(worker, Worker):
            return
        key = worker.objectName()
        if self._workers.get(key) is worker:
            del self._workers[key]
        if worker in self._retiring:
            self._retiring.remove(worker)
        worker.wait()
        worker.deleteLater()
        if key == "load":
            self._update_readiness()
        elif key == "drop":
            if self._queued_drops:
                self.segment_paths(self._queued_drops.pop(0))
            else:
                self._memory_release.start()

    def _release_memory(self) -> None:
        if "drop" in self._workers:  # dropping again: its end restarts the timer
            return
        # malloc_trim walks the whole heap (tens of ms): not in the GUI thread.
        threading.Thread(target=release_free_memory, name="dlp-release-memory",
                         daemon=True).start()

    def _retire(self, key: str) -> Worker | None:
        """Forget ``key``'s worker as busy while its thread finishes (kept until ``done``)."""
        worker = self._workers.pop(key, None)
        if worker is not None:
            self._retiring.append(worker)
        return worker

    def _cancel(self, key: str) -> None:
        worker = self._workers.get(key)
        if worker is not None:
            worker.cancel()

    def _on_evaluate_cancel(self) -> None:
        self._cancel("evaluate")

    def _on_batch_cancel(self) -> None:
        self._cancel("batch")

    def is_busy(self) -> bool:
        return bool(self._workers)

    def shutdown(self) -> None:
        """Stop background work and free the model (the window is closing).

        The workers' signals are disconnected after they end: their last queued
        signals must not reach widgets that are about to be deleted.
        """
        self._shown_gate.open()
        self._early_read.close()
        for worker in [*self._workers.values(), *self._retiring]:
            worker.stop_and_wait()
            for signal in (worker.progressed, worker.succeeded, worker.failed,
                           worker.cancelled, worker.done):
                with contextlib.suppress(TypeError):  # TypeError: nothing connected
                    signal.disconnect()
            worker.deleteLater()
        self._workers.clear()
        self._retiring.clear()
        self._pending_paths = []
        self._queued_drops = []
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


def _file_windows(volume: Any) -> list[tuple[float, float]]:
    """Every (center, width) window the image file names (DICOM may give several)."""
    windows = (getattr(volume, "meta", None) or {}).get("windows") or []
    return [(float(c), float(w)) for c, w in windows]


def _labels_of(result: Any):
    from dlp.deploy.labels import LabelMap

    return LabelMap.default(int(result.prediction.probabilities.shape[1]))
