"""Live training curves (pyqtgraph): losses and metrics, the learning rate on its own axis.

Curves grow by ``setData`` on views of :class:`dlp.train.curves.GrowingSeries`'
preallocated arrays, with peak downsampling and clip-to-view, so a curve of
100,000 points redraws in a few milliseconds (see bench/bench_train_gui.py).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QFont
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QHBoxLayout,
    QLabel,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from dlp.train.curves import GrowingSeries, LiveCurves, Smoother

#: fixed colours for the curves every segmentation run has
_COLORS = {
    "loss": (31, 119, 180),
    "test/loss": (255, 127, 14),
    "test/accuracy": (44, 160, 44),
    "test/dice": (214, 39, 40),
    "lr": (120, 120, 120),
}
_PALETTE = [(148, 103, 189), (140, 86, 75), (227, 119, 194), (23, 190, 207), (188, 189, 34),
            (127, 127, 127), (255, 187, 120), (152, 223, 138)]
_RUN_COLORS = [(0, 0, 0), (166, 86, 40), (77, 175, 74), (152, 78, 163), (255, 127, 0),
               (55, 126, 184)]


def curve_label(name: str) -> str:
    """``test/dice_per_class[1]`` → ``test dice_per_class[1]``; ``loss`` → ``train loss``."""
    if name == "loss":
        return "train loss"
    if name == "lr":
        return "learning rate"
    return name.replace("/", " ", 1)


def _is_train_output(name: str) -> bool:
    return name.startswith("train/")


class QtCurves(QWidget):
    """The plot, its smoothing and log-scale controls and a hover readout.

    ``set_curves(live)`` binds a :class:`LiveCurves`; ``refresh(names)`` redraws the
    curves that grew.  ``hovered(str)`` gives the readout text under the mouse.
    """

    hovered = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.live: LiveCurves | None = None
        self.items: dict[str, pg.PlotDataItem] = {}
        self.overlay_items: list[pg.PlotDataItem] = []
        self.overlays: dict[str, LiveCurves] = {}
        self.compare_name = "loss"
        self.smoothing = 0.0
        self.best: tuple[int, float, str] | None = None
        self._smoothers: dict[tuple[int, float], Smoother] = {}

        self.plot_widget = pg.PlotWidget(self, background="w")
        self.plot = self.plot_widget.getPlotItem()
        self.plot.showGrid(x=True, y=True, alpha=0.25)
        self.plot.setLabel("bottom", "iteration")
        self.plot.setLabel("left", "loss / metric")
        self.plot.setClipToView(True)
        self.plot.setDownsampling(auto=True, mode="peak")
        for side in ("left", "right", "bottom"):
            self.plot.getAxis(side).enableAutoSIPrefix(False)  # "(x0.001)" confuses
        # The legend sits in a row above the plot, not on it: a segmentation run has six
        # or more curves and a legend box inside the plot hid their ends (where a user
        # looks).  PlotItem's unused title cell (row 0) holds it.
        self.legend = pg.LegendItem(colCount=4, labelTextColor=(40, 40, 40),
                                    labelTextSize="8pt", frame=False, horSpacing=14)
        self.legend.setParentItem(self.plot)
        self.plot.legend = self.legend  # PlotItem.addItem(name=…) files curves into it
        self.plot.layout.removeItem(self.plot.titleLabel)
        self.plot.titleLabel.setVisible(False)
        self.plot.layout.addItem(self.legend, 0, 1)
        # The learning rate gets its own ViewBox and right axis (pyqtgraph MultiplePlotAxes).
        self.lr_view = pg.ViewBox()
        self.plot.showAxis("right")
        self.plot.scene().addItem(self.lr_view)
        self.plot.getAxis("right").linkToView(self.lr_view)
        self.plot.getAxis("right").setLabel("learning rate", color="#787878")
        self.lr_view.setXLink(self.plot)
        self.plot.vb.sigResized.connect(self._sync_lr_view)
        self.best_line = pg.InfiniteLine(angle=90, movable=False,
                                         pen=pg.mkPen((214, 39, 40), width=1, style=Qt.DashLine),
                                         label="",
                                         labelOpts={"position": 0.92, "color": (214, 39, 40),
                                                    "fill": (255, 255, 255, 90),
                                                    # the text goes on the side where the
                                                    # view is, so it is never cut at an edge
                                                    "anchors": [(0, 0.5), (1, 0.5)]})
        self.best_line.setVisible(False)
        self.best_line.setZValue(50)  # its label above the curves (a faint box: they show)
        label_font = QFont()
        label_font.setPointSizeF(8.5)
        self.best_line.label.setFont(label_font)
        self.plot.addItem(self.best_line, ignoreBounds=True)
        self.empty_text = pg.TextItem("Curves appear here when training starts.",
                                      color=(120, 120, 120), anchor=(0.5, 0.5))
        self.plot.addItem(self.empty_text, ignoreBounds=True)
        self.empty_text.setPos(0.5, 0.5)
        self._set_empty(True)

        self.smoothing_slider = QSlider(Qt.Horizontal, self)
        self.smoothing_slider.setRange(0, 99)
        self.smoothing_slider.setToolTip("Exponential moving average weight (0 = raw values)")
        self.smoothing_slider.valueChanged.connect(self._on_smoothing_change)
        self.smoothing_label = QLabel("0.00", self)
        self.log_check = QCheckBox("Log scale", self)
        self.log_check.toggled.connect(self._on_log_scale_change)
        self.compare_combo = QComboBox(self)
        self.compare_combo.setToolTip("The curve drawn for each ticked run in the runs list")
        self.compare_combo.addItem(curve_label("loss"), "loss")
        self.compare_combo.currentIndexChanged.connect(self._on_compare_change)
        self.readout = QLabel(" ", self)
        self.readout.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.readout.setMinimumWidth(200)

        controls = QHBoxLayout()
        controls.setContentsMargins(0, 0, 0, 0)
        controls.addWidget(QLabel("Smoothing", self))
        controls.addWidget(self.smoothing_slider, 1)
        controls.addWidget(self.smoothing_label)
        controls.addSpacing(12)
        controls.addWidget(self.log_check)
        controls.addSpacing(12)
        controls.addWidget(QLabel("Compare runs by", self))
        controls.addWidget(self.compare_combo)
        controls.addSpacing(12)
        controls.addWidget(self.readout, 3)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget, 1)
        layout.addLayout(controls)

        self._mouse_proxy = pg.SignalProxy(self.plot.scene().sigMouseMoved, rateLimit=30,
                                           slot=self._on_mouse_move)

    # ---- binding and drawing

    def _sync_lr_view(self) -> None:
        self.lr_view.setGeometry(self.plot.vb.sceneBoundingRect())
        self.lr_view.linkedViewChanged(self.plot.vb, self.lr_view.XAxis)

    def clear(self) -> None:
        for name, item in list(self.items.items()):
            self._detach(item, self.lr_view if name == "lr" else self.plot)
        self.items.clear()
        self._smoothers.clear()
        self.set_best(None)
        self._set_empty(True)

    def _set_empty(self, empty: bool) -> None:
        """With no curve the axes' 0…1 numbers would suggest values: show only the hint."""
        self.empty_text.setVisible(empty)
        if empty:  # back to the unit square the hint sits in the middle of
            self.plot.vb.setRange(xRange=(0, 1), yRange=(0, 1), padding=0)
            self.plot.enableAutoRange()
        for side in ("left", "right", "bottom"):
            axis = self.plot.getAxis(side)
            if axis.style["showValues"] == empty:
                axis.setStyle(showValues=not empty)

    def _detach(self, item: pg.PlotDataItem, owner: object) -> None:
        # Clip-to-view items ask their view for its range while being removed, and
        # a removed item's "view" is the GraphicsView, which has no range: switch off.
        item.setClipToView(False)
        item.setDownsampling(auto=False)
        owner.removeItem(item)
        self.legend.removeItem(item)

    def set_curves(self, live: LiveCurves | None) -> None:
        """Show ``live``'s curves (replacing what was shown)."""
        self.clear()
        self.live = live
        if live is not None:
            self.refresh(set(live.series))

    def _color(self, name: str) -> tuple[int, int, int]:
        if name in _COLORS:
            return _COLORS[name]
        return _PALETTE[len(self.items) % len(_PALETTE)]

    def _make_item(self, name: str) -> pg.PlotDataItem:
        color = self._color(name)
        style = Qt.DashLine if name == "lr" else Qt.SolidLine
        # Per-iteration curves get long: a 1-pixel pen is several times faster to
        # stroke than a wider one.  Test curves (one point per test round) stay bold.
        width = 2 if name.startswith("test") else 1
        item = pg.PlotDataItem(pen=pg.mkPen(color, width=width, style=style),
                               name=curve_label(name))
        if name == "lr":
            self.lr_view.addItem(item)
            self.legend.addItem(item, curve_label(name))
        else:
            self.plot.addItem(item)
            if name == "train/loss" and self.live is not None and "loss" in self.live.series:
                self.legend.removeItem(item)  # the very same values as "train loss"
        # after addItem: PlotItem.addItem applies the plot's own (off) downsampling
        _fast_item(item)
        if _is_train_output(name) and self.live is not None and "loss" in self.live.series:
            item.setVisible(False)  # the same value as "train loss"; the legend shows it back
        self.items[name] = item
        if name != "lr" and self.compare_combo.findData(name) < 0:
            self.compare_combo.addItem(curve_label(name), name)
        return item

    def _display_values(self, name: str, series: GrowingSeries) -> np.ndarray:
        # Only per-iteration training values are noisy; a test point is already an
        # average over test_iter batches, and the lr is exact.
        if not (name == "loss" or _is_train_output(name)) or self.smoothing <= 0:
            return series.y
        key = (id(series), self.smoothing)
        smoother = self._smoothers.get(key)
        if smoother is None:
            smoother = self._smoothers[key] = Smoother(self.smoothing)
        return smoother.update(series.y, series.generation)

    def refresh(self, names: set[str] | None = None) -> None:
        """Redraw the named curves (all when None) from the bound :class:`LiveCurves`."""
        if self.live is None:
            return
        names = set(self.live.series) if names is None else names
        for name in sorted(names):
            series = self.live.series.get(name)
            if series is None:
                continue
            item = self.items.get(name) or self._make_item(name)
            item.setData(series.x, self._display_values(name, series))
            if name == "lr" and len(series):
                # from 0, so a constant rate is a flat line near the top, not mid-axis
                top = float(np.nanmax(series.y)) if np.isfinite(series.y).any() else 1.0
                self.lr_view.setYRange(0.0, top * 1.1 if top > 0 else 1.0, padding=0)
        if self.items:
            self._set_empty(False)

    # ---- controls

    def _on_smoothing_change(self, value: int) -> None:
        self.smoothing = value / 100.0
        self._smoothers.clear()
        self.smoothing_label.setText(f"{self.smoothing:.2f}")
        self.refresh()
        self._draw_overlays()

    def set_smoothing(self, weight: float) -> None:
        self.smoothing_slider.setValue(round(weight * 100))

    def _on_log_scale_change(self, on: bool) -> None:
        self.plot.setLogMode(y=on)  # the lr keeps its own linear axis
        self.plot.enableAutoRange()

    def set_log_y(self, on: bool) -> None:
        self.log_check.setChecked(on)

    # ---- best iteration

    def set_best(self, best: tuple[int, float, str] | None) -> None:
        """Mark ``(iteration, value, metric)`` with a vertical line (None hides it)."""
        self.best = best
        if best is None:
            self.best_line.setVisible(False)
            return
        iteration, value, metric = best
        # the label renders its format when the line moves: set the text first
        self.best_line.label.setFormat(f"best {metric} = {value:.4g} @ {iteration}")
        self.best_line.setPos(iteration)
        self.best_line.setVisible(True)
        self.best_line.label.valueChanged()

    # ---- other runs

    def set_overlays(self, overlays: dict[str, LiveCurves], compare: str | None = None) -> None:
        """Draw curve ``compare`` (default: train loss) of other runs, dashed, for comparison."""
        self.overlays = overlays
        if compare:
            self.compare_name = compare
            if self.compare_combo.findData(compare) < 0:
                self.compare_combo.addItem(curve_label(compare), compare)
            self.compare_combo.setCurrentIndex(self.compare_combo.findData(compare))
        self._draw_overlays()

    def _on_compare_change(self, _index: int) -> None:
        name = self.compare_combo.currentData()
        if name and name != self.compare_name:
            self.compare_name = name
            self._draw_overlays()

    def _draw_overlays(self) -> None:
        for item in self.overlay_items:
            self._detach(item, self.plot)
        self.overlay_items = []
        for index, (run_name, live) in enumerate(sorted(self.overlays.items())):
            series = live.series.get(self.compare_name)
            if series is None or not len(series):
                continue
            color = _RUN_COLORS[index % len(_RUN_COLORS)]
            item = pg.PlotDataItem(pen=pg.mkPen(color, width=1, style=Qt.DashDotLine),
                                   name=f"{run_name}: {curve_label(self.compare_name)}")
            self.plot.addItem(item)  # before clipping: clipping asks the item's ViewBox
            _fast_item(item)
            item.setData(series.x, self._display_values(self.compare_name, series))
            self.overlay_items.append(item)
        if self.overlay_items:
            self._set_empty(False)

    # ---- hover readout

    def readout_at(self, iteration: float) -> str:
        """The raw value of each visible curve at the logged iteration nearest ``iteration``."""
        if self.live is None:
            return ""
        parts = []
        nearest_iter = None
        for name, item in sorted(self.items.items()):
            series = self.live.series.get(name)
            if not item.isVisible() or series is None or not len(series):
                continue
            index = int(np.clip(np.searchsorted(series.x, iteration), 0, len(series) - 1))
            if index > 0 and abs(series.x[index - 1] - iteration) < abs(series.x[index] -
                                                                           iteration):
                index -= 1
            nearest_iter = int(series.x[index]) if nearest_iter is None else nearest_iter
            value = float(series.y[index])
            parts.append(f"{curve_label(name)} {_format(value)} @{int(series.x[index])}")
        return "   ".join(parts)

    def _on_mouse_move(self, event: tuple) -> None:
        position = event[0]
        if not self.plot.sceneBoundingRect().contains(position):
            return
        point = self.plot.vb.mapSceneToView(position)
        text = self.readout_at(point.x())
        self.readout.setText(text or " ")
        self.readout.setToolTip(text)
        self.hovered.emit(text)

    # ---- export

    def export_png(self, path: str | Path) -> Path:
        """Save the plot as it looks now (with legend and best marker) as a PNG."""
        from dlp.errors import DLPError
        from dlp.fsutil import atomic_path

        path = Path(path)
        image = self.plot_widget.grab()
        try:
            with atomic_path(path) as tmp:
                if not image.save(str(tmp), "PNG"):
                    raise DLPError(f"{path}: cannot write the PNG image")
        except OSError as exc:
            raise DLPError(f"{path}: cannot write the PNG image ({exc.strerror})") from exc
        return path


def _fast_item(item: pg.PlotDataItem) -> None:
    """Peak downsampling to one bin per pixel column, and only the visible x range."""
    item.setDownsampling(auto=True, method="peak")
    # pyqtgraph has no setter for it; its default draws ~5 bins per pixel.  With
    # "peak" (min and max of each bin) one bin per pixel keeps the exact envelope.
    item.opts["autoDownsampleFactor"] = 1.0
    item.setClipToView(True)


def _format(value: float) -> str:
    if math.isnan(value):
        return "nan"
    return f"{value:.4g}"
