"""The Data tab: build datasets on the left, browse the project's datasets on the right."""

from __future__ import annotations

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import QHBoxLayout, QLabel, QScrollArea, QSplitter, QVBoxLayout, QWidget

from dlp.gui.data.qt_build_form import QtBuildForm
from dlp.gui.data.qt_dataset_browser import QtDatasetBrowser
from dlp.gui.qt_project import QtProject


class QtDataModule(QWidget):
    """Builds write straight into ``datasets/``, so this tab never holds unsaved changes
    and has no undo stack (a build is not an edit; delete the folder to undo it)."""

    undo_stack = None

    def __init__(self, qt_project: QtProject, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.qt_project = qt_project
        self.form = QtBuildForm(qt_project)
        self.browser = QtDatasetBrowser(qt_project)
        self.form.built.connect(self._on_built)

        left = QWidget()
        left_layout = QVBoxLayout(left)
        title = QLabel("Build a dataset")
        title.setProperty("role", "title")
        hint = QLabel("Slices and their labels become LMDBs of Caffe Datums (DIGITS layout) "
                      "in this project's datasets/ folder; patients are split, not slices.")
        hint.setWordWrap(True)
        hint.setProperty("role", "hint")
        left_layout.addWidget(title)
        left_layout.addWidget(hint)
        left_layout.addWidget(self.form, 1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(left)
        scroll.setFrameShape(QScrollArea.NoFrame)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        scroll.setMinimumWidth(min(left.minimumSizeHint().width() + 24, 520))

        right = QWidget()
        right_layout = QVBoxLayout(right)
        right_layout.addWidget(self.browser)

        splitter = QSplitter(Qt.Horizontal)
        splitter.addWidget(scroll)
        splitter.addWidget(right)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([500, 780])
        layout = QHBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addWidget(splitter)

    def _on_built(self, name: str) -> None:
        if name:
            self.browser.refresh()
            self.browser.select(name)

    def is_modified(self) -> bool:
        return False

    def save(self) -> bool:
        return True

    def confirm_close(self) -> bool:
        """A build in progress would be lost: ask before closing the project."""
        if not self.form.is_building():
            return True
        from PyQt5.QtWidgets import QMessageBox

        answer = QMessageBox.question(
            self, "Dataset build running",
            "A dataset is being built. Cancel the build and close?",
            QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        if answer != QMessageBox.Yes:
            return False
        self.form.shutdown()
        return True

    def shutdown(self) -> None:
        self.form.shutdown()
