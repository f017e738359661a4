"""A grid of image/label overlays (see :mod:`dlp.gui.data.samples`)."""

from __future__ import annotations

import numpy as np
from PyQt5.QtCore import Qt
from PyQt5.QtGui import QImage, QPixmap
from PyQt5.QtWidgets import QGridLayout, QLabel, QScrollArea, QVBoxLayout, QWidget

from dlp.gui.data.samples import SamplePair


def rgb_pixmap(rgb: np.ndarray, size: int) -> QPixmap:
    """A ``(H, W, 3)`` uint8 array as a pixmap scaled to ``size`` (nearest: no blur on masks)."""
    rgb = np.ascontiguousarray(rgb, dtype=np.uint8)
    height, width = rgb.shape[:2]
    image = QImage(rgb.data, width, height, 3 * width, QImage.Format_RGB888).copy()
    return QPixmap.fromImage(image).scaled(size, size, Qt.KeepAspectRatio, Qt.FastTransformation)


def class_name(index: int, names: list[str] | None) -> str:
    """The dataset's name of label value ``index`` ("LV cavity"), else "class N"."""
    index = int(index)
    return names[index] if names and 0 <= index < len(names) else f"class {index}"


class QtSampleTile(QWidget):
    def __init__(self, sample: SamplePair, size: int, parent: QWidget | None = None,
                 class_names: list[str] | None = None) -> None:
        super().__init__(parent)
        self.sample = sample
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(2)
        self.picture = QLabel()
        self.picture.setPixmap(rgb_pixmap(sample.overlay(), size))
        self.picture.setAlignment(Qt.AlignCenter)
        classes = sample.label_classes()
        record = f"#{int(sample.key)}" if sample.key.isdigit() else sample.key
        names = [class_name(index, class_names) for index in classes]
        self.caption = QLabel(
            f"{sample.split} {record}<br><small>"
            + (f"shows {', '.join(names)}" if names else "background only")
            + "</small>")
        self.caption.setAlignment(Qt.AlignCenter)
        self.caption.setToolTip(f"LMDB key {sample.key} in the {sample.split} databases")
        self.caption.setProperty("role", "hint")
        layout.addWidget(self.picture)
        layout.addWidget(self.caption)


class QtSampleGrid(QScrollArea):
    """Tiles in as many columns as fit the width; :meth:`set_samples` replaces them."""

    def __init__(self, parent: QWidget | None = None, columns: int = 4, size: int = 144) -> None:
        super().__init__(parent)
        self.columns = columns
        self.tile_size = size
        self.setWidgetResizable(True)
        self._inner = QWidget()
        self._grid = QGridLayout(self._inner)
        self._grid.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.setWidget(self._inner)
        self.tiles: list[QtSampleTile] = []
        self.message = QLabel()
        self.message.setProperty("role", "hint")
        self.message.setWordWrap(True)
        self._grid.addWidget(self.message, 0, 0, 1, columns)

    def clear(self, message: str = "") -> None:
        for tile in self.tiles:
            self._grid.removeWidget(tile)
            tile.deleteLater()
        self.tiles = []
        self.message.setText(message)
        self.message.setVisible(bool(message))

    def set_samples(self, samples: list[SamplePair], class_names: list[str] | None = None
                    ) -> None:
        """Show ``samples``; ``class_names`` (background first) name the label values."""
        self.clear("" if samples else "This split holds no records.")
        for sample in samples:
            self.tiles.append(QtSampleTile(sample, self.tile_size, self._inner, class_names))
        self._place_tiles()

    def _fitting_columns(self) -> int:
        tile = self.tiles[0].sizeHint().width() if self.tiles else self.tile_size
        margins = self._grid.contentsMargins()
        room = self.viewport().width() - margins.left() - margins.right()
        return max(1, (room + self._grid.spacing()) // (tile + self._grid.spacing()))

    def _place_tiles(self) -> None:
        self.columns = self._fitting_columns()
        for tile in self.tiles:
            self._grid.removeWidget(tile)
        for index, tile in enumerate(self.tiles):
            self._grid.addWidget(tile, 1 + index // self.columns, index % self.columns)

    def resizeEvent(self, event) -> None:  # reflow the tiles to the new width
        super().resizeEvent(event)
        if self.tiles and self._fitting_columns() != self.columns:
            self._place_tiles()
