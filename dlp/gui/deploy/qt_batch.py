"""The Batch panel: a folder of studies segmented in the background, results as they finish."""

from __future__ import annotations

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QColor
from PyQt5.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from dlp.gui.deploy.qt_model_config import QtPathField


class QtBatchPanel(QWidget):
    """Inputs and output folder, Start/Cancel, progress, and every result or failure listed.

    ``result_arrived`` may be emitted from the worker thread: Qt queues it to this
    widget's (the GUI) thread, so the list grows while the batch runs.
    """

    start_requested = pyqtSignal(str, str)  # input folder, output folder
    cancel_requested = pyqtSignal()
    result_arrived = pyqtSignal(object)     # dlp.deploy.batch.ItemResult
    view_requested = pyqtSignal(object)     # the ItemResult clicked

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.source = QtPathField("Folder of studies", folder=True)
        self.target = QtPathField("Results folder", folder=True)
        self.start_button = QPushButton("Start")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setVisible(False)  # until a batch starts
        self.status = QLabel("Segment a whole folder; results are written as each finishes.")
        self.status.setWordWrap(True)
        self.results = QListWidget()
        self.results.setToolTip("finished inputs; failures say why (the batch goes on)")
        row = QHBoxLayout()
        row.addWidget(QLabel("Studies"))
        row.addWidget(self.source, 1)
        row.addWidget(QLabel("Results to"))
        row.addWidget(self.target, 1)
        row.addWidget(self.start_button)
        row.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.progress)
        layout.addWidget(self.status)
        layout.addWidget(self.results, 1)
        self.start_button.clicked.connect(self._on_start_click)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.result_arrived.connect(self._on_result)
        self.results.itemClicked.connect(self._on_item_click)
        self.ok_count = 0
        self.failed_count = 0

    def _on_start_click(self) -> None:
        self.start_requested.emit(self.source.text(), self.target.text())

    def set_running(self, running: bool) -> None:
        self.start_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        if running:
            self.progress.setVisible(True)
            self.results.clear()
            self.ok_count = self.failed_count = 0
            self.progress.setValue(0)
            self.status.setText("Collecting inputs…")

    def set_progress(self, done: int, total: int, message: str = "") -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"%v / %m  {message}")

    def show_failure(self, message: str, _details: str = "") -> None:
        self.finish(message)

    def show_cancelled(self) -> None:
        self.finish("Cancelled.")

    def finish(self, text: str) -> None:
        self.set_running(False)
        self.status.setText(text)

    def _on_result(self, result) -> None:
        if result.ok:
            self.ok_count += 1
            text = f"✓ {result.item.name}"
            slices = sum(isinstance(row.get("slice"), int) for row in result.rows)
            classes = len({row.get("class") for row in result.rows}) or 1
            if slices // classes > 1:
                text += f"  ({slices // classes} slices)"
            if result.files is not None and result.files.warnings:
                text += "  (" + "; ".join(result.files.warnings) + ")"
            item = QListWidgetItem(text)
        else:
            self.failed_count += 1
            item = QListWidgetItem(f"✗ {result.item.name}: {result.error}")
            item.setForeground(QColor("#c62828"))
        item.setData(Qt.UserRole, result)
        item.setToolTip(str(result.item.path))
        self.results.addItem(item)
        self.status.setText(f"{self.ok_count} done, {self.failed_count} failed")

    def _on_item_click(self, item: QListWidgetItem) -> None:
        result = item.data(Qt.UserRole)
        if result is not None and result.ok:
            self.view_requested.emit(result)
