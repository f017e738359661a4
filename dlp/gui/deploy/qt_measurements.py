"""The measurements table: area per slice and class, volumes, Dice/Hausdorff with truth."""

from __future__ import annotations

from collections.abc import Sequence

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import QAbstractItemView, QHeaderView, QTableWidget, QTableWidgetItem

from dlp.deploy.measure import MEASUREMENT_COLUMNS

HEADERS = {
    "input": "Input", "slice": "Slice", "class": "Class", "pixels": "Pixels",
    "area_mm2": "Area (mm²)", "volume_ml": "Volume (mL)", "dice": "Dice",
    "hausdorff_mm": "Hausdorff (mm)",
}


class QtMeasurementsTable(QTableWidget):
    """Rows of :func:`dlp.deploy.measure.measurement_rows`; clicking a slice row selects it."""

    slice_requested = pyqtSignal(int)  # 0-based slice index

    def __init__(self, parent=None) -> None:
        super().__init__(0, len(MEASUREMENT_COLUMNS), parent)
        self.setHorizontalHeaderLabels([HEADERS[c] for c in MEASUREMENT_COLUMNS])
        self.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.verticalHeader().setVisible(False)
        self.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeToContents)
        self.cellClicked.connect(self._on_cell_clicked)
        self._rows: list[dict[str, object]] = []
        self._set_columns(spacing_known=True)

    def set_rows(self, rows: Sequence[dict[str, object]], spacing_known: bool = True) -> None:
        self._rows = list(rows)
        self.setSortingEnabled(False)
        self.setRowCount(len(self._rows))
        if not self._rows:
            # Cleared: a drop's rows follow in milliseconds, so the columns stay as they
            # are (resizing them to contents would only delay the overlay).
            return
        for r, row in enumerate(self._rows):
            for c, key in enumerate(MEASUREMENT_COLUMNS):
                item = QTableWidgetItem(_text(row.get(key)))
                value = row.get(key)
                if isinstance(value, (int, float)):
                    item.setData(Qt.UserRole, float(value))
                    item.setTextAlignment(Qt.AlignRight | Qt.AlignVCenter)
                self.setItem(r, c, item)
        self._set_columns(spacing_known)

    def _set_columns(self, spacing_known: bool) -> None:
        unit = "Area (mm²)" if spacing_known else "Area (px², no pixel spacing)"
        self.setHorizontalHeaderItem(MEASUREMENT_COLUMNS.index("area_mm2"),
                                     QTableWidgetItem(unit))
        # Only columns with something to read: the input is named in the list beside,
        # a single image has no volume, and Dice/Hausdorff need a ground truth.
        for c, key in enumerate(MEASUREMENT_COLUMNS):
            empty = all(row.get(key) is None for row in self._rows)
            self.setColumnHidden(c, key == "input" or (empty and bool(self._rows)))

    def rows(self) -> list[dict[str, object]]:
        return list(self._rows)

    def _on_cell_clicked(self, row: int, _column: int) -> None:
        if 0 <= row < len(self._rows) and isinstance(self._rows[row].get("slice"), int):
            self.slice_requested.emit(int(self._rows[row]["slice"]) - 1)


def _text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, float):
        if value != value:  # nan
            return "-"
        return f"{value:.4g}" if abs(value) < 1e4 else f"{value:.0f}"
    return str(value)
