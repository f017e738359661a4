"""A progress bar with a message and a Cancel button, bound to a :class:`Worker`."""

from __future__ import annotations

from PyQt5.QtWidgets import QHBoxLayout, QLabel, QProgressBar, QPushButton, QWidget

from dlp.gui.resources import icon
from dlp.gui.workers import Worker


class ProgressPanel(QWidget):
    """Shows a worker's progress; Cancel asks the worker to stop.  Hidden when idle."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        layout = QHBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        self.label = QLabel()
        self.bar = QProgressBar()
        self.bar.setMinimumWidth(120)
        self.cancel_button = QPushButton(icon("cancel"), "Cancel")
        self.cancel_button.clicked.connect(self.cancel)
        layout.addWidget(self.label)
        layout.addWidget(self.bar, 1)
        layout.addWidget(self.cancel_button)
        self._worker: Worker | None = None
        self._title = ""

    @property
    def worker(self) -> Worker | None:
        return self._worker

    def attach(self, worker: Worker, title: str) -> None:
        """Follow ``worker`` (before it starts); the panel shows until it is done."""
        self._worker = worker
        self._title = title
        self.label.setText(title)
        self.bar.setRange(0, 0)  # busy until the first report says how much there is
        self.cancel_button.setEnabled(True)
        self.cancel_button.setText("Cancel")
        worker.progressed.connect(self.set_progress)
        worker.done.connect(self._on_done)
        self.show()

    def set_progress(self, done: int, total: int, message: str) -> None:
        if total > 0:
            self.bar.setRange(0, total)
            self.bar.setValue(min(done, total))
        else:
            self.bar.setRange(0, 0)
        self.label.setText(f"{self._title}: {message}" if message else self._title)

    def cancel(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            self.cancel_button.setEnabled(False)
            self.cancel_button.setText("Cancelling…")

    def _on_done(self) -> None:
        self._worker = None
        self.hide()
