"""The project's datasets: a table of manifests, the details of the selected one and a
grid of its image/label pairs."""

from __future__ import annotations

import html
import json
import shutil

from PyQt5.QtCore import Qt
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QComboBox,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dlp.deploy.labels import default_color
from dlp.errors import DLPError
from dlp.gui.data.qt_sample_grid import QtSampleGrid
from dlp.gui.data.samples import read_samples
from dlp.gui.qt_project import QtProject
from dlp.gui.resources import icon
from dlp.project import DatasetEntry

COLUMNS = ("Dataset", "Train", "Val", "Test", "Shape (CxHxW)", "Classes")


def _split_count(entry: DatasetEntry, split: str) -> str:
    info = entry.manifest.splits.get(split) if entry.manifest is not None else None
    return "" if info is None else str(info.count)


def _value_text(value: object) -> str:
    return "x".join(map(str, value)) if isinstance(value, list | tuple) else str(value)


def legend_html(entry: DatasetEntry) -> str:
    """Coloured squares naming the label classes as the overlay draws them."""
    if entry.manifest is None:
        return ""
    items = []
    for index, name in enumerate(entry.manifest.classes):
        if index == 0:
            continue  # background is left transparent in the overlay
        r, g, b = default_color(index)
        items.append(f"<span style='color:rgb({r},{g},{b})'>&#9632;</span> {html.escape(name)}")
    return "&nbsp;&nbsp;".join(items)


def describe_build_report(entry: DatasetEntry) -> str:
    """One line from the dataset's build-report.json (files skipped at build time)."""
    path = entry.path / "build-report.json"
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return ""
    problems = data.get("problems", []) if isinstance(data, dict) else []
    skipped = data.get("skipped", []) if isinstance(data, dict) else []
    if not problems and not skipped:
        return "<br><b>Build report:</b> every file was used."
    first = problems[0] if problems else skipped[0]
    example = html.escape(f"{first.get('file', '')}: {first.get('reason', '')}") \
        if isinstance(first, dict) else ""
    return (f"<br><b>Build report:</b> {len(problems)} unusable file(s), {len(skipped)} "
            f"slice(s) skipped — e.g. {example}")


def describe_manifest(entry: DatasetEntry) -> str:
    """Rich text of a dataset's manifest for the details panel."""
    if entry.manifest is None:
        return (f"<b>{html.escape(entry.name)}</b><br>"
                f"<span style='color:#b03a2e'>Unusable: {html.escape(entry.error or '')}</span>")
    m = entry.manifest
    freqs = list(m.class_pixel_frequencies) + [None] * (len(m.classes) - len(
        m.class_pixel_frequencies))
    classes = ", ".join(
        f"{i} {html.escape(name)}" + (f" ({100 * f:.2f} % of pixels)" if f is not None else "")
        for i, (name, f) in enumerate(zip(m.classes, freqs, strict=False)))
    prep = m.preprocessing.to_dict()
    prep_text = ", ".join(f"{k.replace('_', ' ')} {html.escape(_value_text(v))}"
                          for k, v in prep.items() if v is not None)
    splits = "; ".join(f"{name} {info.count} records / {len(info.cases)} cases"
                       for name, info in m.splits.items())
    return (f"<b>{html.escape(entry.name)}</b> — {html.escape(str(entry.path))}<br>"
            f"<b>Records:</b> {splits}<br>"
            f"<b>Shape:</b> {'x'.join(map(str, m.shape))} {m.dtype}<br>"
            f"<b>Classes:</b> {classes}<br>"
            f"<b>Preprocessing:</b> {prep_text}")


class QtDatasetBrowser(QWidget):
    """Lists ``qt_project.datasets()``; follows ``datasets_changed`` and ``project_changed``."""

    def __init__(self, qt_project: QtProject, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.qt_project = qt_project
        self.entries: list[DatasetEntry] = []

        self.table = QTableWidget(0, len(COLUMNS))
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setSelectionMode(QAbstractItemView.SingleSelection)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().hide()
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setStretchLastSection(True)
        self.table.itemSelectionChanged.connect(self._on_selection_change)
        self.table.setMinimumHeight(70)

        refresh = QPushButton(icon("refresh"), "Refresh")
        refresh.clicked.connect(self.refresh)
        self.delete_button = QPushButton("Delete…")
        self.delete_button.setToolTip("Delete the selected dataset folder from the project")
        self.delete_button.clicked.connect(self.delete_selected)
        title = QLabel("Datasets in this project")
        title.setProperty("role", "title")
        top = QHBoxLayout()
        top.addWidget(title)
        top.addStretch(1)
        top.addWidget(self.delete_button)
        top.addWidget(refresh)

        self.details = QLabel("Select a dataset.")
        self.details.setWordWrap(True)
        self.details.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.details.setAlignment(Qt.AlignTop | Qt.AlignLeft)

        self.split_combo = QComboBox()
        self.split_combo.currentIndexChanged.connect(self._on_split_change)
        self.legend = QLabel()
        self.grid = QtSampleGrid(self)
        samples_box = QGroupBox("Samples: image with its label overlaid")
        samples_layout = QVBoxLayout(samples_box)
        split_row = QHBoxLayout()
        split_row.addWidget(QLabel("Split:"))
        split_row.addWidget(self.split_combo)
        split_row.addSpacing(16)
        split_row.addWidget(self.legend)
        split_row.addStretch(1)
        samples_layout.addLayout(split_row)
        samples_layout.addWidget(self.grid, 1)

        upper = QWidget()
        upper_layout = QVBoxLayout(upper)
        upper_layout.setContentsMargins(0, 0, 0, 0)
        upper_layout.addLayout(top)
        upper_layout.addWidget(self.table, 1)
        upper_layout.addWidget(self.details)
        splitter = QSplitter(Qt.Vertical)
        splitter.addWidget(upper)
        splitter.addWidget(samples_box)
        splitter.setStretchFactor(0, 0)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([280, 490])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)

        qt_project.datasets_changed.connect(self.refresh)
        qt_project.project_changed.connect(self.refresh)
        self.refresh()

    # ---- listing

    def refresh(self) -> None:
        selected = self.selected_entry()
        self.entries = self.qt_project.datasets()
        self.table.setRowCount(len(self.entries))
        for row, entry in enumerate(self.entries):
            m = entry.manifest
            values = [entry.name, _split_count(entry, "train"), _split_count(entry, "val"),
                      _split_count(entry, "test"),
                      "x".join(map(str, m.shape)) if m is not None else "—",
                      ", ".join(m.classes) if m is not None else (entry.error or "")]
            for column, value in enumerate(values):
                item = QTableWidgetItem(value)
                if m is None:
                    item.setForeground(Qt.red)
                    item.setToolTip(entry.error or "")
                self.table.setItem(row, column, item)
        names = [e.name for e in self.entries]
        if selected is not None and selected.name in names:
            self.select(selected.name)
        elif self.entries:
            self.table.selectRow(0)
        else:
            self.details.setText("No datasets yet: build one with the form on the left.")
            self.split_combo.clear()
            self.legend.clear()
            self.grid.clear()
        self.delete_button.setEnabled(bool(self.entries))

    def select(self, name: str) -> None:
        for row, entry in enumerate(self.entries):
            if entry.name == name:
                self.table.selectRow(row)
                self._on_selection_change()
                return
        raise KeyError(f"no dataset {name!r} in {self.qt_project.datasets_dir}")

    def selected_entry(self) -> DatasetEntry | None:
        rows = self.table.selectionModel().selectedRows() if self.table.selectionModel() else []
        if not rows or rows[0].row() >= len(self.entries):
            return None
        return self.entries[rows[0].row()]

    # ---- handlers

    def _on_selection_change(self) -> None:
        entry = self.selected_entry()
        if entry is None:
            return
        self.details.setText(describe_manifest(entry) + describe_build_report(entry))
        self.legend.setText(legend_html(entry))
        self.split_combo.blockSignals(True)
        self.split_combo.clear()
        if entry.manifest is not None:
            self.split_combo.addItems(list(entry.manifest.splits))
        self.split_combo.blockSignals(False)
        self._on_split_change()

    def delete_selected(self) -> bool:
        """Delete the selected dataset folder after asking; True when deleted."""
        entry = self.selected_entry()
        if entry is None:
            return False
        answer = QMessageBox.question(
            self, "Delete dataset",
            f"Delete the dataset {entry.name!r} and its folder {entry.path}? "
            "Nets that read it will no longer train.",
            QMessageBox.Yes | QMessageBox.No, QMessageBox.No)
        if answer != QMessageBox.Yes:
            return False
        try:
            shutil.rmtree(entry.path)
        except OSError as exc:
            QMessageBox.critical(self, "Delete dataset", f"{entry.path}: {exc.strerror}")
            return False
        self.qt_project.notify_datasets_changed()
        return True

    def _on_split_change(self, *_: object) -> None:
        entry = self.selected_entry()
        split = self.split_combo.currentText()
        if entry is None or entry.manifest is None or not split:
            self.grid.clear(entry.error if entry is not None and entry.error else "")
            return
        try:
            self.grid.set_samples(read_samples(entry.manifest, split, count=8),
                                 list(entry.manifest.classes))
        except DLPError as exc:
            self.grid.clear(f"Cannot read samples: {exc}")
