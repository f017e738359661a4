"""The canvas view: grid, zoom/pan/fit, rubber band, palette and library drops, quick add."""

from __future__ import annotations

from typing import TYPE_CHECKING

from PyQt5.QtCore import QEvent, QPoint, QRectF, Qt, QTimer
from PyQt5.QtGui import (
    QBrush,
    QCursor,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPen,
    QPixmap,
    QWheelEvent,
)
from PyQt5.QtWidgets import QGraphicsView, QWidget

from dlp.gui.net import style

if TYPE_CHECKING:
    from dlp.gui.net.editor import NetEditor

PALETTE_MIME = "application/x-dlp-layer-type"
LIBRARY_MIME = "application/x-dlp-net-library-entry"
READABLE_SCALE = 0.6  # the smallest zoom at which node text is comfortably readable
BAND_SCALE = 0.5  # a tall net's top band may go this small to show its whole width


_GRID: list[QBrush] = []


def _grid_brush() -> QBrush:
    """A 5-by-5-cell tile of the canvas grid (minor lines, a major line every 5 cells)."""
    if not _GRID:
        step = style.GRID_STEP
        tile = QPixmap(step * 5, step * 5)
        tile.fill(style.CANVAS_BACKGROUND)
        painter = QPainter(tile)
        for i in range(5):
            painter.setPen(QPen(style.GRID_MAJOR if i == 0 else style.GRID_MINOR, 1))
            painter.drawLine(i * step, 0, i * step, tile.height())
            painter.drawLine(0, i * step, tile.width(), i * step)
        painter.end()
        _GRID.append(QBrush(tile))
    return _GRID[0]


class NetView(QGraphicsView):
    def __init__(self, editor: NetEditor, parent: QWidget | None = None) -> None:
        super().__init__(editor.scene, parent)
        self.editor = editor
        self.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
        self.setDragMode(QGraphicsView.RubberBandDrag)
        self.setRubberBandSelectionMode(Qt.IntersectsItemShape)
        self.setTransformationAnchor(QGraphicsView.AnchorUnderMouse)
        self.setViewportUpdateMode(QGraphicsView.SmartViewportUpdate)
        self.setAcceptDrops(True)
        self.setFocusPolicy(Qt.StrongFocus)
        self._pan_from: QPoint | None = None
        self._start_pending = False
        for bar in (self.horizontalScrollBar(), self.verticalScrollBar()):
            bar.sliderPressed.connect(self._on_user_scroll)
        self._rect_timer = QTimer(self)  # one update per burst (a layout moves every node)
        self._rect_timer.setSingleShot(True)
        self._rect_timer.setInterval(0)
        self._rect_timer.timeout.connect(self.update_scene_rect)
        editor.doc.changed.connect(self._rect_timer.start)
        editor.doc.node_moved.connect(lambda *_: self._rect_timer.start())

    def update_scene_rect(self) -> None:
        """The canvas reaches well past the net, so it can be panned in every direction."""
        margin = 1500.0
        rect = self.scene().itemsBoundingRect().adjusted(-margin, -margin, margin, margin)
        self.scene().setSceneRect(rect)

    # -- background ----------------------------------------------------------------
    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        if self.transform().m11() * style.GRID_STEP < 6:  # too dense to help when zoomed out
            painter.fillRect(rect, style.CANVAS_BACKGROUND)
        else:  # one tiled pixmap: drawn by Qt, cheap to repaint while dragging
            painter.fillRect(rect, _grid_brush())

    # -- zoom and pan --------------------------------------------------------------
    def zoom(self, factor: float) -> None:
        self._start_pending = False
        scale = self.transform().m11() * factor
        if 0.05 <= scale <= 4.0:
            self.scale(factor, factor)

    def zoom_in(self) -> None:
        self.zoom(1.25)

    def zoom_out(self) -> None:
        self.zoom(0.8)

    def fit_all(self) -> None:
        self._start_pending = False
        self._fit(self.scene().itemsBoundingRect().adjusted(-30, -30, 30, 30))

    def _fit(self, rect: QRectF) -> None:
        self.update_scene_rect()
        if rect.isValid():
            self.fitInView(rect, Qt.KeepAspectRatio)
            if self.transform().m11() > 1.0:  # never blow a small net up past 100 %
                self.resetTransform()
                self.centerOn(rect.center())

    def show_start(self) -> None:
        """The view a freshly opened net gets: all of it, centred, when it is readable
        that way; else its top (where the data comes in) at a readable zoom, like Netron.

        The view is laid out again whenever its size changes until the user zooms, pans
        or clicks: a net opened before the window is shown is fitted to the final size.
        """
        self._start_pending = True
        self._apply_start()

    def _apply_start(self) -> None:
        rect = self.scene().itemsBoundingRect().adjusted(-30, -30, 30, 30)
        viewport = self.viewport().rect()
        if not rect.isValid() or viewport.width() < 2 or viewport.height() < 2:
            return
        self.update_scene_rect()
        whole = min(viewport.width() / rect.width(), viewport.height() / rect.height())
        if whole >= READABLE_SCALE:
            self._fit(rect)
            return
        # Too tall (or wide) to read whole: the top band, as wide as fits, never below a
        # readable zoom nor above 100 %.
        scale = min(1.0, max(BAND_SCALE, viewport.width() / rect.width()))
        self.resetTransform()
        self.scale(scale, scale)
        visible = self.mapToScene(viewport).boundingRect()
        self.centerOn(rect.center().x(), rect.top() + visible.height() / 2)

    def _on_user_scroll(self) -> None:
        self._start_pending = False

    @property
    def start_pending(self) -> bool:
        """True while the view still shows the opening fit (the user has not moved it)."""
        return self._start_pending

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        if self._start_pending:
            self._apply_start()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._start_pending:
            self._apply_start()

    def wheelEvent(self, event: QWheelEvent) -> None:
        if event.modifiers() & Qt.ShiftModifier:
            self._start_pending = False
            super().wheelEvent(event)
            return
        self.zoom(1.0015 ** event.angleDelta().y())

    def mousePressEvent(self, event: QMouseEvent) -> None:
        self._start_pending = False
        if event.button() == Qt.MiddleButton:
            self._pan_from = event.pos()
            self.viewport().setCursor(Qt.ClosedHandCursor)
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None:
            delta = event.pos() - self._pan_from
            self._pan_from = event.pos()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if self._pan_from is not None and event.button() == Qt.MiddleButton:
            self._pan_from = None
            self.viewport().unsetCursor()
            return
        super().mouseReleaseEvent(event)

    # -- keys ----------------------------------------------------------------------
    def event(self, event: QEvent) -> bool:
        # Tab belongs to quick add here, not to focus navigation.
        if event.type() == QEvent.KeyPress and event.key() == Qt.Key_Tab:
            self.keyPressEvent(event)
            return True
        return super().event(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        step = {Qt.Key_Left: (-1, 0), Qt.Key_Right: (1, 0), Qt.Key_Up: (0, -1),
                Qt.Key_Down: (0, 1)}.get(event.key())
        if step is not None and self.editor.scene.selected_node_ids():
            size = style.GRID_STEP if event.modifiers() & Qt.ShiftModifier else 2
            self.editor.nudge_selected(step[0] * size, step[1] * size)
            return
        if event.key() == Qt.Key_Tab:
            cursor = self.mapFromGlobal(QCursor.pos())
            if not self.viewport().rect().contains(cursor):
                cursor = self.viewport().rect().center()
            self.editor.request_quick_add(self.mapToScene(cursor))
            return
        super().keyPressEvent(event)

    # -- drops ---------------------------------------------------------------------
    def _accepts(self, event) -> bool:
        mime = event.mimeData()
        return mime.hasFormat(PALETTE_MIME) or mime.hasFormat(LIBRARY_MIME)

    def dragEnterEvent(self, event) -> None:
        if self._accepts(event):
            event.acceptProposedAction()
        else:
            super().dragEnterEvent(event)

    def dragMoveEvent(self, event) -> None:
        if self._accepts(event):
            event.acceptProposedAction()
        else:
            super().dragMoveEvent(event)

    def dropEvent(self, event) -> None:
        self._start_pending = False
        mime = event.mimeData()
        position = self.mapToScene(event.pos())
        if mime.hasFormat(PALETTE_MIME):
            type_name = bytes(mime.data(PALETTE_MIME)).decode("utf-8")
            self.editor.drop_layer_type(type_name, position)
            event.acceptProposedAction()
        elif mime.hasFormat(LIBRARY_MIME):
            entry = bytes(mime.data(LIBRARY_MIME)).decode("utf-8")
            self.editor.drop_library_entry(entry, position)
            event.acceptProposedAction()
        else:
            super().dropEvent(event)
