"""The segmentation viewer: image with window/level, coloured overlay, probability maps.

Two pyqtgraph views share zoom and pan: the left shows the image alone and the right
the image under its segmentation (side-by-side layout), or the right one alone
(overlay layout).  Right-drag adjusts window/level (horizontal = width, vertical =
level, as in radiology viewers); the wheel zooms, left-drag pans.  Hovering reads out
the pixel's value, class and probability.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import QPointF, QRectF, Qt, QTimer, pyqtSignal
from PyQt5.QtGui import QImage, QPainter
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QGraphicsItem,
    QHBoxLayout,
    QLabel,
    QSlider,
    QStackedWidget,
    QVBoxLayout,
    QWidget,
)

from dlp.deploy import overlay
from dlp.deploy.labels import LabelMap

LAYOUTS = ("Overlay", "Side by side")
WINDOW_DEFAULT = "File default"
WINDOW_AUTO = "Auto (percentiles)"
WINDOW_FULL = "Full range"
HINT_EMPTY = "Drop an image to segment it."
PLACEHOLDER = ("No image yet.\n\nSwitch the engine on and drop DICOM, NIfTI, PNG or TIFF "
               "files or folders here: the segmentation appears in this view, its areas and "
               "volumes below.")
HINT_SHOWN = ("Hover for value, class and probability; wheel zooms, drag pans, "
              "right-drag sets window/level.")


class QtWindowLevelViewBox(pg.ViewBox):
    """A ViewBox whose right-button drag changes window/level instead of zooming."""

    window_dragged = pyqtSignal(float, float)  # dx, dy in screen pixels since last event

    def __init__(self) -> None:
        super().__init__(invertY=True, lockAspect=True, enableMenu=False)

    def mouseDragEvent(self, ev, axis=None) -> None:
        if ev.button() == Qt.RightButton:
            ev.accept()
            delta = ev.pos() - ev.lastPos()
            self.window_dragged.emit(float(delta.x()), float(delta.y()))
            return
        super().mouseDragEvent(ev, axis)


class QtPictureItem(QGraphicsItem):
    """A picture of ``0xFFRRGGBB`` words, pixel (row r, column c) at x = c, y = r.

    Qt draws its own RGB32 format as it is; pyqtgraph's grey image plus an RGBA
    overlay were both converted on every paint, three times the cost of drawing the
    image and its overlay blended into one picture beforehand (numpy, a table look-up).
    """

    def __init__(self) -> None:
        super().__init__()
        self.image: np.ndarray | None = None  # (H, W) uint32, kept alive for the QImage
        self._qimage: QImage | None = None
        self._after_paint: list[Callable[[], Any]] = []

    def call_after_paint(self, callback: Callable[[], Any]) -> None:
        """Call ``callback`` once the picture has next been drawn on screen."""
        self._after_paint.append(callback)

    def set_words(self, words: np.ndarray) -> None:
        words = np.ascontiguousarray(words, dtype=np.uint32)
        if self.image is None or self.image.shape != words.shape:
            self.prepareGeometryChange()
        h, w = words.shape
        self.image = words
        self._qimage = QImage(words.data, w, h, 4 * w, QImage.Format_RGB32)
        self.update()

    def clear(self) -> None:
        self.prepareGeometryChange()
        self.image = self._qimage = None
        self.update()

    def boundingRect(self) -> QRectF:
        if self.image is None:
            return QRectF()
        h, w = self.image.shape
        return QRectF(0, 0, w, h)

    def paint(self, painter: QPainter, *_: Any) -> None:
        if self._qimage is not None:
            painter.drawImage(self.boundingRect(), self._qimage)
        callbacks, self._after_paint = self._after_paint, []
        for callback in callbacks:
            callback()


class QtLegend(QWidget):
    """One checkbox per foreground class with its colour; unchecked classes are hidden."""

    visibility_changed = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._layout = QHBoxLayout(self)
        self._layout.setContentsMargins(0, 0, 0, 0)
        self._boxes: list[QCheckBox] = []

    def set_labels(self, labels: LabelMap) -> None:
        for box in self._boxes:
            box.setParent(None)
            box.deleteLater()
        self._boxes = []
        while self._layout.count():
            item = self._layout.takeAt(0)
            if item.widget() is not None:
                item.widget().deleteLater()
        for index, (name, (r, g, b)) in enumerate(zip(labels.names, labels.colors,
                                                       strict=True)):
            if index == 0:
                continue
            box = QCheckBox(name)
            box.setChecked(True)
            box.setStyleSheet(
                f"QCheckBox::indicator:checked {{ background: rgb({r},{g},{b}); "
                "border: 1px solid #444; }"
            )
            box.setToolTip(f"show or hide {name}")
            box.toggled.connect(self.visibility_changed)
            self._layout.addWidget(box)
            self._boxes.append(box)
        self._layout.addStretch(1)

    def visible(self) -> list[bool]:
        return [True] + [box.isChecked() for box in self._boxes]


class QtSegmentationViewer(QWidget):
    """Shows one segmented volume slice by slice.  Call :meth:`set_result`."""

    slice_changed = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._image: np.ndarray | None = None       # (S, H, W[, 3])
        self._image_source: Any = None              # the array given to set_result
        self._labels: np.ndarray | None = None      # (S, H, W)
        self._probs: np.ndarray | None = None       # (S, K, H, W)
        self._label_map = LabelMap.default(2)
        self._file_window: tuple[float, float] | None = None
        self._file_window_items: dict[str, tuple[float, float]] = {}  # combo text → window
        self._window = (0.0, 1.0)
        self._slice = 0

        self.graphics = pg.GraphicsLayoutWidget()
        self.graphics.setBackground("#111")
        # Drops over the image go to the Deploy tab (the scene has no use for them).
        self.graphics.setAcceptDrops(False)
        self.graphics.viewport().setAcceptDrops(False)
        # Before the first image: say what will appear here, not a black void.
        self.placeholder = QLabel(PLACEHOLDER)
        self.placeholder.setAlignment(Qt.AlignCenter)
        self.placeholder.setWordWrap(True)
        self.placeholder.setObjectName("deployViewerPlaceholder")
        self.placeholder.setStyleSheet(
            "QLabel#deployViewerPlaceholder { color: #555; background: #f4f4f4; "
            "border: 1px solid #ddd; font-size: 14px; padding: 24px; }")
        self.stack = QStackedWidget()
        self.stack.addWidget(self.placeholder)
        self.stack.addWidget(self.graphics)
        self.image_view = QtWindowLevelViewBox()
        self.result_view = QtWindowLevelViewBox()
        self.graphics.addItem(self.image_view, row=0, col=0)
        self.graphics.addItem(self.result_view, row=0, col=1)
        self.result_view.setXLink(self.image_view)
        self.result_view.setYLink(self.image_view)
        # Left: the image alone (side-by-side layout); right: the image under its result.
        self.image_picture = QtPictureItem()
        self.result_picture = QtPictureItem()
        self.image_view.addItem(self.image_picture)
        self.result_view.addItem(self.result_picture)
        for view in (self.image_view, self.result_view):
            view.window_dragged.connect(self._on_window_drag)
        self.graphics.scene().sigMouseMoved.connect(self._on_mouse_moved)

        self.layout_box = QComboBox()
        self.layout_box.addItems(LAYOUTS)
        self.layout_box.setToolTip("overlay on the image, or image and result side by side")
        self.display_box = QComboBox()
        self.display_box.setSizeAdjustPolicy(QComboBox.AdjustToContents)
        self.display_box.setToolTip("show the class mask, or one class's probability map")
        self.display_box.addItem("Class mask")
        self.opacity_slider = QSlider(Qt.Horizontal)
        self.opacity_slider.setRange(0, 100)
        self.opacity_slider.setValue(45)
        self.opacity_slider.setMinimumWidth(90)
        self.opacity_slider.setMaximumWidth(140)
        self.opacity_slider.setToolTip("overlay opacity")
        self.outline_box = QCheckBox("Outline only")
        self.window_box = QComboBox()
        self.window_box.setToolTip("window/level preset; right-drag on the image to adjust")
        self.window_box.addItems([WINDOW_DEFAULT, WINDOW_AUTO, WINDOW_FULL,
                                  *overlay.WINDOW_PRESETS])
        self.window_label = QLabel()
        self.legend = QtLegend()

        self.slice_slider = QSlider(Qt.Horizontal)
        self.slice_slider.setRange(0, 0)
        self.slice_label = QLabel("slice 1 / 1")
        self.readout = QLabel(HINT_EMPTY)
        self.readout.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.readout.setMinimumWidth(200)

        controls = QHBoxLayout()
        controls.addWidget(QLabel("Layout"))
        controls.addWidget(self.layout_box)
        controls.addWidget(QLabel("Show"))
        controls.addWidget(self.display_box)
        controls.addWidget(QLabel("Opacity"))
        controls.addWidget(self.opacity_slider)
        controls.addWidget(self.outline_box)
        controls.addStretch(1)
        second = QHBoxLayout()
        second.addWidget(self.legend, 1)
        second.addWidget(QLabel("Window"))
        second.addWidget(self.window_box)
        second.addWidget(self.window_label)
        slicer = QHBoxLayout()
        slicer.addWidget(self.slice_label)
        slicer.addWidget(self.slice_slider, 1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(controls)
        layout.addLayout(second)
        layout.addWidget(self.stack, 1)
        layout.addLayout(slicer)
        layout.addWidget(self.readout)

        self.layout_box.currentIndexChanged.connect(self._on_layout_change)
        self.display_box.currentIndexChanged.connect(self._on_display_change)
        self.opacity_slider.valueChanged.connect(self._on_display_change)
        self.outline_box.toggled.connect(self._on_display_change)
        self.legend.visibility_changed.connect(self._on_display_change)
        self.window_box.currentTextChanged.connect(self._on_window_preset_change)
        self.slice_slider.valueChanged.connect(self._on_slice_change)
        self._on_layout_change()

    # ------------------------------------------------------------------ content
    def set_result(
        self,
        image: np.ndarray,
        labels: np.ndarray | None,
        probabilities: np.ndarray | None,
        label_map: LabelMap,
        window: tuple[float, float] | None = None,
        file_windows: list[tuple[float, float]] | None = None,
    ) -> None:
        """Show a volume ``(S, H, W[, 3])`` with its masks ``(S, H, W)`` and probabilities.

        ``window`` is the file's default (center, width); ``file_windows`` all the
        windows the file offers (a DICOM may carry several, e.g. soft tissue and bone).
        """
        first = self._image is None or self._image.shape[1:3] != np.asarray(image).shape[1:3]
        # The image drawn while the net ran gets its overlay: the left view stays as it is.
        same_image = image is self._image_source and self._labels is None
        self._image_source = image
        self._image = np.asarray(image)
        self._labels = None if labels is None else np.asarray(labels)
        self._probs = None if probabilities is None else np.asarray(probabilities)
        if label_map != self._label_map or self.display_box.count() <= 1:
            self._label_map = label_map
            self.legend.set_labels(label_map)
            with _blocked(self.display_box):
                self.display_box.clear()
                self.display_box.addItem("Class mask")
                for name in label_map.names[1:]:
                    self.display_box.addItem(f"Probability: {name}")
        self._file_window = window
        self._set_file_windows(file_windows or [])
        if not same_image:  # keep a window the user set while the net was running
            self._apply_window_preset(self.window_box.currentText())
        with _blocked(self.slice_slider):
            self.slice_slider.setRange(0, max(0, self._image.shape[0] - 1))
            self.slice_slider.setValue(min(self._slice, self._image.shape[0] - 1))
        self._slice = self.slice_slider.value()
        self.readout.setText(HINT_SHOWN)
        self.stack.setCurrentWidget(self.graphics)
        if same_image:
            self._render_result()
        else:
            self._render()
        if first:
            self.reset_zoom()

    def reset_zoom(self) -> None:
        """Fit the whole image (the views are linked, so both follow)."""
        if self._image is None:
            return
        h, w = self._image.shape[1:3]
        self.result_view.setRange(xRange=(0, w), yRange=(0, h), padding=0.02)

    def clear(self) -> None:
        self._image = self._labels = self._probs = self._image_source = None
        for item in (self.image_picture, self.result_picture):
            item.clear()
        self.readout.setText(HINT_EMPTY)
        self.stack.setCurrentWidget(self.placeholder)

    @property
    def label_map(self) -> LabelMap:
        return self._label_map

    @property
    def current_slice(self) -> int:
        return self._slice

    def set_slice(self, index: int) -> None:
        self.slice_slider.setValue(index)

    @property
    def window(self) -> tuple[float, float]:
        return self._window

    def set_window(self, center: float, width: float) -> None:
        self._window = (float(center), max(float(width), 1e-6))
        self._update_window_label()
        self._render()

    def call_after_paint(self, callback: Callable[[], Any]) -> None:
        """Call ``callback`` once the result view has next been drawn on screen."""
        self.result_picture.call_after_paint(callback)

    def shown_picture(self) -> np.ndarray | None:
        """``(H, W, 3)`` uint8: the right view's picture as the user sees it."""
        words = self.result_picture.image
        if words is None:
            return None
        return np.stack([(words >> shift) & 0xFF for shift in (16, 8, 0)],
                        axis=-1).astype(np.uint8)

    def overlay_rgba(self) -> np.ndarray | None:
        """The RGBA layer blended over the image in the right view (what the user sees)."""
        if self._labels is None:
            return None
        opacity = self.opacity_slider.value() / 100.0
        shown = self._probability_class()
        if shown is None:
            return overlay.overlay_rgba(self._labels[self._slice], self._label_map.colors,
                                        opacity, self.outline_box.isChecked(),
                                        self.legend.visible())
        return overlay.probability_rgba(self._probs[self._slice, shown],
                                        self._label_map.colors[shown], opacity)

    def _probability_class(self) -> int | None:
        """The class whose probability map is shown; None for the class mask."""
        mode = self.display_box.currentIndex()
        return mode if mode > 0 and self._probs is not None else None

    # ------------------------------------------------------------------ handlers
    def _on_layout_change(self) -> None:
        side_by_side = self.layout_box.currentText() == "Side by side"
        self.image_view.setVisible(side_by_side)
        layout = self.graphics.ci.layout
        layout.setColumnStretchFactor(0, 1 if side_by_side else 0)
        layout.setColumnMaximumWidth(0, 1e6 if side_by_side else 0)
        layout.setColumnStretchFactor(1, 1)
        self._render_image()
        self.reset_zoom()
        # Fit again once the layout has given the views their new sizes.
        QTimer.singleShot(0, self.reset_zoom)

    def _on_display_change(self, *_: Any) -> None:
        self._render_result()

    def _on_slice_change(self, value: int) -> None:
        self._slice = int(value)
        self._render()
        self.slice_changed.emit(self._slice)

    def _on_window_preset_change(self, name: str) -> None:
        self._apply_window_preset(name)
        self._render()

    def _on_window_drag(self, dx: float, dy: float) -> None:
        center, width = self._window
        step = max(width, 1.0) / 256.0
        self.set_window(center - dy * step, max(width + dx * step * 2, 1e-3))

    def _on_mouse_moved(self, scene_pos: QPointF) -> None:
        if self._image is None:
            return
        for view in (self.result_view, self.image_view):
            if view.isVisible() and view.sceneBoundingRect().contains(scene_pos):
                point = view.mapSceneToView(scene_pos)
                self.readout.setText(self.describe_pixel(int(point.y()), int(point.x())))
                return

    # ------------------------------------------------------------------ drawing
    def describe_pixel(self, row: int, col: int) -> str:
        """``row, col: value; class; probability`` for the readout (empty outside the image)."""
        if self._image is None:
            return ""
        h, w = self._image.shape[1:3]
        if not (0 <= row < h and 0 <= col < w):
            return ""
        value = self._image[self._slice, row, col]
        text = f"row {row}, col {col}   value {_format_value(value)}"
        if self._labels is not None:
            cls = int(self._labels[self._slice, row, col])
            name = self._label_map.names[cls] if cls < len(self._label_map) else str(cls)
            text += f"   class {name}"
            if self._probs is not None:
                p = float(self._probs[self._slice, cls, row, col])
                text += f" (p = {p:.3f})"
        return text

    def _set_file_windows(self, windows: list[tuple[float, float]]) -> None:
        """List the file's other windows after the fixed presets (the first is the default)."""
        extra = {f"File window {k}: L {c:g} W {w:g}": (float(c), float(w))
                 for k, (c, w) in enumerate(windows, start=1) if k > 1}
        if extra == self._file_window_items:
            return
        current = self.window_box.currentText()
        with _blocked(self.window_box):
            for name in self._file_window_items:
                self.window_box.removeItem(self.window_box.findText(name))
            self.window_box.addItems(list(extra))
            index = self.window_box.findText(current)
            self.window_box.setCurrentIndex(max(index, 0))
        self._file_window_items = extra

    def _apply_window_preset(self, name: str) -> None:
        if self._image is None:
            return
        current = self._image[min(self._slice, self._image.shape[0] - 1)]
        if name == WINDOW_DEFAULT and self._file_window is not None:
            self._window = self._file_window
        elif name in overlay.WINDOW_PRESETS:
            self._window = overlay.WINDOW_PRESETS[name]
        elif name in self._file_window_items:
            self._window = self._file_window_items[name]
        elif name == WINDOW_FULL:
            lo, hi = float(np.nanmin(current)), float(np.nanmax(current))
            self._window = ((lo + hi) / 2.0, max(hi - lo, 1e-6))
        else:
            self._window = overlay.auto_window(current)
        self._update_window_label()

    def _update_window_label(self) -> None:
        c, w = self._window
        self.window_label.setText(f"L {c:.0f}  W {w:.0f}")

    def _render(self) -> None:
        if self._image is None:
            return
        self.slice_label.setText(f"slice {self._slice + 1} / {self._image.shape[0]}")
        self._render_image()
        self._render_result()

    def _render_image(self) -> None:
        """The left view: the image alone, windowed."""
        # Hidden in the overlay layout: drawing it would only add to the drop → overlay
        # latency (it is drawn when the layout shows it).
        if self._image is None or self.layout_box.currentText() != "Side by side":
            return
        self.image_picture.set_words(overlay.overlay_argb32(
            self._image[self._slice], None, self._label_map.colors, self._window))

    def _render_result(self) -> None:
        """The right view: the image under its class mask or one class's probability."""
        if self._image is None:
            return
        picture = self._image[self._slice]
        colors = self._label_map.colors
        opacity = self.opacity_slider.value() / 100.0
        shown = self._probability_class()
        if self._labels is None:
            words = overlay.overlay_argb32(picture, None, colors, self._window)
        elif shown is None:
            words = overlay.overlay_argb32(
                picture, self._labels[self._slice], colors, self._window, opacity,
                self.outline_box.isChecked(), self.legend.visible())
        else:
            words = overlay.probability_argb32(picture, self._probs[self._slice, shown],
                                               colors[shown], self._window, opacity)
        self.result_picture.set_words(words)

class _blocked:  # noqa: N801 - used like a function
    """Block a widget's signals while the program (not the user) changes it."""

    def __init__(self, widget: QWidget) -> None:
        self._widget = widget

    def __enter__(self) -> None:
        self._old = self._widget.blockSignals(True)

    def __exit__(self, *exc: object) -> None:
        self._widget.blockSignals(self._old)


def _format_value(value: Any) -> str:
    array = np.asarray(value)
    if array.ndim:
        return "(" + ", ".join(_format_value(v) for v in array) + ")"
    v = float(array)
    return f"{v:.0f}" if v == int(v) else f"{v:.4g}"

