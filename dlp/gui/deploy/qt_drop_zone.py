"""The drop zone: drop image files or folders (or click to choose them)."""

from __future__ import annotations

from PyQt5.QtCore import QMimeData, QRectF, Qt, pyqtSignal
from PyQt5.QtGui import (
    QColor,
    QDragEnterEvent,
    QDropEvent,
    QMouseEvent,
    QPainter,
    QPaintEvent,
    QPen,
    QPixmap,
)
from PyQt5.QtWidgets import QFileDialog, QFrame, QLabel, QMenu, QVBoxLayout, QWidget

FILE_FILTER = (
    "Images (*.dcm *.dicom *.ima *.nii *.nii.gz *.png *.jpg *.jpeg *.tif *.tiff);;All files (*)"
)


def local_paths(mime: QMimeData) -> list[str]:
    """The local files/folders a drag carries (URLs of other kinds are left out)."""
    if not mime.hasUrls():
        return []
    return [u.toLocalFile() for u in mime.urls() if u.isLocalFile()]


class QtDropZone(QFrame):
    """Emits ``paths_dropped(list[str])`` for dropped local files/folders or chosen ones.

    ``paths_entered(list[str])`` when a drag of local files enters (they may be read
    before the drop), ``drag_left()`` when it leaves without a drop.
    """

    paths_dropped = pyqtSignal(list)
    paths_entered = pyqtSignal(list)
    drag_left = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setAcceptDrops(True)
        self.setObjectName("deployDropZone")
        self.highlighted = False  # a drag with files is over the zone
        self._borders: dict[tuple[int, int, float, bool], QPixmap] = {}
        self.setMinimumHeight(70)
        self.setCursor(Qt.PointingHandCursor)
        self.label = QLabel(
            "Drop DICOM, NIfTI, PNG/JPEG/TIFF files or folders here\n(or click to open)"
        )
        self.label.setAlignment(Qt.AlignCenter)
        self.label.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addWidget(self.label)

    def _set_highlight(self, on: bool) -> None:
        # Repainted with the next frame: a style sheet change here re-polished the widget
        # tree on every drag event, a millisecond taken from the drop's latency.
        if on != self.highlighted:
            self.highlighted = on
            self.update()

    def paintEvent(self, event: QPaintEvent) -> None:
        QPainter(self).drawPixmap(0, 0, self._border())

    def _border(self) -> QPixmap:
        """The dashed frame, drawn once per size and state: drawing it antialiased took
        0.7 ms, in the GUI thread just as a drop's image is being read."""
        ratio = self.devicePixelRatioF()
        key = (self.width(), self.height(), ratio, self.highlighted)
        border = self._borders.get(key)
        if border is None:
            if any(k[:3] != key[:3] for k in self._borders):
                self._borders.clear()  # resized: the other size's frames are done with
            border = QPixmap(round(self.width() * ratio), round(self.height() * ratio))
            border.setDevicePixelRatio(ratio)
            border.fill(Qt.transparent)
            painter = QPainter(border)
            painter.setRenderHint(QPainter.Antialiasing)
            painter.setPen(QPen(QColor("#3a8ee6" if self.highlighted else "#888"), 2,
                                Qt.DashLine))
            painter.drawRoundedRect(QRectF(self.rect()).adjusted(1, 1, -1, -1), 6, 6)
            painter.end()
            self._borders[key] = border
        return border

    def dragEnterEvent(self, event: QDragEnterEvent) -> None:
        paths = local_paths(event.mimeData())
        if paths:
            event.acceptProposedAction()
            self._set_highlight(True)
            self.paths_entered.emit(paths)
        else:
            event.ignore()

    def dragLeaveEvent(self, event) -> None:
        self._set_highlight(False)
        self.drag_left.emit()
        super().dragLeaveEvent(event)

    def dropEvent(self, event: QDropEvent) -> None:
        self._set_highlight(False)
        paths = local_paths(event.mimeData())
        if not paths:
            event.ignore()
            return
        event.acceptProposedAction()
        self.paths_dropped.emit(paths)

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.LeftButton:
            return super().mousePressEvent(event)
        menu = QMenu(self)
        menu.addAction("Open files…", self.open_files)
        menu.addAction("Open folder…", self.open_folder)
        menu.exec_(event.globalPos())
        return None

    def open_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(self, "Open images", "", FILE_FILTER)
        if files:
            self.paths_dropped.emit(files)

    def open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open a folder of images")
        if folder:
            self.paths_dropped.emit([folder])
