"""Tools → Settings: the engine path is validated with the reason shown, Python layers
are off by default with a warning when allowed, and accepted settings persist."""

from __future__ import annotations

from pathlib import Path

import pytest
from PyQt5.QtWidgets import QDialogButtonBox

from dlp.gui.settings_dialog import QtSettingsDialog, available_devices
from dlp.project import Project


@pytest.fixture
def dialog(qtbot, project_dir: Path, monkeypatch: pytest.MonkeyPatch) -> QtSettingsDialog:
    monkeypatch.setattr("dlp.gui.settings_dialog.available_devices", lambda: [("cpu", "CPU")])
    widget = QtSettingsDialog(Project.create(project_dir))
    qtbot.addWidget(widget)
    widget.show()
    return widget


def ok_enabled(dialog: QtSettingsDialog) -> bool:
    return dialog.buttons.button(QDialogButtonBox.Ok).isEnabled()


def test_python_layers_off_by_default_and_warning_only_when_allowed(dialog) -> None:
    assert not dialog.python_layers.isChecked()
    assert not dialog.python_warning.isVisible()
    dialog.python_layers.setChecked(True)
    assert dialog.python_warning.isVisible()
    assert "runs code" in dialog.python_warning.text()


def test_external_caffe_folder_is_validated_with_the_reason(dialog, tmp_path: Path) -> None:
    dialog.caffe_radio.setChecked(True)
    dialog.caffe_path.setText(str(tmp_path / "missing"))
    assert not ok_enabled(dialog)
    assert "does not exist" in dialog.caffe_status.text()
    dialog.caffe_path.setText(str(tmp_path))
    assert "contains no 'caffe'" in dialog.caffe_status.text()
    caffe = tmp_path / "caffe"
    caffe.write_text("#!/bin/sh\n")
    dialog.caffe_path.editingFinished.emit()  # the user leaves the field
    assert "not executable" in dialog.caffe_status.text()
    caffe.chmod(0o755)
    dialog.caffe_path.editingFinished.emit()
    assert ok_enabled(dialog)
    assert "Found an executable" in dialog.caffe_status.text()
    dialog.builtin_radio.setChecked(True)
    assert ok_enabled(dialog) and not dialog.caffe_path.isEnabled()


def test_accepted_settings_persist_in_the_project_file(dialog, tmp_path: Path) -> None:
    tools = tmp_path / "tools"
    tools.mkdir()
    (tools / "caffe").write_text("#!/bin/sh\n")
    (tools / "caffe").chmod(0o755)
    dialog.caffe_radio.setChecked(True)
    dialog.caffe_path.setText(str(tools))
    dialog.python_layers.setChecked(True)
    dialog.accept()
    assert dialog.result() == QtSettingsDialog.Accepted
    reopened = Project.open(dialog.project.root)
    assert reopened.settings.engine == "caffe"
    assert reopened.settings.caffe_tools == str(tools)
    assert reopened.settings.python_layers is True


def test_a_device_saved_elsewhere_is_kept_and_marked(qtbot, project_dir: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("dlp.gui.settings_dialog.available_devices", lambda: [("cpu", "CPU")])
    project = Project.create(project_dir)
    project.update_settings(device="cuda:3")
    dialog = QtSettingsDialog(project)
    qtbot.addWidget(dialog)
    assert dialog.device_combo.currentData() == "cuda:3"
    assert "not available here" in dialog.device_combo.currentText()


def test_available_devices_start_with_the_cpu() -> None:
    devices = available_devices()
    assert devices[0] == ("cpu", "CPU")
    assert all(device.startswith("cuda:") for device, _ in devices[1:])
