"""The dataset build form: source folders + options → ``dlp.data.builder.build_dataset``
in a worker thread, with progress, Cancel and the build report (problems per file)."""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QMessageBox,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dlp.errors import DLPError
from dlp.gui.data.build_request import SOURCE_KINDS, BuildRequest, run_build
from dlp.gui.qt_project import QtProject
from dlp.gui.resources import icon
from dlp.gui.widgets.progress_panel import ProgressPanel
from dlp.gui.workers import Worker


class QtFolderField(QWidget):
    """A path line edit with a Browse… button."""

    def __init__(self, caption: str, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.caption = caption
        self.edit = QLineEdit()
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(browse)

    def text(self) -> str:
        return self.edit.text().strip()

    def setText(self, text: str) -> None:
        self.edit.setText(text)

    def _browse(self) -> None:
        start = self.text() or str(Path.home())
        folder = QFileDialog.getExistingDirectory(self, self.caption, start)
        if folder:
            self.edit.setText(folder)


class QtBuildForm(QWidget):
    """Builds a dataset into ``<project>/datasets/<name>``; ``built(name)`` when done."""

    built = pyqtSignal(str)

    def __init__(self, qt_project: QtProject, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.qt_project = qt_project
        self.worker: Worker | None = None
        self.last_report: Any = None

        source_box = QGroupBox("Source")
        self.kind_combo = QComboBox()
        self.kind_combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.kind_combo.setMinimumContentsLength(12)
        for kind, label in SOURCE_KINDS.items():
            self.kind_combo.addItem(label, kind)
        self.images_field = QtFolderField("Images folder")
        self.second_field = QtFolderField("Labels folder")
        self.second_label = QLabel()
        self.axis_combo = QComboBox()
        self.axis_combo.addItems(["z", "y", "x"])
        self.axis_label = QLabel("Slice axis:")
        source_form = QFormLayout(source_box)
        source_form.addRow("Kind:", self.kind_combo)
        source_form.addRow("Images:", self.images_field)
        source_form.addRow(self.second_label, self.second_field)
        source_form.addRow(self.axis_label, self.axis_combo)

        options_box = QGroupBox("Options")
        self.name_edit = QLineEdit("sunnybrook")
        self.val_spin = QSpinBox()
        self.val_spin.setRange(0, 90)
        self.val_spin.setValue(10)
        self.val_spin.setSuffix(" %")
        self.test_spin = QSpinBox()
        self.test_spin.setRange(0, 90)
        self.test_spin.setSuffix(" %")
        self.size_spin = QSpinBox()
        self.size_spin.setRange(16, 4096)
        self.size_spin.setValue(256)
        self.size_spin.setSuffix(" px")
        self.size_policy_combo = QComboBox()
        self.size_policy_combo.addItems(["resize", "pad_crop", "none"])
        self.classes_combo = QComboBox()
        self.classes_combo.setEditable(True)
        self.intensity_combo = QComboBox()
        self.intensity_combo.addItems(["minmax", "zscore", "window", "none"])
        self.window_center = QDoubleSpinBox()
        self.window_width = QDoubleSpinBox()
        for spin, value in ((self.window_center, 400.0), (self.window_width, 800.0)):
            spin.setRange(-100000.0, 100000.0)
            spin.setDecimals(1)
            spin.setValue(value)
            spin.setMaximumWidth(95)
        for spin in (self.val_spin, self.test_spin):
            spin.setMaximumWidth(80)
        self.window_row = QWidget()
        window_layout = QHBoxLayout(self.window_row)
        window_layout.setContentsMargins(0, 0, 0, 0)
        window_layout.addWidget(QLabel("center"))
        window_layout.addWidget(self.window_center)
        window_layout.addWidget(QLabel("width"))
        window_layout.addWidget(self.window_width)
        self.channels_combo = QComboBox()
        self.channels_combo.addItems(["1", "3"])
        self.bits_combo = QComboBox()
        self.bits_combo.addItems(["8", "16"])
        self.seed_spin = QSpinBox()
        self.seed_spin.setRange(0, 2**31 - 1)
        self.strict_check = QCheckBox("Stop at the first unreadable file (strict)")
        size_row = QWidget()
        size_layout = QHBoxLayout(size_row)
        size_layout.setContentsMargins(0, 0, 0, 0)
        size_layout.addWidget(self.size_spin)
        size_layout.addWidget(self.size_policy_combo)
        split_row = QWidget()
        split_layout = QHBoxLayout(split_row)
        split_layout.setContentsMargins(0, 0, 0, 0)
        split_layout.addWidget(QLabel("validation"))
        split_layout.addWidget(self.val_spin)
        split_layout.addWidget(QLabel("test"))
        split_layout.addWidget(self.test_spin)
        format_row = QWidget()
        format_layout = QHBoxLayout(format_row)
        format_layout.setContentsMargins(0, 0, 0, 0)
        format_layout.addWidget(QLabel("channels"))
        format_layout.addWidget(self.channels_combo)
        format_layout.addWidget(QLabel("bits"))
        format_layout.addWidget(self.bits_combo)
        format_layout.addStretch(1)
        options_form = QFormLayout(options_box)
        options_form.addRow("Dataset name:", self.name_edit)
        options_form.addRow("Split by case:", split_row)
        options_form.addRow("Size (H = W):", size_row)
        options_form.addRow("Classes:", self.classes_combo)
        options_form.addRow("Intensity:", self.intensity_combo)
        options_form.addRow("Window:", self.window_row)
        options_form.addRow("Storage:", format_row)
        options_form.addRow("Seed:", self.seed_spin)
        options_form.addRow(self.strict_check)
        self.options_form = options_form
        self._explain_options()

        self.build_button = QPushButton(icon("build"), "Build dataset")
        self.build_button.setProperty("primary", True)
        self.build_button.clicked.connect(self.start_build)
        self.progress = ProgressPanel(self)
        self.progress.hide()
        self.status_label = QLabel()
        self.status_label.setWordWrap(True)
        self.report_tree = QTreeWidget()
        self.report_tree.setHeaderLabels(["File", "Problem"])
        self.report_tree.setRootIsDecorated(False)
        self.report_tree.header().setSectionResizeMode(0, QHeaderView.Interactive)
        self.report_tree.header().setStretchLastSection(True)
        self.report_tree.setMinimumHeight(90)
        report_box = QGroupBox("Build report")
        report_layout = QVBoxLayout(report_box)
        report_layout.addWidget(self.status_label)
        report_layout.addWidget(self.report_tree, 1)

        button_row = QVBoxLayout()
        button_row.addWidget(self.build_button)
        button_row.addWidget(self.progress)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(source_box)
        layout.addWidget(options_box)
        layout.addLayout(button_row)
        layout.addWidget(report_box, 1)

        self.kind_combo.currentIndexChanged.connect(self._on_kind_change)
        self.intensity_combo.currentIndexChanged.connect(self._on_intensity_change)
        self._on_kind_change()
        self._on_intensity_change()
        self._restore_state()
        qt_project.project_changed.connect(self._restore_state)

    # ---- field handlers

    def kind(self) -> str:
        return self.kind_combo.currentData()

    def _on_kind_change(self, *_: object) -> None:
        kind = self.kind()
        second = {"sunnybrook": "Contours:", "folder": "Masks:", "nifti": "Labels:"}[kind]
        self.second_label.setText(second)
        self.second_field.caption = second.rstrip(":") + " folder"
        self.axis_combo.setVisible(kind == "nifti")
        self.axis_label.setVisible(kind == "nifti")
        self.classes_combo.clear()
        if kind == "sunnybrook":
            self.classes_combo.addItems(["endo", "endo,epi"])
            self.classes_combo.setToolTip(
                "endo: background / LV cavity; endo,epi: background / LV cavity / myocardium")
        else:
            self.classes_combo.addItems(["background,foreground"])
            self.classes_combo.setToolTip(
                "Class names by label value, background first (comma separated)")

    def _explain_options(self) -> None:
        """Tooltips in plain words for the choices a first-time user meets."""
        self.name_edit.setToolTip("The folder name under datasets/ (letters, digits, - and _)")
        split_tip = ("Share of the patients (cases) kept apart for validation during "
                     "training and for a final test; a patient's slices never straddle splits")
        for spin in (self.val_spin, self.test_spin):
            spin.setToolTip(split_tip)
        self.size_spin.setToolTip("Every slice is stored at this height and width")
        for index, tip in enumerate([
                "resize: scale each slice to the size (the whole field of view is kept)",
                "pad_crop: keep the pixel scale; pad with zeros or crop around the centre",
                "none: keep each slice's own size (all must already match)"]):
            self.size_policy_combo.setItemData(index, tip, Qt.ToolTipRole)
        self.size_policy_combo.setToolTip("How slices of another size are brought to the size")
        for index, tip in enumerate([
                "minmax: stretch each slice's own darkest..brightest to the full range",
                "zscore: subtract the slice's mean, divide by its standard deviation",
                "window: a fixed window (centre/width, e.g. CT Hounsfield units)",
                "none: keep the scanner's values"]):
            self.intensity_combo.setItemData(index, tip, Qt.ToolTipRole)
        self.intensity_combo.setToolTip("How grey values are normalised before training")
        self.channels_combo.setToolTip("1 = greyscale; 3 = the grey slice repeated as RGB "
                                       "(for nets pretrained on photographs)")
        self.bits_combo.setToolTip("8: whole numbers 0-255, what Caffe's image nets expect; "
                                   "16: the exact values, stored as floats")
        self.seed_spin.setToolTip("Which patients go to which split: the same seed gives the "
                                  "same split again")

    def _on_intensity_change(self, *_: object) -> None:
        window = self.intensity_combo.currentText() == "window"
        self.options_form.setRowVisible(self.window_row, window) if hasattr(
            self.options_form, "setRowVisible") else self.window_row.setEnabled(window)

    # ---- request

    def request(self) -> BuildRequest:
        """The form as a :class:`BuildRequest`; InputError names the bad field."""
        return BuildRequest(
            kind=self.kind(),
            images=self.images_field.text(),
            labels=self.second_field.text(),
            name=self.name_edit.text().strip(),
            val_percent=self.val_spin.value(),
            test_percent=self.test_spin.value(),
            size=self.size_spin.value(),
            size_policy=self.size_policy_combo.currentText(),
            classes=self.classes_combo.currentText().strip(),
            intensity=self.intensity_combo.currentText(),
            window=(self.window_center.value(), self.window_width.value()),
            channels=int(self.channels_combo.currentText()),
            bits=int(self.bits_combo.currentText()),
            seed=self.seed_spin.value(),
            strict=self.strict_check.isChecked(),
            axis=self.axis_combo.currentText(),
        )

    def set_request(self, request: BuildRequest) -> None:
        self.kind_combo.setCurrentIndex(self.kind_combo.findData(request.kind))
        self.images_field.setText(request.images)
        self.second_field.setText(request.labels)
        self.name_edit.setText(request.name)
        self.val_spin.setValue(request.val_percent)
        self.test_spin.setValue(request.test_percent)
        self.size_spin.setValue(request.size)
        self.size_policy_combo.setCurrentText(request.size_policy)
        self.classes_combo.setCurrentText(request.classes)
        self.intensity_combo.setCurrentText(request.intensity)
        self.window_center.setValue(request.window[0])
        self.window_width.setValue(request.window[1])
        self.channels_combo.setCurrentText(str(request.channels))
        self.bits_combo.setCurrentText(str(request.bits))
        self.seed_spin.setValue(request.seed)
        self.strict_check.setChecked(request.strict)
        self.axis_combo.setCurrentText(request.axis)

    def _restore_state(self) -> None:
        """The project's last build request; in a fresh demo, its phantom source."""
        request = BuildRequest()
        saved = self.qt_project.state("Data").get("build_form")
        if isinstance(saved, dict):
            # A form saved by another DLP version: keep the defaults.
            with contextlib.suppress(DLPError, TypeError, ValueError, IndexError):
                request = BuildRequest.from_dict(saved)
        else:
            from dlp.demo import DEMO_DATASET, PHANTOM_FOLDER

            phantom = self.qt_project.root / PHANTOM_FOLDER
            if (phantom / "images").is_dir():
                demo = next((e for e in self.qt_project.datasets()
                             if e.name == DEMO_DATASET and e.manifest is not None), None)
                size = int(demo.manifest.shape[-1]) if demo is not None else 256
                request = BuildRequest(images=str(phantom / "images"),
                                       labels=str(phantom / "contours"),
                                       name="phantom-endo-epi", classes="endo,epi", size=size)
        self.set_request(request)

    # ---- building

    def is_building(self) -> bool:
        return self.worker is not None

    def start_build(self) -> Worker | None:
        """Validate the form and start the build; None (with the reason shown) if invalid."""
        if self.worker is not None:
            return None
        try:
            request = self.request()
            request.validate()
        except DLPError as exc:
            self._show_failure(str(exc))
            return None
        target = self.qt_project.datasets_dir / request.name
        if target.exists():
            answer = QMessageBox.question(
                self, "Replace dataset?",
                f"A dataset named {request.name!r} exists. Replace it when the build succeeds?",
                QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
            if answer != QMessageBox.Yes:
                return None
        state = self.qt_project.state("Data")
        state["build_form"] = request.to_dict()
        self.qt_project.set_state("Data", state)

        self.report_tree.clear()
        self.status_label.setText(f"Building {request.name}…")
        self.status_label.setProperty("role", "")
        self._repolish(self.status_label)
        worker = Worker(run_build, request, target)
        self.worker = worker
        self.progress.attach(worker, "Building")
        worker.succeeded.connect(self._on_built)
        worker.failed.connect(lambda message, _details: self._show_failure(message))
        worker.cancelled.connect(self._on_cancelled)
        worker.done.connect(self._on_done)
        self.build_button.setEnabled(False)
        worker.start()
        return worker

    def cancel_build(self) -> None:
        if self.worker is not None:
            self.progress.cancel()

    def _on_built(self, report: Any) -> None:
        self.last_report = report
        problems = list(getattr(report, "problems", []))
        counts = getattr(report, "counts", {}) or {}
        count_text = ", ".join(f"{split} {n}" for split, n in counts.items())
        self.status_label.setText(
            f"Built {getattr(report, 'out_dir', '')}: {count_text} records"
            + (f"; {len(problems)} file(s) skipped — listed below." if problems else "."))
        self.status_label.setProperty("role", "warning" if problems else "ok")
        self._repolish(self.status_label)
        self._list_problems(problems)
        self.qt_project.notify_datasets_changed()
        self.built.emit(Path(str(getattr(report, "out_dir", ""))).name)

    def _list_problems(self, problems: list[Any]) -> None:
        self.report_tree.clear()
        for problem in problems:
            path = str(getattr(problem, "path", ""))
            reason = str(getattr(problem, "reason", problem))
            item = QTreeWidgetItem([path, reason])
            item.setToolTip(0, path)
            item.setToolTip(1, reason)
            self.report_tree.addTopLevelItem(item)
        self.report_tree.resizeColumnToContents(0)

    def _show_failure(self, message: str) -> None:
        self.status_label.setText(f"Build failed: {message}")
        self.status_label.setProperty("role", "error")
        self._repolish(self.status_label)

    def _on_cancelled(self) -> None:
        self.status_label.setText("Build cancelled; nothing was written.")
        self.status_label.setProperty("role", "warning")
        self._repolish(self.status_label)

    def _on_done(self) -> None:
        worker, self.worker = self.worker, None
        self.build_button.setEnabled(True)
        if worker is not None:
            worker.wait()
            worker.deleteLater()

    @staticmethod
    def _repolish(widget: QWidget) -> None:
        widget.style().unpolish(widget)
        widget.style().polish(widget)

    def shutdown(self) -> None:
        if self.worker is not None:
            self.worker.stop_and_wait()
