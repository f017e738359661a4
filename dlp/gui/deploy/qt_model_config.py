"""The model configuration form with the engine switch and its readiness indicator."""

from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import Qt, pyqtSignal
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
        self._problem: str | None = None
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
        self.edit.setCursorPosition(len(self.edit.text()))  # the file name is what matters
        self.set_problem(self._problem)

    def set_problem(self, reason: str | None) -> None:
        self._problem = reason
        self.edit.setStyleSheet("QLineEdit { border: 1px solid #d23c3c; }" if reason else "")
        # A long path does not fit the field: the tooltip shows all of it (and any problem).
        self.edit.setToolTip("\n".join(t for t in (reason, self.text()) if t))

    def _on_browse(self) -> None:
        start = self.text() or ""
        if self._folder:
            chosen = QFileDialog.getExistingDirectory(self, self._caption, start)
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, self._caption, start, self._filter)
        if chosen:
            self.set_text(chosen)
            self.changed.emit()


class QtDeviceBox(QComboBox):
    """CPU plus the machine's GPUs, listed when the user opens the list.

    Asking CUDA for its devices imports torch (seconds); the Deploy tab must open at
    once, so the GPUs are queried only when the list is opened or a model is loaded.
    """

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.addItem("CPU", "cpu")
        self._gpus_listed = False

    def select(self, device: str) -> None:
        """Show ``device`` (``cpu`` or ``cuda:N``) without querying CUDA."""
        device = device or "cpu"
        index = self.findData(device)
        if index < 0 and device.startswith("cuda"):
            self.addItem(f"GPU {device.partition(':')[2] or '0'}", device)
            index = self.count() - 1
        self.setCurrentIndex(max(index, 0))

    def list_gpus(self) -> None:
        if self._gpus_listed:
            return
        self._gpus_listed = True
        try:
            import torch

            names = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        except Exception:  # no usable CUDA runtime: CPU only
            names = []
        current = self.currentData()
        old = self.blockSignals(True)
        while self.count() > 1:
            self.removeItem(1)
        for index, name in enumerate(names):
            self.addItem(f"GPU {index}: {name}", f"cuda:{index}")
        self.blockSignals(old)
        if current != self.currentData():
            self.select(current)

    def showPopup(self) -> None:
        self.list_gpus()
        super().showPopup()


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
        self.snapshot_box.setToolTip("use a training run's best snapshot (its latest when "
                                     "no best is known) with the net it was trained with")
        self.labels = QtPathField("label.txt (optional)", "Label files (*.txt);;All files (*)")
        self.manifest = QtPathField("Dataset manifest (optional)",
                                    "Manifests (manifest.json);;JSON (*.json)")
        self.device = QtDeviceBox()
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

        # The model's files are set up once (by whoever trained it); while the engine is
        # on they fold away behind a one-line summary, leaving the reader the drop zone.
        self.model_box = QWidget()
        model_form = QFormLayout(self.model_box)
        model_form.setContentsMargins(0, 0, 0, 0)
        model_form.addRow("Deploy net", self.deploy_net)
        model_form.addRow("", self.derive_box)
        model_form.addRow("Training net", self.train_net)
        model_form.addRow("Weights", self.weights)
        model_form.addRow("Run snapshot", self.snapshot_box)
        model_form.addRow("Labels", self.labels)
        model_form.addRow("Manifest", self.manifest)
        model_form.addRow("Device", self.device)
        self.model_toggle = QToolButton()
        self.model_toggle.setCheckable(True)
        self.model_toggle.setChecked(True)
        self.model_toggle.setToolButtonStyle(Qt.ToolButtonTextBesideIcon)
        self.model_toggle.setStyleSheet("QToolButton { border: none; font-weight: bold; }")
        self.model_toggle.toggled.connect(self._on_model_toggle)
        self.model_summary = QLabel()
        self.model_summary.setStyleSheet("color: #666;")
        self.model_summary.setWordWrap(True)
        outputs = QFormLayout()
        outputs.addRow("Results to", self.out_dir)
        outputs.addRow("Ground truth", self.ground_truth)
        status = QHBoxLayout()
        status.addWidget(self.engine_button)
        status.addWidget(self.status_dot)
        status.addWidget(self.status_text, 1)
        self.engine_button.setMinimumWidth(110)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.model_toggle)
        layout.addWidget(self.model_summary)
        layout.addWidget(self.model_box)
        layout.addLayout(outputs)
        layout.addLayout(status)
        layout.addWidget(self.policy_label)
        self._on_model_toggle(True)

        for field in (self.deploy_net, self.train_net, self.weights, self.labels, self.manifest,
                      self.out_dir, self.ground_truth):
            field.changed.connect(self._on_field_change)
        self.derive_box.toggled.connect(self._on_derive_change)
        self.device.currentIndexChanged.connect(self._on_field_change)
        self.engine_button.toggled.connect(self._on_engine_toggle)
        self.snapshot_box.activated.connect(self._on_snapshot_change)
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
        self.device.select(config.device)
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

    def select_run(self, weights: str) -> None:
        """Show the run whose snapshot ``weights`` is (if it is one) in the run list."""
        index = 0
        if weights:
            path = Path(weights).resolve()
            for i in range(1, self.snapshot_box.count()):
                folder = Path(self.snapshot_box.itemData(i)).resolve()
                if folder in path.parents:
                    index = i
        self.snapshot_box.blockSignals(True)
        self.snapshot_box.setCurrentIndex(index)
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
        if state == "on":
            self.show_model_settings(False)
        elif state in ("error", "off"):
            self.show_model_settings(True)
        self.engine_button.setText("Engine on" if state in ("on", "loading") else "Engine off")
        self.engine_button.blockSignals(False)

    def show_model_settings(self, shown: bool) -> None:
        if self.model_toggle.isChecked() == shown:
            self._on_model_toggle(shown)  # no toggle: refresh the summary all the same
        else:
            self.model_toggle.setChecked(shown)

    def _on_model_toggle(self, shown: bool) -> None:
        self.model_box.setVisible(shown)
        self.model_toggle.setArrowType(Qt.DownArrow if shown else Qt.RightArrow)
        self.model_toggle.setText("Model" if shown else "Model (click to change)")
        self.model_summary.setVisible(not shown)
        config = self.config()
        net = config.train_net if config.derive_from_train else config.deploy_net
        parts = [Path(net).name if net else "no net"]
        if config.weights:
            parts.append(Path(config.weights).name)
        self.model_summary.setText(" · ".join(parts))

    def set_policy(self, text: str) -> None:
        self.policy_label.setText(text)

    # ------------------------------------------------------------------ handlers
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

