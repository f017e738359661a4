"""Colours, fonts and sizes of the net canvas, in one place (Netron-like clarity)."""

from __future__ import annotations

from PyQt5.QtGui import QColor, QFont

CATEGORY_COLORS: dict[str, str] = {
    "Data": "#2E8B75",
    "Vision": "#3D6FB6",
    "Activation": "#B5533C",
    "Normalization": "#6E55A3",
    "Common": "#4F7F8F",
    "Loss": "#B23A62",
    "Utility": "#6B6F76",
}
CATEGORY_ORDER = ["Data", "Vision", "Activation", "Normalization", "Common", "Loss", "Utility"]
UNKNOWN_COLOR = "#8A8F98"

CANVAS_BACKGROUND = QColor("#F7F8FA")
GRID_MINOR = QColor("#ECEEF2")
GRID_MAJOR = QColor("#DFE2E8")
GRID_STEP = 20

NODE_WIDTH = 184.0
NODE_HEADER = 24.0
NODE_LINE = 16.0
NODE_RADIUS = 7.0
NODE_BODY = QColor("#FFFFFF")
NODE_BORDER = QColor("#C9CED6")
NODE_TEXT = QColor("#1F2329")
NODE_MUTED = QColor("#6A717C")
SELECTION = QColor("#F2A93B")
ERROR = QColor("#D7263D")
ERROR_FILL = QColor("#FDECEE")
DIFF_ADDED = QColor("#2BA84A")
DIFF_CHANGED = QColor("#E0A100")

PORT_RADIUS = 5.0
EDGE_COLOR = QColor("#8C939E")
EDGE_HOVER = QColor("#3D6FB6")
LABEL_TEXT = QColor("#4A515C")
LABEL_FILL = QColor(247, 248, 250, 230)

ROW_SPACING = 56.0  # vertical gap between layers in the automatic layout
COLUMN_SPACING = 44.0


_COLORS: dict[str | None, QColor] = {}


def category_color(category: str | None) -> QColor:
    """The category's colour (shared instances: a 1,000-layer net asks thousands of times)."""
    color = _COLORS.get(category)
    if color is None:
        color = _COLORS[category] = QColor(CATEGORY_COLORS.get(category or "", UNKNOWN_COLOR))
    return color


def font(point_size: float = 8.5, bold: bool = False) -> QFont:
    result = QFont("DejaVu Sans")
    result.setPointSizeF(point_size)
    result.setBold(bold)
    return result
