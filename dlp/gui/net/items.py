"""Graphics items of the net canvas: layer nodes, their ports, and the links between them.

Items only draw what the scene tells them; they never change the NetDocument.
"""

from __future__ import annotations

import functools
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
    blocked_by: str | None = None  # waits for a fix of that upstream layer
    diff: str | None = None  # "added" | "changed" while a comparison is shown


_TITLE_FONT = style.font(8.5, bold=True)
_NAME_FONT = style.font(9.0, bold=True)
_SMALL_FONT = style.font(7.5)
_NAME_METRICS = QFontMetricsF(_NAME_FONT)


_TITLE_METRICS = QFontMetricsF(_TITLE_FONT)
# Below this zoom level nodes are drawn as plain cards: text would be unreadable anyway,
# and a fitted 1,000-layer net stays fast to paint.
DETAIL_SCALE = 0.35


def node_size(look: NodeLook) -> tuple[float, float]:
    """Width and height of a node; shape and statistics lines are always reserved so the
    layout stays tidy when the analysis arrives."""
    return _node_size(look.name, look.type, look.in_place, bool(look.key_params))


@functools.lru_cache(maxsize=8192)
def _node_size(name: str, type_name: str, in_place: bool, has_key: bool) -> tuple[float, float]:
    # Short names always fit the standard width; measuring text is slow in bulk.
    fits = len(name) <= 16
    width = style.NODE_WIDTH if fits else max(style.NODE_WIDTH,
                                              _NAME_METRICS.horizontalAdvance(name) + 24)
    if in_place:
        title = _TITLE_METRICS.horizontalAdvance(f"{type_name}  ·  {name}")
        return max(width, title + 40), style.NODE_HEADER
    lines = 3 + has_key
    return width, style.NODE_HEADER + lines * style.NODE_LINE + 8


@functools.lru_cache(maxsize=64)
def _port_look(category: str | None, hover: bool) -> tuple[QBrush, QPen]:
    color = style.category_color(category)
    return QBrush(color if hover else QColor("#FFFFFF")), QPen(color.darker(110), 1.6)


class PortItem:
    """A bottom (input, on the node's upper edge) or top (output, lower edge) connector.

    Not a graphics item of its own: the node draws its ports and finds the one under the
    mouse, which keeps a 1,000-layer scene light (thousands fewer items to build).
    """

    __slots__ = ("index", "kind", "node", "pos")

    def __init__(self, node: NodeItem, kind: str, index: int, pos: QPointF) -> None:
        self.node, self.kind, self.index, self.pos = node, kind, index, pos

    @property
    def node_id(self) -> int:
        return self.node.node_id

    def scenePos(self) -> QPointF:
        return self.node.mapToScene(self.pos)

    scene_anchor = scenePos


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
        self._bounds = QRectF()
        self._shape = QPainterPath()
        self._hover_port: PortItem | None = None
        self._geometry: tuple[float, float, int, int] | None = None
        self.setFlags(QGraphicsItem.ItemIsMovable | QGraphicsItem.ItemIsSelectable
                      | QGraphicsItem.ItemSendsGeometryChanges)
        self.setCacheMode(QGraphicsItem.DeviceCoordinateCache)
        self.setAcceptHoverEvents(True)
        self.set_look(look)

    # -- content -------------------------------------------------------------------
    def set_look(self, look: NodeLook) -> None:
        """Show ``look``; ports are rebuilt only when their number changes, and the scene
        re-attaches edges then (``ports_rebuilt``)."""
        width, height = node_size(look)
        geometry = (width, height, look.bottom_ports, look.top_ports)
        same_geometry = geometry == self._geometry
        self.look = look
        if not same_geometry:  # new statistics alone need no new geometry (fast refresh)
            self.prepareGeometryChange()
            self._geometry = geometry
            self._rect = QRectF(-width / 2, 0, width, height)
            margin = style.PORT_RADIUS * 1.5 + 2  # hovered ports grow past the card
            self._bounds = self._rect.adjusted(-3, -margin, 3, margin)
            self._rebuild_ports()
        tip = [f"<b>{look.name}</b> — {look.type}"]
        if look.bottom_names or look.top_names:
            tip.append(f"bottom: {', '.join(look.bottom_names) or '—'}  →  "
                       f"top: {', '.join(look.top_names) or '—'}")
        if look.key_params:
            tip.append(look.key_params)
        if look.shape_text:
            tip.append(f"output {look.shape_text}")
        if look.stats_text:
            tip.append(look.stats_text)
        tip += [f"<span style='color:#D7263D'>✖ {msg}</span>" for msg in look.errors]
        tip += [f"<span style='color:#A66A00'>⚠ {msg}</span>" for msg in look.warnings]
        if look.blocked_by:
            tip.append(f"<i>cannot be checked until layer '{look.blocked_by}' is fixed</i>")
        if not look.active:
            tip.append("<i>not run in the phase shown</i>")
        self.setToolTip("<br>".join(tip))
        opacity = 1.0 if look.active else 0.45
        if self.opacity() != opacity:
            self.setOpacity(opacity)
        self.update()
        if not same_geometry:
            self.update_edges()

    def _rebuild_ports(self) -> None:
        self.bottom_ports = self._ports("bottom", self.look.bottom_ports, self._rect.top())
        self.top_ports = self._ports("top", self.look.top_ports, self._rect.bottom())
        outline = QPainterPath()
        outline.addRoundedRect(self._rect, style.NODE_RADIUS, style.NODE_RADIUS)
        r = style.PORT_RADIUS + 2
        for port in self.bottom_ports + self.top_ports:
            outline.addEllipse(port.pos, r, r)
        outline.setFillRule(Qt.WindingFill)
        self._shape = outline

    def _ports(self, kind: str, count: int, y: float) -> list[PortItem]:
        """Ports spread along an edge; existing ones are moved, so edges stay attached."""
        left, width = self._rect.left(), self._rect.width()
        ports = self.bottom_ports if kind == "bottom" else self.top_ports
        if len(ports) != count:
            ports = [PortItem(self, kind, i, QPointF()) for i in range(count)]
        for i, port in enumerate(ports):
            port.pos = QPointF(left + width * (i + 1) / (count + 1), y)
        return ports

    def port_at(self, local: QPointF) -> PortItem | None:
        """The port under ``local`` (item coordinates), with a little slack for the mouse."""
        reach = (style.PORT_RADIUS + 3) ** 2
        for port in self.bottom_ports + self.top_ports:
            delta = port.pos - local
            if delta.x() ** 2 + delta.y() ** 2 <= reach:
                return port
        return None

    def hoverMoveEvent(self, event) -> None:
        port = self.port_at(event.pos())
        if port is not self._hover_port:
            self._hover_port = port
            self.update()
        super().hoverMoveEvent(event)

    def hoverLeaveEvent(self, event) -> None:
        if self._hover_port is not None:
            self._hover_port = None
            self.update()
        super().hoverLeaveEvent(event)

    def port(self, kind: str, index: int) -> PortItem | None:
        ports = self.bottom_ports if kind == "bottom" else self.top_ports
        return ports[index] if 0 <= index < len(ports) else None

    # -- geometry ------------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return self._bounds

    def body_rect(self) -> QRectF:
        return QRectF(self._rect)

    def shape(self) -> QPainterPath:
        return self._shape

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
        if option.levelOfDetailFromTransform(painter.worldTransform()) < DETAIL_SCALE:
            painter.fillRect(rect, style.ERROR if look.errors else color)
            if self.isSelected():
                painter.setPen(QPen(style.SELECTION, 0))
                painter.drawRect(rect)
            return
        painter.setRenderHint(QPainter.Antialiasing)
        outline = QPainterPath()
        outline.addRoundedRect(rect, style.NODE_RADIUS, style.NODE_RADIUS)
        painter.fillPath(outline, style.ERROR_FILL if look.errors else style.NODE_BODY)
        header = QPainterPath()
        header.setFillRule(Qt.WindingFill)  # the squared-off corners overlap the rounded rect
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
        pen = QPen(border, width)
        if look.blocked_by:
            pen = QPen(style.ERROR.lighter(150), 1.6, Qt.DashLine)
        if self.isSelected():
            pen = QPen(style.SELECTION, 2.6)
        painter.setPen(pen)
        painter.setBrush(Qt.NoBrush)
        painter.drawPath(outline)
        for port in self.bottom_ports + self.top_ports:
            hover = port is self._hover_port
            brush, pen = _port_look(look.category, hover)
            painter.setBrush(brush)
            painter.setPen(pen)
            radius = style.PORT_RADIUS * (1.4 if hover else 1.0)
            painter.drawEllipse(port.pos, radius, radius)

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
        self._bounds = QRectF()
        self._label_size = (0.0, 0.0)
        self._hover = False
        self.show_label = True
        self.setZValue(-1)
        self.setAcceptHoverEvents(True)
        self.setFlag(QGraphicsItem.ItemIsSelectable)  # select + Delete disconnects it
        self.setToolTip(link.blob)
        source.node.edges.append(self)
        sink.node.edges.append(self)

    def detach(self) -> None:
        for node in (self.source.node, self.sink.node):
            if self in node.edges:
                node.edges.remove(self)

    def set_label(self, text: str) -> None:
        if text == self.label and not self._path.isEmpty():
            return
        self.label = text
        metrics = QFontMetricsF(_SMALL_FONT)
        self._label_size = (metrics.horizontalAdvance(text) + 10, metrics.height() + 2)
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
            width, height = self._label_size
            mid = path.pointAtPercent(0.5)
            self._label_rect = QRectF(mid.x() - width / 2, mid.y() - height / 2, width, height)
        else:
            self._label_rect = QRectF()
        self._bounds = path.boundingRect().united(self._label_rect).adjusted(-4, -4, 4, 4)
        self.update()

    def path(self) -> QPainterPath:
        return self._path

    def boundingRect(self) -> QRectF:
        return self._bounds

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
        color = style.SELECTION if self.isSelected() else \
            style.EDGE_HOVER if self._hover else style.EDGE_COLOR
        if option.levelOfDetailFromTransform(painter.worldTransform()) < DETAIL_SCALE:
            painter.setPen(QPen(color, 0))
            painter.drawPath(self._path)
            return
        painter.setRenderHint(QPainter.Antialiasing)
        painter.setPen(QPen(color, 2.2 if self._hover or self.isSelected() else 1.5))
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
