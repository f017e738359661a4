"""Tools → Settings: engine, device, Python layers (per project) and autosave (per user)."""

from __future__ import annotations

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QButtonGroup,
    QCheckBox,
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from dlp.errors import DLPError
from dlp.project import Project, caffe_tools_problem


def available_devices() -> list[tuple[str, str]]:
    """``(device, label)`` for the CPU and every CUDA device torch sees.

    torch is imported here, lazily: the dialog is the only GUI part that needs it
    before training, and a DLP without torch can still edit nets and data.
    """
    devices = [("cpu", "CPU")]
    try:
        import torch
    except ImportError:
        return devices
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            devices.append((f"cuda:{index}", f"CUDA {index}: {torch.cuda.get_device_name(index)}"))
    return devices


class QtSettingsDialog(QDialog):
    """Edits ``project.settings``; OK validates and saves them, refusing invalid ones."""

    def __init__(self, project: Project, parent: QWidget | None = None,
                 autosave_seconds: int = 60) -> None:
        super().__init__(parent)
        self.project = project
        self.setWindowTitle("Settings")
        self.setMinimumWidth(560)
        settings = project.settings

        engine_box = QGroupBox("Engine")
        self.builtin_radio = QRadioButton("Built-in (DLP's PyTorch engine)")
        self.caffe_radio = QRadioButton("External Caffe — the tools folder containing 'caffe':")
        self._engine_group = QButtonGroup(self)
        self._engine_group.addButton(self.builtin_radio)
        self._engine_group.addButton(self.caffe_radio)
        self.caffe_path = QLineEdit(settings.caffe_tools)
        self.caffe_path.setPlaceholderText("/opt/caffe/build/tools")
        browse = QPushButton("Browse…")
        browse.clicked.connect(self._browse_caffe)
        browse.setMinimumHeight(browse.sizeHint().height())
        self.caffe_status = QLabel()
        self.caffe_status.setWordWrap(True)
        path_row = QHBoxLayout()
        path_row.setContentsMargins(22, 0, 0, 0)
        path_row.addWidget(self.caffe_path, 1)
        path_row.addWidget(browse)
        engine_layout = QVBoxLayout(engine_box)
        engine_layout.addWidget(self.builtin_radio)
        engine_layout.addWidget(self.caffe_radio)
        engine_layout.addLayout(path_row)
        engine_layout.addWidget(self.caffe_status)

        run_box = QGroupBox("Running nets")
        self.device_combo = QComboBox()
        for device, label in available_devices():
            self.device_combo.addItem(label, device)
        if self.device_combo.findData(settings.device) < 0:
            # A CUDA device saved on another machine: keep it visible, marked missing.
            self.device_combo.addItem(f"{settings.device} (not available here)", settings.device)
        self.device_combo.setCurrentIndex(self.device_combo.findData(settings.device))
        self.python_layers = QCheckBox("Allow Python layers in this project")
        self.python_layers.setChecked(settings.python_layers)
        self.python_warning = QLabel(
            "A Python layer runs code named in the prototxt (module and layer). "
            "Allow it only for nets you trust.")
        self.python_warning.setWordWrap(True)
        self.python_warning.setProperty("role", "warning")
        run_form = QFormLayout(run_box)
        run_form.addRow("Device:", self.device_combo)
        run_form.addRow(self.python_layers)
        run_form.addRow(self.python_warning)

        app_box = QGroupBox("Application")
        self.autosave_spin = QSpinBox()
        self.autosave_spin.setRange(0, 3600)
        self.autosave_spin.setSuffix(" s")
        self.autosave_spin.setSpecialValueText("off")
        self.autosave_spin.setValue(autosave_seconds)
        app_form = QFormLayout(app_box)
        app_form.addRow("Autosave unsaved changes every:", self.autosave_spin)

        self.error_label = QLabel()
        self.error_label.setProperty("role", "error")
        self.error_label.setWordWrap(True)
        self.buttons = QDialogButtonBox(QDialogButtonBox.Ok | QDialogButtonBox.Cancel)
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel(f"Settings of project <b>{project.name}</b> ({project.root})"))
        layout.addWidget(engine_box)
        layout.addWidget(run_box)
        layout.addWidget(app_box)
        layout.addWidget(self.error_label)
        layout.addWidget(self.buttons)

        (self.caffe_radio if settings.engine == "caffe" else self.builtin_radio).setChecked(True)
        self.builtin_radio.toggled.connect(self._on_engine_change)
        self.caffe_path.textChanged.connect(self._on_caffe_tools_change)
        # Re-check on leaving the field too: the user may fix the folder (chmod +x)
        # without changing the text.
        self.caffe_path.editingFinished.connect(self._on_caffe_tools_change)
        self.python_layers.toggled.connect(self._on_python_layers_change)
        self._on_engine_change()
        self._on_python_layers_change()

    # ---- field handlers

    def engine(self) -> str:
        return "caffe" if self.caffe_radio.isChecked() else "builtin"

    def _on_engine_change(self, *_: object) -> None:
        self.caffe_path.setEnabled(self.engine() == "caffe")
        self._on_caffe_tools_change()

    def _on_caffe_tools_change(self, *_: object) -> None:
        ok_button = self.buttons.button(QDialogButtonBox.Ok)
        if self.engine() != "caffe":
            self.caffe_status.clear()
            ok_button.setEnabled(True)
            return
        problem = caffe_tools_problem(self.caffe_path.text().strip())
        self.caffe_status.setText(problem or "Found an executable 'caffe'.")
        self.caffe_status.setProperty("role", "error" if problem else "ok")
        self.caffe_status.style().unpolish(self.caffe_status)
        self.caffe_status.style().polish(self.caffe_status)
        ok_button.setEnabled(problem is None)

    def _on_python_layers_change(self, *_: object) -> None:
        self.python_warning.setVisible(self.python_layers.isChecked())

    def _browse_caffe(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Caffe tools folder",
                                                  self.caffe_path.text() or "/")
        if folder:
            self.caffe_path.setText(folder)
            self.caffe_radio.setChecked(True)

    def autosave_seconds(self) -> int:
        return self.autosave_spin.value()

    # ---- accept

    def accept(self) -> None:
        try:
            self.project.update_settings(
                engine=self.engine(),
                caffe_tools=self.caffe_path.text().strip(),
                device=self.device_combo.currentData(),
                python_layers=self.python_layers.isChecked(),
            )
        except DLPError as exc:
            self.error_label.setText(str(exc))
            return
        super().accept()

    def keyPressEvent(self, event) -> None:  # Enter in the path field must not close the dialog
        if event.key() in (Qt.Key_Return, Qt.Key_Enter) and self.caffe_path.hasFocus():
            return
        super().keyPressEvent(event)
