"""One small state object per canvas gesture (Orange's interaction habit).

The scene creates an interaction on mouse press and forwards move/release to it;
the interaction asks the editor to push the resulting command on release, so a
whole gesture is one undo step. Rubber-band selection is Qt's own (the view's
RubberBandDrag mode), panning is the view's.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from PyQt5.QtCore import QPointF
from PyQt5.QtGui import QPainterPath, QPen
from PyQt5.QtWidgets import QGraphicsPathItem, QGraphicsSceneMouseEvent

from dlp.gui.net import style
from dlp.gui.net.items import NodeItem, PortItem
from dlp.gui.net.layout import attachment_hosts

if TYPE_CHECKING:
    from dlp.gui.net.scene import NetScene


class Interaction:
    """Base: ``mouse_move`` returns True when it handled the event itself."""

    consumes_release = False

    def __init__(self, scene: NetScene) -> None:
        self.scene = scene

    def mouse_move(self, event: QGraphicsSceneMouseEvent) -> bool:
        return False

    def mouse_release(self, event: QGraphicsSceneMouseEvent) -> None:
        pass

    def cancel(self) -> None:
        pass


class LinkDrawing(Interaction):
    """Drag from a top port to a bottom port (or back) to wire a blob."""

    consumes_release = True

    def __init__(self, scene: NetScene, port: PortItem) -> None:
        super().__init__(scene)
        self.port = port
        self.line = QGraphicsPathItem()
        self.line.setPen(QPen(style.EDGE_HOVER, 2.0))
        self.line.setZValue(5)
        scene.addItem(self.line)
        self._draw(port.scenePos())

    def _draw(self, cursor: QPointF) -> None:
        start = self.port.scenePos()
        down = 1 if self.port.kind == "top" else -1
        bend = max(24.0, abs(cursor.y() - start.y()) * 0.45)
        path = QPainterPath(start)
        path.cubicTo(start + QPointF(0, down * bend), cursor - QPointF(0, down * bend), cursor)
        self.line.setPath(path)

    def mouse_move(self, event: QGraphicsSceneMouseEvent) -> bool:
        self._draw(event.scenePos())
        return True

    def mouse_release(self, event: QGraphicsSceneMouseEvent) -> None:
        self.cancel()
        target = self.scene.port_at(event.scenePos())
        if target is None:
            node = self.scene.node_at(event.scenePos())
            if node is None and self.port.kind == "bottom" and self._dragged(event):
                # pulled a wired bottom off into empty canvas: unplug it
                links = [edge.link for edge in self.port.node.edges
                         if edge.sink is self.port]
                self.scene.editor.disconnect_links(links)
                return
            if node is None or node is self.port.node:
                return
            wanted = "bottom" if self.port.kind == "top" else "top"
            ports = node.bottom_ports if wanted == "bottom" else node.top_ports
            if not ports:
                return
            # onto a node's body: its first free bottom (or first top)
            names = node.look.bottom_names if wanted == "bottom" else []
            target = ports[min(len(names), len(ports) - 1)]
        if target.kind == self.port.kind or target.node is self.port.node:
            return
        top, bottom = (self.port, target) if self.port.kind == "top" else (target, self.port)
        self.scene.editor.connect_ports(top.node_id, top.index, bottom.node_id, bottom.index)

    def _dragged(self, event: QGraphicsSceneMouseEvent) -> bool:
        delta = event.scenePos() - self.port.scenePos()
        return abs(delta.x()) + abs(delta.y()) > 30

    def cancel(self) -> None:
        if self.line.scene() is not None:
            self.scene.removeItem(self.line)


class NodeDrag(Interaction):
    """Moving the selection; attached in-place layers follow their host.

    Qt moves the selected items; on release the editor records one MoveNodesCommand
    (and inserts a lone node into the edge it was dropped on).
    """

    def __init__(self, scene: NetScene) -> None:
        super().__init__(scene)
        self.moved: list[NodeItem] = [item for item in scene.selectedItems()
                                      if isinstance(item, NodeItem)]
        self.start = {item.node_id: (item.pos().x(), item.pos().y()) for item in self.moved}
        self.followers: list[tuple[NodeItem, NodeItem, QPointF]] = []
        hosts = attachment_hosts(scene.doc)
        chosen = set(self.start)
        children: dict[int, list[int]] = {}
        for child, host in hosts.items():
            children.setdefault(host, []).append(child)
        stack = list(chosen)
        while stack:
            host = stack.pop()
            for child in children.get(host, []):
                if child not in chosen:
                    chosen.add(child)
                    stack.append(child)
                    root = self._root(host, hosts)
                    host_item, child_item = scene.node_item(root), scene.node_item(child)
                    self.followers.append((host_item, child_item,
                                           child_item.pos() - host_item.pos()))
                    self.start[child] = (child_item.pos().x(), child_item.pos().y())

    def _root(self, node_id: int, hosts: dict[int, int]) -> int:
        while node_id not in {item.node_id for item in self.moved} and node_id in hosts:
            node_id = hosts[node_id]
        return node_id

    def mouse_move(self, event: QGraphicsSceneMouseEvent) -> bool:
        for host, child, offset in self.followers:
            child.setPos(host.pos() + offset)
        return False

    def mouse_release(self, event: QGraphicsSceneMouseEvent) -> None:
        for host, child, offset in self.followers:
            child.setPos(host.pos() + offset)
        end = {node_id: (self.scene.node_item(node_id).pos().x(),
                         self.scene.node_item(node_id).pos().y())
               for node_id in self.start if node_id in self.scene.doc}
        if end == {k: v for k, v in self.start.items() if k in end}:
            return
        insert_into = None
        if len(self.moved) == 1 and not self.followers:
            item = self.moved[0]
            if not item.edges:
                edge = self.scene.edge_under(item)
                insert_into = edge.link if edge is not None else None
        self.scene.editor.finish_move(self.start, end, insert_into)
