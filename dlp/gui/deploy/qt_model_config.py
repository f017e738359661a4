"""The model configuration form with the engine switch and its readiness indicator."""

from __future__ import annotations

from PyQt5.QtCore import pyqtSignal
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from dlp.deploy.config import DeployConfig

STATUS_COLORS = {
    # every field valid = green (light until the model is loaded, dark once it is on)
    "off": "#9a9a9a", "ready": "#5cb85c", "loading": "#3a8ee6", "on": "#167a2e",
    "error": "#d23c3c",
}


class QtPathField(QWidget):
    """A line edit with a browse button; ``changed`` fires when editing finishes."""

    changed = pyqtSignal()

    def __init__(self, caption: str, file_filter: str = "", folder: bool = False,
                 parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._caption, self._filter, self._folder = caption, file_filter, folder
        self.edit = QLineEdit()
        self.edit.setPlaceholderText(caption)
        self.edit.setClearButtonEnabled(True)
        browse = QToolButton()
        browse.setText("…")
        browse.setToolTip(f"Browse for the {caption.lower()}")
        browse.clicked.connect(self._on_browse)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.edit, 1)
        layout.addWidget(browse)
        self.edit.editingFinished.connect(self.changed)

    def text(self) -> str:
        return self.edit.text().strip()

    def set_text(self, text: str) -> None:
        self.edit.setText(str(text or ""))

    def set_problem(self, reason: str | None) -> None:
        self.edit.setStyleSheet("QLineEdit { border: 1px solid #d23c3c; }" if reason else "")
        self.edit.setToolTip(reason or "")

    def _on_browse(self) -> None:
        start = self.text() or ""
        if self._folder:
            chosen = QFileDialog.getExistingDirectory(self, self._caption, start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, self._caption, start, self._filter)
        if chosen:
            self.set_text(chosen)
            self.changed.emit()


class QtModelConfig(QWidget):
    """Edits a :class:`DeployConfig`.  ``config_changed`` after any edit; ``engine_toggled``."""

    config_changed = pyqtSignal()
    engine_toggled = pyqtSignal(bool)
    snapshot_chosen = pyqtSignal(str)  # run folder

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.deploy_net = QtPathField("Deploy net", "Caffe nets (*.prototxt);;All files (*)")
        self.derive_box = QCheckBox("Derive it from the training net")
        self.derive_box.setToolTip("build the deploy net from the training net: its data layers "
                                   "become an input of the dataset's shape, losses are dropped")
        self.train_net = QtPathField("Training net", "Caffe nets (*.prototxt);;All files (*)")
        self.weights = QtPathField("Weights", "Caffe weights (*.caffemodel);;All files (*)")
        self.snapshot_box = QComboBox()
        self.snapshot_box.setToolTip("use the latest snapshot of a training run")
        self.labels = QtPathField("label.txt (optional)", "Label files (*.txt);;All files (*)")
        self.manifest = QtPathField("Dataset manifest (optional)",
                                    "Manifests (manifest.json);;JSON (*.json)")
        self.device = QComboBox()
        self.device.setEditable(False)
        self.out_dir = QtPathField("Results folder", folder=True)
        self.ground_truth = QtPathField("Ground truth folder (optional)", folder=True)
        self.ground_truth.setToolTip("masks named like the images (name_mask.png…) or "
                                     "Sunnybrook contours: adds Dice and Hausdorff")
        self.engine_button = QPushButton("Engine off")
        self.engine_button.setCheckable(True)
        self.engine_button.setToolTip("load the model once and keep it ready for dropped images")
        self.status_dot = QLabel("●")
        self.status_text = QLabel()
        self.status_text.setWordWrap(True)
        self.policy_label = QLabel()
        self.policy_label.setWordWrap(True)
        self.policy_label.setStyleSheet("color: #666;")

        form = QFormLayout()
        form.addRow("Deploy net", self.deploy_net)
        form.addRow("", self.derive_box)
        form.addRow("Training net", self.train_net)
        form.addRow("Weights", self.weights)
        form.addRow("Run snapshot", self.snapshot_box)
        form.addRow("Labels", self.labels)
        form.addRow("Manifest", self.manifest)
        form.addRow("Device", self.device)
        form.addRow("Results to", self.out_dir)
        form.addRow("Ground truth", self.ground_truth)
        status = QHBoxLayout()
        status.addWidget(self.engine_button)
        status.addWidget(self.status_dot)
        status.addWidget(self.status_text, 1)
        self.engine_button.setMinimumWidth(110)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(form)
        layout.addLayout(status)
        layout.addWidget(self.policy_label)

        for field in (self.deploy_net, self.train_net, self.weights, self.labels, self.manifest,
                      self.out_dir, self.ground_truth):
            field.changed.connect(self._on_field_change)
        self.derive_box.toggled.connect(self._on_derive_change)
        self.device.currentIndexChanged.connect(self._on_field_change)
        self.engine_button.toggled.connect(self._on_engine_toggle)
        self.snapshot_box.activated.connect(self._on_snapshot_change)
        self._fill_devices()
        self._on_derive_change(False)
        self.set_status("off", "")

    # ------------------------------------------------------------------ model
    def config(self) -> DeployConfig:
        return DeployConfig(
            deploy_net=self.deploy_net.text(),
            derive_from_train=self.derive_box.isChecked(),
            train_net=self.train_net.text(),
            weights=self.weights.text(),
            labels=self.labels.text(),
            manifest=self.manifest.text(),
            device=self.device.currentData() or "cpu",
            out_dir=self.out_dir.text(),
            ground_truth=self.ground_truth.text(),
        )

    def set_config(self, config: DeployConfig) -> None:
        widgets = (self.derive_box, self.device)
        for w in widgets:
            w.blockSignals(True)
        self.deploy_net.set_text(config.deploy_net)
        self.derive_box.setChecked(config.derive_from_train)
        self.train_net.set_text(config.train_net)
        self.weights.set_text(config.weights)
        self.labels.set_text(config.labels)
        self.manifest.set_text(config.manifest)
        self.out_dir.set_text(config.out_dir)
        self.ground_truth.set_text(config.ground_truth)
        index = self.device.findData(config.device)
        self.device.setCurrentIndex(max(index, 0))
        for w in widgets:
            w.blockSignals(False)
        self._on_derive_change(config.derive_from_train, emit=False)

    def set_runs(self, runs: list[tuple[str, str]]) -> None:
        """``(label, run folder)`` pairs offered as "a snapshot of a run"."""
        self.snapshot_box.blockSignals(True)
        self.snapshot_box.clear()
        self.snapshot_box.addItem("(choose a run)" if runs else "(no runs with snapshots)", "")
        for label, folder in runs:
            self.snapshot_box.addItem(label, folder)
        self.snapshot_box.blockSignals(False)

    def show_problems(self, problems: dict[str, str]) -> None:
        fields = {"deploy_net": self.deploy_net, "train_net": self.train_net,
                  "weights": self.weights, "labels": self.labels, "manifest": self.manifest,
                  "ground_truth": self.ground_truth}
        for name, field in fields.items():
            field.set_problem(problems.get(name))

    def set_status(self, state: str, text: str) -> None:
        """``state``: off | ready | loading | on | error; the dot shows it in colour."""
        self.status_dot.setStyleSheet(f"color: {STATUS_COLORS[state]}; font-size: 16px;")
        self.status_dot.setToolTip(state)
        self.status_text.setText(text)
        self.status_state = state
        self.engine_button.blockSignals(True)
        self.engine_button.setChecked(state in ("on", "loading"))
        self.engine_button.setText("Engine on" if state in ("on", "loading") else "Engine off")
        self.engine_button.blockSignals(False)

    def set_policy(self, text: str) -> None:
        self.policy_label.setText(text)

    # ------------------------------------------------------------------ handlers
    def _fill_devices(self) -> None:
        self.device.addItem("CPU", "cpu")
        try:
            import torch

            for index in range(torch.cuda.device_count()):
                name = torch.cuda.get_device_name(index)
                self.device.addItem(f"GPU {index}: {name}", f"cuda:{index}")
        except Exception:  # no usable CUDA runtime: CPU only
            pass

    def _on_field_change(self, *_: object) -> None:
        self.config_changed.emit()

    def _on_derive_change(self, on: bool, emit: bool = True) -> None:
        self.deploy_net.setEnabled(not on)
        self.train_net.setEnabled(on)
        if emit:
            self.config_changed.emit()

    def _on_engine_toggle(self, on: bool) -> None:
        self.engine_toggled.emit(on)

    def _on_snapshot_change(self, index: int) -> None:
        folder = self.snapshot_box.itemData(index)
        if folder:
            self.snapshot_chosen.emit(str(folder))

