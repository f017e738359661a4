"""The canvas scene: follows the NetDocument's signals and draws the analysis.

The scene never edits the document; user gestures are handed to the current
interaction object (dlp.gui.net.interactions), which asks the editor to push commands.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PyQt5.QtCore import QPointF, Qt
from PyQt5.QtWidgets import QGraphicsScene, QGraphicsSceneMouseEvent

from dlp.errors import DLPError
from dlp.gui.net import style
from dlp.gui.net.analysis import NetAnalysis
from dlp.gui.net.items import EdgeItem, NodeItem, NodeLook, PortItem, node_size
from dlp.gui.net.layout import layered_layout
from dlp.net.document import Link, NetDocument, is_in_place
from dlp.net.specs import get_spec
from dlp.net.specs.base import format_shape

if TYPE_CHECKING:
    from dlp.gui.net.editor import NetEditor
    from dlp.gui.net.interactions import Interaction


def port_counts(layer) -> tuple[int, int]:
    """(bottom ports, top ports): one per blob, plus a free bottom port while more fit."""
    try:
        spec = get_spec(layer.type)
        (min_bottoms, max_bottoms), (min_tops, _) = spec.bottoms, spec.top_count_range(layer)
    except DLPError:
        min_bottoms, max_bottoms, min_tops = 0, None, 1
    bottoms = max(len(layer.bottom), min_bottoms)
    # A free port invites another input only where one is expected: a layer with no input
    # yet, or a merging layer (Concat, Eltwise) that takes any number of them. Optional
    # extra inputs (Scale's second bottom) are added in the property panel.
    merging = max_bottoms is None and min_bottoms >= 2
    if merging or (not layer.bottom and max_bottoms != 0):
        bottoms = max(bottoms, len(layer.bottom) + 1)
    return bottoms, max(len(layer.top), min_tops)


def describe(layer) -> tuple[str | None, str]:
    """(category, key parameters) of a layer, tolerating unknown types and bad params."""
    try:
        spec = get_spec(layer.type)
    except DLPError:
        return None, ""
    try:
        key = spec.key_params(layer)
    except (DLPError, ValueError, IndexError, AttributeError):
        key = ""
    return spec.category, key


def base_look(layer) -> NodeLook:
    """What a node shows before any analysis: name, type, key parameters, ports."""
    category, key = describe(layer)
    bottoms, tops = port_counts(layer)
    return NodeLook(name=layer.name, type=layer.type or "?", category=category,
                    key_params=key, bottom_ports=bottoms, top_ports=tops,
                    bottom_names=list(layer.bottom), top_names=list(layer.top),
                    in_place=is_in_place(layer) and len(layer.top) == 1)


def layout_positions(doc: NetDocument) -> dict[int, tuple[float, float]]:
    """The automatic layered layout of every node of ``doc``."""
    sizes = {node_id: node_size(base_look(doc.layer_view(node_id))) for node_id in doc.node_ids()}
    return layered_layout(doc, sizes, style.ROW_SPACING, style.COLUMN_SPACING)


class NetScene(QGraphicsScene):
    """Nodes and edges of one NetDocument."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.doc: NetDocument | None = None
        self.editor: NetEditor | None = None
        self.analysis: NetAnalysis | None = None
        self.diff_marks: dict[int, str] = {}
        self.show_shapes = True
        self._nodes: dict[int, NodeItem] = {}
        self._edges: dict[Link, EdgeItem] = {}
        self._interaction: Interaction | None = None
        self.setItemIndexMethod(QGraphicsScene.BspTreeIndex)

    # -- following the model -------------------------------------------------------
    def set_document(self, doc: NetDocument) -> None:
        self.doc = doc
        doc.net_reset.connect(self._on_net_reset)
        doc.layer_added.connect(self._on_layer_added)
        doc.layer_removed.connect(self._on_layer_removed)
        doc.layer_changed.connect(self._on_layer_changed)
        doc.link_added.connect(self._on_link_added)
        doc.link_removed.connect(self._on_link_removed)
        doc.node_moved.connect(self._on_node_moved)
        self._on_net_reset()

    def _on_net_reset(self) -> None:
        self.clear_interaction()
        self._nodes.clear()
        self.clear()
        self._nodes.clear()
        self._edges.clear()
        self.diff_marks = {}
        if self.editor is None:  # no editor analyses this scene's nets (a thumbnail)
            self.analysis = None
        for node_id in self.doc.node_ids():
            self._on_layer_added(node_id)
        for link in self.doc.links():
            self._on_link_added(link)

    def _on_layer_added(self, node_id: int) -> None:
        item = NodeItem(node_id, self.look_for(node_id))
        item.setPos(*self.doc.position(node_id))
        self.addItem(item)
        self._nodes[node_id] = item

    def _on_layer_removed(self, node_id: int) -> None:
        item = self._nodes.pop(node_id)
        for edge in list(item.edges):
            self._drop_edge(edge.link)
        self.removeItem(item)

    def _on_layer_changed(self, node_id: int) -> None:
        item = self._nodes[node_id]
        look = self.look_for(node_id)
        if (look.bottom_ports, look.top_ports) == (len(item.bottom_ports), len(item.top_ports)):
            item.set_look(look)
            return
        edges = [edge.link for edge in item.edges]
        for link in edges:  # ports are rebuilt, so edges re-attach to the new ones
            self._drop_edge(link)
        item.set_look(look)
        for link in edges:
            if self.doc.has_link(link):
                self._on_link_added(link)

    def _on_link_added(self, link: Link) -> None:
        if link in self._edges:
            return
        source, sink = self._nodes.get(link.source), self._nodes.get(link.sink)
        if source is None or sink is None:
            return
        top, bottom = source.port("top", link.top_index), sink.port("bottom", link.bottom_index)
        if top is None or bottom is None:
            return
        edge = EdgeItem(link, top, bottom)
        edge.show_label = self.show_shapes and not is_in_place(self.doc.layer_view(link.sink))
        self._label_edge(edge)
        self.addItem(edge)
        self._edges[link] = edge

    def _on_link_removed(self, link: Link) -> None:
        self._drop_edge(link)

    def _drop_edge(self, link: Link) -> None:
        edge = self._edges.pop(link, None)
        if edge is not None:
            edge.detach()
            self.removeItem(edge)

    def _on_node_moved(self, node_id: int, position: tuple[float, float]) -> None:
        item = self._nodes[node_id]
        if (item.pos().x(), item.pos().y()) != position:
            item.setPos(*position)

    # -- looks ---------------------------------------------------------------------
    def look_for(self, node_id: int) -> NodeLook:
        look = base_look(self.doc.layer_view(node_id))
        look.diff = self.diff_marks.get(node_id)
        report = self.analysis.nodes.get(node_id) if self.analysis else None
        if report is not None:
            look.active = report.active
            look.shape_text = report.shape_text() if self.show_shapes else ""
            look.stats_text = report.stats_text() if self.show_shapes else ""
            look.errors, look.warnings = list(report.errors), list(report.warnings)
            look.blocked_by = report.blocked_by
        return look

    def _label_edge(self, edge: EdgeItem) -> None:
        shape = self.analysis.blob_shape(edge.link.source, edge.link.blob) if self.analysis \
            else None
        edge.set_label(format_shape(shape) if shape is not None else "")

    def apply_analysis(self, analysis: NetAnalysis | None) -> None:
        self.analysis = analysis
        self.refresh_looks()

    def set_diff_marks(self, marks: dict[int, str]) -> None:
        self.diff_marks = dict(marks)
        self.refresh_looks()

    def refresh_looks(self) -> None:
        for node_id, item in self._nodes.items():
            look = self.look_for(node_id)
            if look != item.look:
                item.set_look(look)
        for edge in self._edges.values():
            self._label_edge(edge)

    def set_item_caching(self, on: bool) -> None:
        """Pixmap caching speeds up drags; off for exports, so SVG keeps real text."""
        mode = NodeItem.DeviceCoordinateCache if on else NodeItem.NoCache
        for item in self._nodes.values():
            item.setCacheMode(mode)

    # -- queries -------------------------------------------------------------------
    def node_item(self, node_id: int) -> NodeItem:
        return self._nodes[node_id]

    def node_items(self) -> list[NodeItem]:
        return list(self._nodes.values())

    def edge_item(self, link: Link) -> EdgeItem:
        return self._edges[link]

    def edge_items(self) -> list[EdgeItem]:
        return list(self._edges.values())

    def selected_node_ids(self) -> list[int]:
        order = {node_id: i for i, node_id in enumerate(self.doc.node_ids())}
        # While the scene is being cleared Qt reports items the document no longer has.
        ids = [item.node_id for item in self.selectedItems()
               if isinstance(item, NodeItem) and item.node_id in self._nodes
               and item.node_id in self.doc]
        return sorted(ids, key=lambda i: order.get(i, 0))

    def selected_links(self) -> list[Link]:
        return [item.link for item in self.selectedItems() if isinstance(item, EdgeItem)]

    def select_nodes(self, node_ids: list[int]) -> None:
        self.clearSelection()
        for node_id in node_ids:
            if node_id in self._nodes:
                self._nodes[node_id].setSelected(True)

    def node_at(self, pos: QPointF) -> NodeItem | None:
        for item in self.items(pos):
            if isinstance(item, NodeItem):
                return item
        return None

    def port_at(self, pos: QPointF) -> PortItem | None:
        for item in self.items(pos):
            if isinstance(item, NodeItem):
                port = item.port_at(item.mapFromScene(pos))
                if port is not None:
                    return port
        return None

    def edge_under(self, node: NodeItem) -> EdgeItem | None:
        """An edge the node was dropped onto (not one of its own)."""
        rect = node.mapRectToScene(node.body_rect())
        for item in self.items(rect, Qt.IntersectsItemShape):
            if isinstance(item, EdgeItem) and node not in (item.source.node, item.sink.node):
                return item
        return None

    def edge_at(self, pos: QPointF) -> EdgeItem | None:
        for item in self.items(pos):
            if isinstance(item, EdgeItem):
                return item
        return None

    # -- gestures ------------------------------------------------------------------
    def set_interaction(self, interaction: Interaction | None) -> None:
        self._interaction = interaction

    def clear_interaction(self) -> None:
        if self._interaction is not None:
            self._interaction.cancel()
        self._interaction = None

    def mousePressEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        from dlp.gui.net.interactions import LinkDrawing, NodeDrag

        self.clear_interaction()
        if event.button() == Qt.LeftButton and self.editor is not None:
            port = self.port_at(event.scenePos())
            if port is not None:
                self._interaction = LinkDrawing(self, port)
                event.accept()
                return
        super().mousePressEvent(event)
        if event.button() == Qt.LeftButton and self.editor is not None:
            node = self.node_at(event.scenePos())
            if node is not None and node.isSelected():
                self._interaction = NodeDrag(self)

    def mouseMoveEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self._interaction is not None and self._interaction.mouse_move(event):
            return
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        interaction = self._interaction
        if interaction is not None and interaction.consumes_release:
            self._interaction = None
            interaction.mouse_release(event)
            return
        super().mouseReleaseEvent(event)
        self._interaction = None
        if interaction is not None:
            interaction.mouse_release(event)

    def mouseDoubleClickEvent(self, event: QGraphicsSceneMouseEvent) -> None:
        if self.editor is not None and self.node_at(event.scenePos()) is None \
                and event.button() == Qt.LeftButton:
            self.editor.request_quick_add(event.scenePos())
            event.accept()
            return
        super().mouseDoubleClickEvent(event)
