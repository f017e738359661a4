"""The Evaluate view: a folder with ground truth → sortable per-image scores, summary, matrix."""

from __future__ import annotations

import math

import numpy as np
from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QColor
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QAbstractScrollArea,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QProgressBar,
    QPushButton,
    QSizePolicy,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dlp.deploy.evaluate import METRICS, EvaluationReport
from dlp.gui.deploy.qt_model_config import QtPathField

METRIC_TITLES = {"dice": "Dice", "iou": "IoU", "hausdorff": "Hausdorff (mm)"}
#: Dice below this is tinted: a case worth a look (what a reader would flag by eye).
POOR_DICE = 0.7
POOR_TINT = QColor("#f8d7d7")


class QtNumberItem(QTableWidgetItem):
    """A table cell that sorts by its number (nan last), not by its text."""

    def __init__(self, value: float) -> None:
        super().__init__("-" if math.isnan(value) else f"{value:.3f}")
        self.value = value
        self.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)

    def __lt__(self, other: QTableWidgetItem) -> bool:
        if isinstance(other, QtNumberItem):
            a = math.inf if math.isnan(self.value) else self.value
            b = math.inf if math.isnan(other.value) else other.value
            return a < b
        return super().__lt__(other)


class QtEvaluateView(QWidget):
    """Run an evaluation (``run_requested(images, truth)``) and show its report."""

    run_requested = pyqtSignal(str, str)
    cancel_requested = pyqtSignal()
    view_requested = pyqtSignal(object)  # ImageScores of the clicked row

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.report: EvaluationReport | None = None
        self.images = QtPathField("Folder of images", folder=True)
        self.truth = QtPathField("Ground truth folder (masks or Sunnybrook contours)",
                                 folder=True)
        self.run_button = QPushButton("Evaluate")
        self.cancel_button = QPushButton("Cancel")
        self.cancel_button.setEnabled(False)
        self.export_button = QPushButton("Export CSV…")
        self.export_button.setEnabled(False)
        self.progress = QProgressBar()
        self.progress.setTextVisible(True)
        self.progress.setVisible(False)  # shown while an evaluation runs
        self.summary = QLabel("Choose images and their ground truth, then Evaluate.")
        self.summary.setWordWrap(True)
        self.summary.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.table = QTableWidget(0, 1)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.verticalHeader().setVisible(False)
        self.table.setToolTip("click a column to sort; click a row to view that image")
        self.confusion = QTableWidget(0, 0)
        self.confusion.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.confusion.setToolTip("pixel counts: rows are the truth, columns the prediction")

        paths = QHBoxLayout()
        paths.addWidget(QLabel("Images"))
        paths.addWidget(self.images, 1)
        paths.addWidget(QLabel("Ground truth"))
        paths.addWidget(self.truth, 1)
        paths.addWidget(self.run_button)
        paths.addWidget(self.cancel_button)
        paths.addWidget(self.export_button)
        # The summary and the (small, K x K) confusion matrix side by side on top; the
        # per-image table below gets the full width for its Dice/IoU/HD columns.
        self.confusion.setSizeAdjustPolicy(QAbstractScrollArea.AdjustToContents)
        self.confusion.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.confusion.setVerticalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        self.confusion.setSizePolicy(QSizePolicy.Maximum, QSizePolicy.Maximum)
        self.confusion_caption = QLabel("Confusion matrix (pixels):\nrows = truth, "
                                        "columns = prediction")
        self.confusion_caption.setVisible(False)
        self.confusion.setVisible(False)
        matrix = QVBoxLayout()
        matrix.addWidget(self.confusion_caption)
        matrix.addWidget(self.confusion)
        matrix.addStretch(1)
        top = QHBoxLayout()
        top.addWidget(self.summary, 1, Qt.AlignTop)
        top.addLayout(matrix)
        layout = QVBoxLayout(self)
        layout.addLayout(paths)
        layout.addWidget(self.progress)
        self.hint = QLabel("Worst cases first. Click a row to see that image segmented; "
                           "click a column title to sort by it.")
        self.hint.setStyleSheet("color: #666;")
        self.hint.setVisible(False)
        layout.addLayout(top)
        layout.addWidget(self.hint)
        layout.addWidget(self.table, 1)

        self.run_button.clicked.connect(self._on_run_click)
        self.cancel_button.clicked.connect(self.cancel_requested)
        self.export_button.clicked.connect(self._on_export_click)
        self.table.cellClicked.connect(self._on_row_click)

    def set_running(self, running: bool) -> None:
        self.run_button.setEnabled(not running)
        self.cancel_button.setEnabled(running)
        self.progress.setVisible(running)
        if running:
            self.progress.setValue(0)
            self.summary.setText("Evaluating…")

    def set_idle(self) -> None:
        self.set_running(False)

    def show_failure(self, message: str, _details: str = "") -> None:
        self.summary.setText(message)

    def set_progress(self, done: int, total: int, message: str = "") -> None:
        self.progress.setMaximum(max(total, 1))
        self.progress.setValue(done)
        self.progress.setFormat(f"%v / %m  {message}")

    def _on_run_click(self) -> None:
        self.run_requested.emit(self.images.text(), self.truth.text())

    def _on_export_click(self) -> None:
        if self.report is None:
            return
        folder = QFileDialog.getExistingDirectory(self, "Export the evaluation CSV files to")
        if folder:
            table, _ = self.report.write_csv(folder)
            self.summary.setText(self.summary.text() + f"\nExported to {table.parent}")

    def _on_row_click(self, row: int, _column: int) -> None:
        item = self.table.item(row, 0)
        if item is not None:
            self.view_requested.emit(item.data(Qt.UserRole))

    def show_report(self, report: EvaluationReport) -> None:
        """Fill the table worst first (by the first foreground class's Dice)."""
        self.report = report
        names = report.class_names
        foreground = list(range(1, len(names)))
        columns = ["Image"] + [f"{METRIC_TITLES[m]} {names[c]}" for m in METRICS
                               for c in foreground]
        self.table.setSortingEnabled(False)
        self.table.clear()
        self.table.setColumnCount(len(columns))
        self.table.setHorizontalHeaderLabels(columns)
        rows = report.worst_first("dice", 1 if len(names) > 1 else 0)
        self.table.setRowCount(len(rows))
        for r, scores in enumerate(rows):
            name = QTableWidgetItem(scores.name)
            name.setData(Qt.UserRole, scores)
            name.setToolTip(str(scores.path))
            self.table.setItem(r, 0, name)
            col = 1
            for metric in METRICS:
                for c in foreground:
                    cell = QtNumberItem(float(scores.metric(metric)[c]))
                    if metric == "dice" and cell.value < POOR_DICE:
                        cell.setBackground(POOR_TINT)
                    self.table.setItem(r, col, cell)
                    col += 1
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setSortingEnabled(True)
        self.table.sortItems(1, Qt.AscendingOrder)
        self._show_confusion(report)
        self.summary.setText(self.summary_text(report))
        self.export_button.setEnabled(bool(report.rows))
        self.hint.setVisible(bool(report.rows))

    @staticmethod
    def summary_text(report: EvaluationReport) -> str:
        lines = []
        for c in range(1, len(report.class_names)):
            parts = []
            for metric in METRICS:
                mean, std = report.summary(metric)
                parts.append(f"{METRIC_TITLES[metric]} {mean[c]:.3f} ± {std[c]:.3f}")
            lines.append(f"{report.class_names[c]}: " + ",  ".join(parts))
        head = f"{len(report.rows)} images evaluated"
        if report.failures:
            head += f", {len(report.failures)} failed: " + "; ".join(
                f"{p.name}: {why}" for p, why in report.failures[:3])
        return "\n".join([head, *lines])

    def _show_confusion(self, report: EvaluationReport) -> None:
        matrix = np.asarray(report.confusion)
        k = matrix.shape[0]
        self.confusion.clear()
        self.confusion.setRowCount(k)
        self.confusion.setColumnCount(k)
        self.confusion.setHorizontalHeaderLabels(list(report.class_names))
        self.confusion.setVerticalHeaderLabels(list(report.class_names))
        totals = matrix.sum(axis=1, keepdims=True).clip(min=1)
        for i in range(k):
            for j in range(k):
                item = QTableWidgetItem(f"{int(matrix[i, j])}")
                share = matrix[i, j] / totals[i, 0]
                item.setToolTip(f"{share:.1%} of truth {report.class_names[i]}")
                item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.confusion.setItem(i, j, item)
        self.confusion.resizeColumnsToContents()
        self.confusion.setVisible(True)
        self.confusion_caption.setVisible(True)

