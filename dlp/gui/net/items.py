"""Graphics items of the net canvas: layer nodes, their ports, and the links between them.

Items only draw what the scene tells them; they never change the NetDocument.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from PyQt5.QtCore import QPointF, QRectF, Qt
from PyQt5.QtGui import (
    QBrush,
    QColor,
    QFontMetricsF,
    QPainter,
    QPainterPath,
    QPainterPathStroker,
    QPen,
)
from PyQt5.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsItem,
    QGraphicsObject,
    QStyleOptionGraphicsItem,
    QWidget,
)

from dlp.gui.net import style
from dlp.net.document import Link


@dataclass
class NodeLook:
    """What a node shows; built by the scene from the layer, its spec and the analysis."""

    name: str
    type: str
    category: str | None
    key_params: str = ""
    bottom_ports: int = 0
    top_ports: int = 1
    bottom_names: list[str] = field(default_factory=list)
    top_names: list[str] = field(default_factory=list)
    in_place: bool = False
    shape_text: str = ""
    stats_text: str = ""
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    active: bool = True  # False when the layer does not run in the phase shown
    diff: str | None = None  # "added" | "changed" while a comparison is shown


_TITLE_FONT = style.font(8.5, bold=True)
_NAME_FONT = style.font(9.0, bold=True)
_SMALL_FONT = style.font(7.5)
_NAME_METRICS = QFontMetricsF(_NAME_FONT)


def node_size(look: NodeLook) -> tuple[float, float]:
    """Width and height of a node; shape and statistics lines are always reserved so the
    layout stays tidy when the analysis arrives."""
    width = max(style.NODE_WIDTH, _NAME_METRICS.horizontalAdvance(look.name) + 24)
    if look.in_place:
        title = QFontMetricsF(_TITLE_FONT).horizontalAdvance(f"{look.type}  ·  {look.name}")
        return max(width, title + 40), style.NODE_HEADER
    lines = 3 + bool(look.key_params)
    return width, style.NODE_HEADER + lines * style.NODE_LINE + 8


class PortItem(QGraphicsEllipseItem):
    """A bottom (input, on the node's upper edge) or top (output, lower edge) connector."""

    def __init__(self, node: NodeItem, kind: str, index: int) -> None:
        r = style.PORT_RADIUS
        super().__init__(-r, -r, 2 * r, 2 * r, node)
        self.node = node
        self.kind = kind
        self.index = index
        self.setAcceptHoverEvents(True)
        self.setZValue(2)
        self._set_hover(False)

    @property
    def node_id(self) -> int:
        return self.node.node_id

    def _set_hover(self, hover: bool) -> None:
        color = style.category_color(self.node.look.category)
        self.setBrush(QBrush(color if hover else QColor("#FFFFFF")))
        self.setPen(QPen(color.darker(110), 1.6))
        scale = 1.35 if hover else 1.0
        self.setScale(scale)

    def hoverEnterEvent(self, event) -> None:
        self._set_hover(True)
        super().hoverEnterEvent(event)

    def hoverLeaveEvent(self, event) -> None:
        self._set_hover(False)
        super().hoverLeaveEvent(event)

    def scene_anchor(self) -> QPointF:
        return self.scenePos()


class NodeItem(QGraphicsObject):
    """A layer: rounded card coloured by category, with its ports and live statistics."""

    def __init__(self, node_id: int, look: NodeLook) -> None:
        super().__init__()
        self.node_id = node_id
        self.look = look
        self.edges: list[EdgeItem] = []
        self.bottom_ports: list[PortItem] = []
        self.top_ports: list[PortItem] = []
        self._rect = QRectF()
        self.setFlags(QGraphicsItem.ItemIsMovable | QGraphicsItem.ItemIsSelectable
                      | QGraphicsItem.ItemSendsGeometryChanges)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.setAcceptHoverEvents(True)
        self.set_look(look)

    # -- content -------------------------------------------------------------------
    def set_look(self, look: NodeLook) -> None:
        """Show ``look``; ports are rebuilt only when their number changes, and the scene
        re-attaches edges then (``ports_rebuilt``)."""
        self.prepareGeometryChange()
        self.look = look
        width, height = node_size(look)
        self._rect = QRectF(-width / 2, 0, width, height)
        if (len(self.bottom_ports), len(self.top_ports)) != (look.bottom_ports, look.top_ports):
            self._rebuild_ports()
        else:  # same ports: keep them (and the edges attached to them), just re-place
            self._place(self.bottom_ports, self._rect.top(), look.bottom_names, "bottom")
            self._place(self.top_ports, self._rect.bottom(), look.top_names, "top")
        tip = [f"<b>{look.name}</b> — {look.type}"]
        if look.key_params:
            tip.append(look.key_params)
        if look.shape_text:
            tip.append(f"output {look.shape_text}")
        if look.stats_text:
            tip.append(look.stats_text)
        tip += [f"<span style='color:#D7263D'>✖ {msg}</span>" for msg in look.errors]
        tip += [f"<span style='color:#A66A00'>⚠ {msg}</span>" for msg in look.warnings]
        if not look.active:
            tip.append("<i>not run in the phase shown</i>")
        self.setToolTip("<br>".join(tip))
        self.setOpacity(1.0 if look.active else 0.45)
        self.update()
        self.update_edges()

    def _rebuild_ports(self) -> None:
        for port in self.bottom_ports + self.top_ports:
            port.setParentItem(None)
            if port.scene() is not None:
                port.scene().removeItem(port)
        self.bottom_ports = [PortItem(self, "bottom", i) for i in range(self.look.bottom_ports)]
        self.top_ports = [PortItem(self, "top", i) for i in range(self.look.top_ports)]
        self._place(self.bottom_ports, self._rect.top(), self.look.bottom_names, "bottom")
        self._place(self.top_ports, self._rect.bottom(), self.look.top_names, "top")

    def _place(self, ports: list[PortItem], y: float, names: list[str], kind: str) -> None:
        count = len(ports)
        for i, port in enumerate(ports):
            x = self._rect.left() + self._rect.width() * (i + 1) / (count + 1)
            port.setPos(x, y)
            blob = names[i] if i < len(names) else "(free: drag a top here)" if kind == "bottom" \
                else ""
            port.setToolTip(f"{kind} {i}: {blob}")

    def port(self, kind: str, index: int) -> PortItem | None:
        ports = self.bottom_ports if kind == "bottom" else self.top_ports
        return ports[index] if 0 <= index < len(ports) else None

    # -- geometry ------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return self._rect.adjusted(-3, -3, 3, 3)

    def body_rect(self) -> QRectF:
        return QRectF(self._rect)

    def shape(self) -> QPainterPath:
        path = QPainterPath()
        path.addRoundedRect(self._rect, style.NODE_RADIUS, style.NODE_RADIUS)
        return path

    def itemChange(self, change, value):
        if change == QGraphicsItem.ItemPositionHasChanged:
            self.update_edges()
        elif change == QGraphicsItem.ItemSelectedHasChanged:
            self.setZValue(1 if value else 0)
        return super().itemChange(change, value)

    def update_edges(self) -> None:
        for edge in self.edges:
            edge.update_geometry()

    # -- drawing -------------------------------------------------------------------
    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        look = self.look
        rect = self._rect
        color = style.category_color(look.category)
        painter.setRenderHint(QPainter.Antialiasing)
        outline = QPainterPath()
        outline.addRoundedRect(rect, style.NODE_RADIUS, style.NODE_RADIUS)
        painter.fillPath(outline, style.ERROR_FILL if look.errors else style.NODE_BODY)
        header = QPainterPath()
        header.addRoundedRect(QRectF(rect.left(), rect.top(), rect.width(), style.NODE_HEADER),
                              style.NODE_RADIUS, style.NODE_RADIUS)
        if not look.in_place:  # square off the header's lower corners
            header.addRect(QRectF(rect.left(), rect.top() + style.NODE_HEADER / 2, rect.width(),
                                  style.NODE_HEADER / 2))
        painter.fillPath(header.simplified(), color)
        painter.setPen(QColor("#FFFFFF"))
        painter.setFont(_TITLE_FONT)
        title_rect = QRectF(rect.left() + 10, rect.top(), rect.width() - 20, style.NODE_HEADER)
        title = f"{look.type}  ·  {look.name}" if look.in_place else look.type
        painter.drawText(title_rect, Qt.AlignVCenter | Qt.AlignLeft, title)
        if look.errors:
            painter.drawText(title_rect, Qt.AlignVCenter | Qt.AlignRight, "✖")
        y = rect.top() + style.NODE_HEADER + 4
        if not look.in_place:
            y = self._draw_line(painter, y, look.name, _NAME_FONT, style.NODE_TEXT)
            if look.key_params:
                y = self._draw_line(painter, y, look.key_params, _SMALL_FONT, style.NODE_TEXT)
            if look.shape_text:
                y = self._draw_line(painter, y, look.shape_text, _SMALL_FONT, style.NODE_MUTED)
            if look.stats_text:
                self._draw_line(painter, y, look.stats_text, _SMALL_FONT, style.NODE_MUTED)
        border, width = style.NODE_BORDER, 1.0
        if look.diff == "added":
            border, width = style.DIFF_ADDED, 2.6
        elif look.diff == "changed":
            border, width = style.DIFF_CHANGED, 2.6
        if look.errors:
            border, width = style.ERROR, 2.2
        if self.isSelected():
            border, width = style.SELECTION, 2.6
        painter.setPen(QPen(border, width))
        painter.setBrush(Qt.NoBrush)
        painter.drawPath(outline)

    def _draw_line(self, painter: QPainter, y: float, text: str, font, color: QColor) -> float:
        painter.setFont(font)
        painter.setPen(color)
        rect = QRectF(self._rect.left() + 10, y, self._rect.width() - 20, style.NODE_LINE)
        elided = QFontMetricsF(font).elidedText(text, Qt.ElideRight, rect.width())
        painter.drawText(rect, Qt.AlignVCenter | Qt.AlignLeft, elided)
        return y + style.NODE_LINE


class EdgeItem(QGraphicsItem):
    """A link from a top port to a bottom port: a gentle curve with the blob's shape on it."""

    def __init__(self, link: Link, source: PortItem, sink: PortItem) -> None:
        super().__init__()
        self.link = link
        self.source = source
        self.sink = sink
        self.label = ""
        self._path = QPainterPath()
        self._label_rect = QRectF()
        self._hover = False
        self.show_label = True
        self.setZValue(-1)
        self.setAcceptHoverEvents(True)
        self.setToolTip(link.blob)
        source.node.edges.append(self)
        sink.node.edges.append(self)

    def detach(self) -> None:
        for node in (self.source.node, self.sink.node):
            if self in node.edges:
                node.edges.remove(self)

    def set_label(self, text: str) -> None:
        self.label = text
        self.setToolTip(f"{self.link.blob}  {text}".strip())
        self.update_geometry()

    def update_geometry(self) -> None:
        self.prepareGeometryChange()
        start, end = self.source.scene_anchor(), self.sink.scene_anchor()
        bend = max(24.0, abs(end.y() - start.y()) * 0.45)
        path = QPainterPath(start)
        path.cubicTo(start + QPointF(0, bend), end - QPointF(0, bend), end)
        self._path = path
        if self.label and self.show_label:
            metrics = QFontMetricsF(_SMALL_FONT)
            width = metrics.horizontalAdvance(self.label) + 10
            height = metrics.height() + 2
            mid = path.pointAtPercent(0.5)
            self._label_rect = QRectF(mid.x() - width / 2, mid.y() - height / 2, width, height)
        else:
            self._label_rect = QRectF()
        self.update()

    def path(self) -> QPainterPath:
        return self._path

    def boundingRect(self) -> QRectF:
        return self._path.boundingRect().united(self._label_rect).adjusted(-4, -4, 4, 4)

    def shape(self) -> QPainterPath:
        stroker = QPainterPathStroker()
        stroker.setWidth(10)
        shape = stroker.createStroke(self._path)
        if not self._label_rect.isNull():
            shape.addRect(self._label_rect)
        return shape

    def set_highlight(self, on: bool) -> None:
        self._hover = on
        self.update()

    def hoverEnterEvent(self, event) -> None:
        self.set_highlight(True)

    def hoverLeaveEvent(self, event) -> None:
        self.set_highlight(False)

    def paint(self, painter: QPainter, option: QStyleOptionGraphicsItem,
              widget: QWidget | None = None) -> None:
        painter.setRenderHint(QPainter.Antialiasing)
        color = style.EDGE_HOVER if self._hover else style.EDGE_COLOR
        painter.setPen(QPen(color, 2.2 if self._hover else 1.5))
        painter.setBrush(Qt.NoBrush)
        painter.drawPath(self._path)
        end = self._path.currentPosition()
        arrow = QPainterPath(end)
        arrow.lineTo(end + QPointF(-4, -7))
        arrow.lineTo(end + QPointF(4, -7))
        arrow.closeSubpath()
        painter.fillPath(arrow, color)
        if not self._label_rect.isNull():
            painter.setPen(Qt.NoPen)
            painter.setBrush(style.LABEL_FILL)
            painter.drawRoundedRect(self._label_rect, 4, 4)
            painter.setPen(style.LABEL_TEXT)
            painter.setFont(_SMALL_FONT)
            painter.drawText(self._label_rect, Qt.AlignCenter, self.label)
