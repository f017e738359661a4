"""Undo commands of the net editor: each changes only the NetDocument.

One command per user action; compound actions (paste, insert-into-edge, library
drop) are QUndoCommand parents with child commands, as in Orange's canvas.
"""

from __future__ import annotations

from typing import Any

from PyQt5.QtWidgets import QUndoCommand

from dlp.net.document import NetDocument, Position


class AddLayerCommand(QUndoCommand):
    def __init__(self, doc: NetDocument, layer: Any, position: Position,
                 index: int | None = None, parent: QUndoCommand | None = None) -> None:
        super().__init__(f"Add {layer.type} '{layer.name}'", parent)
        self.doc, self.layer, self.position, self.index = doc, layer, position, index
        self.node_id: int | None = None

    def redo(self) -> None:
        self.node_id = self.doc.add_layer(self.layer, self.position, self.index, self.node_id)

    def undo(self) -> None:
        self.doc.remove_layer(self.node_id)


class RemoveLayerCommand(QUndoCommand):
    def __init__(self, doc: NetDocument, node_id: int, parent: QUndoCommand | None = None) -> None:
        super().__init__(f"Delete '{doc.layer_view(node_id).name}'", parent)
        self.doc, self.node_id = doc, node_id
        self._saved: tuple[int, Any, Position] | None = None

    def redo(self) -> None:
        self._saved = self.doc.remove_layer(self.node_id)

    def undo(self) -> None:
        index, layer, position = self._saved
        self.doc.add_layer(layer, position, index, self.node_id)


class SetLayerCommand(QUndoCommand):
    """Replace one layer's parameters (a property edit, a new link, a rename)."""

    def __init__(self, doc: NetDocument, node_id: int, layer: Any, text: str,
                 parent: QUndoCommand | None = None) -> None:
        super().__init__(text, parent)
        self.doc, self.node_id, self.new = doc, node_id, layer
        self.old = doc.layer(node_id)

    def redo(self) -> None:
        self.doc.set_layer(self.node_id, self.new)

    def undo(self) -> None:
        self.doc.set_layer(self.node_id, self.old)


class MoveNodesCommand(QUndoCommand):
    """A finished drag: recorded on mouse release, so a whole drag is one step."""

    def __init__(self, doc: NetDocument, old: dict[int, Position], new: dict[int, Position],
                 parent: QUndoCommand | None = None) -> None:
        count = len(new)
        super().__init__(f"Move {count} layer{'s' if count != 1 else ''}", parent)
        self.doc, self.old, self.new = doc, dict(old), dict(new)

    def redo(self) -> None:
        self.doc.set_positions(self.new)

    def undo(self) -> None:
        self.doc.set_positions(self.old)


class MoveLayerOrderCommand(QUndoCommand):
    def __init__(self, doc: NetDocument, node_id: int, index: int,
                 parent: QUndoCommand | None = None) -> None:
        super().__init__("Reorder layer", parent)
        self.doc, self.node_id, self.index = doc, node_id, index
        self.old_index = doc.index_of(node_id)

    def redo(self) -> None:
        self.doc.move_layer(self.node_id, self.index)

    def undo(self) -> None:
        self.doc.move_layer(self.node_id, self.old_index)


class ReplaceNetCommand(QUndoCommand):
    """Swap the whole net (import, open from the library, a text-view edit).

    Node ids are kept for layers whose names survive, so commands further down the
    stack and the canvas selection still refer to the right layers after undo.
    """

    def __init__(self, doc: NetDocument, net: Any, positions: dict[str, Position], text: str,
                 parent: QUndoCommand | None = None) -> None:
        super().__init__(text, parent)
        self.doc = doc
        self.new_net, self.new_positions = net, dict(positions)
        self.old_net, self.old_positions = doc.to_net(), doc.positions_by_name()
        self.old_ids = doc.node_ids()
        by_name: dict[str, int] = {}
        for node_id in self.old_ids:
            by_name.setdefault(doc.layer_view(node_id).name, node_id)
        self.new_ids: list[int | None] = []
        for layer in net.layer:
            self.new_ids.append(by_name.pop(layer.name, None))

    def redo(self) -> None:
        ids = self.doc.set_net(self.new_net, self.new_positions, self.new_ids)
        self.new_ids = ids

    def undo(self) -> None:
        self.doc.set_net(self.old_net, self.old_positions, self.old_ids)


class SetHeaderCommand(QUndoCommand):
    def __init__(self, doc: NetDocument, header: Any, text: str = "Edit net settings",
                 parent: QUndoCommand | None = None) -> None:
        super().__init__(text, parent)
        self.doc, self.new, self.old = doc, header, doc.header()

    def redo(self) -> None:
        self.doc.set_header(self.new)

    def undo(self) -> None:
        self.doc.set_header(self.old)
