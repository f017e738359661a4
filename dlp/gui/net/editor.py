"""The editing layer between gestures/panels and the NetDocument: every user action
becomes one command on the undo stack (a QUndoCommand macro when it has parts)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from google.protobuf import text_format
from PyQt5.QtCore import QObject, QPointF, QTimer, pyqtSignal
from PyQt5.QtWidgets import QUndoCommand, QUndoStack

from dlp.errors import DLPError
from dlp.fsutil import atomic_write_text
from dlp.gui.net import style
from dlp.gui.net.analysis import NetAnalysis, analyse
from dlp.gui.net.commands import (
    AddLayerCommand,
    MoveLayerOrderCommand,
    MoveNodesCommand,
    RemoveLayerCommand,
    ReplaceNetCommand,
    SetLayerCommand,
)
from dlp.gui.net.layout import ATTACH_GAP, attachment_hosts
from dlp.gui.net.library_glue import library_paths, load_library_net
from dlp.gui.net.placement import complete_positions, layout_path_for, read_layout
from dlp.gui.net.scene import NetScene, layout_positions
from dlp.net.document import Link, NetDocument, Position, is_in_place
from dlp.proto import caffe_pb2

LAYERS_MIME = "application/x-dlp-layers"

# Sensible starting parameters for a freshly added layer (prototxt fragments).
DEFAULT_PARAMS: dict[str, str] = {
    "Convolution": 'convolution_param { num_output: 64 kernel_size: 3 pad: 1 '
                   'weight_filler { type: "msra" } }',
    "Deconvolution": 'convolution_param { num_output: 2 kernel_size: 4 stride: 2 '
                     'bias_term: false weight_filler { type: "bilinear" } }',
    "Pooling": "pooling_param { pool: MAX kernel_size: 2 stride: 2 }",
    "InnerProduct": 'inner_product_param { num_output: 10 weight_filler { type: "xavier" } }',
    "Dropout": "dropout_param { dropout_ratio: 0.5 }",
    "Input": "input_param { shape { dim: 1 dim: 1 dim: 256 dim: 256 } }",
}
# Types Caffe nets usually run in place when they follow a layer.
IN_PLACE_TYPES = {"ReLU", "PReLU", "ELU", "Sigmoid", "TanH", "Dropout", "Swish", "Clip",
                  "BatchNorm", "Scale"}
BASE_NAMES = {"Convolution": "conv", "Deconvolution": "upscore", "Pooling": "pool",
              "InnerProduct": "fc", "ReLU": "relu", "Dropout": "drop", "BatchNorm": "bn",
              "Scale": "scale", "Eltwise": "sum", "Concat": "concat", "Softmax": "prob",
              "SoftmaxWithLoss": "loss", "Accuracy": "accuracy", "Crop": "crop",
              "Input": "data", "Data": "data", "Sigmoid": "sigmoid", "LRN": "norm"}


class NetEditor(QObject):
    """Owns the document, the undo stack and the scene; turns actions into commands.

    Signals: ``analysis_ready(NetAnalysis)``, ``quick_add_requested(QPointF)``,
    ``message(str)`` (a refusal or failure to show the user).
    """

    analysis_ready = pyqtSignal(object)
    data_shape_changed = pyqtSignal(object)
    quick_add_requested = pyqtSignal(QPointF)
    message = pyqtSignal(str)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.doc = NetDocument()
        self.undo_stack = QUndoStack(self)
        self.scene = NetScene(self)
        self.scene.editor = self
        # Analyse a replaced net before the scene builds it, so every node is drawn once
        # with its shapes (connected first: observers run in connection order).
        self.doc.net_reset.connect(self._on_net_reset)
        self.scene.set_document(self.doc)
        self.phase = "TRAIN"
        self.data_shape: tuple[int, ...] | None = None
        self.base_dir: Path | None = None  # where relative Data sources are looked up
        self.library_paths: list[Path] = library_paths(None)
        self.analysis: NetAnalysis | None = None
        self._analysis_timer = QTimer(self)
        self._analysis_timer.setSingleShot(True)
        self._analysis_timer.setInterval(150)
        self._analysis_timer.timeout.connect(self.run_analysis)
        self.doc.changed.connect(self._analysis_timer.start)
        self._analysed: tuple[int, str, Any, Any] | None = None

    # -- analysis ------------------------------------------------------------------
    def _analysis_key(self) -> tuple[int, str, Any, Any]:
        return (self.doc.revision, self.phase, self.data_shape, self.base_dir)

    def _on_net_reset(self) -> None:
        self._analysis_timer.stop()
        self.analysis = analyse(self.doc, self.phase, self.data_shape, self.base_dir)
        self._analysed = self._analysis_key()
        self.scene.analysis = self.analysis  # the scene builds its nodes from it next
        QTimer.singleShot(0, self._announce_analysis)

    def _announce_analysis(self) -> None:
        if self.analysis is not None:
            self.analysis_ready.emit(self.analysis)

    def run_analysis(self) -> NetAnalysis:
        """Shapes, parameters, FLOPs and problems of the current net, drawn on the canvas
        (computed again only when the net, phase or data shape changed)."""
        self._analysis_timer.stop()
        if self.analysis is not None and self._analysed == self._analysis_key():
            return self.analysis
        self.analysis = analyse(self.doc, self.phase, self.data_shape, self.base_dir)
        self._analysed = self._analysis_key()
        self.scene.apply_analysis(self.analysis)
        self.analysis_ready.emit(self.analysis)
        return self.analysis

    def set_data_shape(self, shape: tuple[int, ...] | None) -> None:
        """One sample's (C, H, W) for Data layers whose database is not there (yet)."""
        self.data_shape = tuple(shape) if shape else None
        self.data_shape_changed.emit(self.data_shape)
        self.run_analysis()

    def set_phase(self, phase: str) -> None:
        self.phase = phase
        self.run_analysis()

    # -- adding layers ---------------------------------------------------------------
    def new_layer(self, type_name: str, bottom: str | None = None) -> Any:
        """A LayerParameter of ``type_name`` with unique names and default parameters."""
        from dlp.net.specs import get_spec

        spec = get_spec(type_name)  # UnknownLayerTypeError names the closest types
        base = BASE_NAMES.get(type_name, type_name.lower())
        layer = caffe_pb2.LayerParameter(type=type_name)
        layer.name = self.doc.fresh_layer_name(base if spec.category == "Data" else f"{base}1")
        if type_name in DEFAULT_PARAMS:
            text_format.Merge(DEFAULT_PARAMS[type_name], layer)
        if bottom is not None and spec.bottoms[1] != 0:
            layer.bottom.append(bottom)
        min_tops, max_tops = spec.top_count_range(layer)
        top_count = max(min_tops, 1 if max_tops is None or max_tops >= 1 else 0)
        in_place = bottom is not None and type_name in IN_PLACE_TYPES
        for i in range(top_count):
            if i == 0 and in_place:
                layer.top.append(bottom)
            else:
                wanted = layer.name if i == 0 else f"{layer.name}_{i}"
                layer.top.append(self.doc.fresh_blob_name(wanted))
        return layer

    def add_layer(self, type_name: str, position: Position,
                  wire_from: tuple[int, int] | None = None) -> int | None:
        """Add a layer at ``position`` (its top-centre), optionally fed by a node's top."""
        try:
            bottom = self.doc.layer_view(wire_from[0]).top[wire_from[1]] if wire_from else None
            layer = self.new_layer(type_name, bottom)
        except (DLPError, IndexError) as exc:
            self.message.emit(str(exc))
            return None
        command = AddLayerCommand(self.doc, layer, position)
        self.undo_stack.push(command)
        self.scene.select_nodes([command.node_id])
        return command.node_id

    def drop_layer_type(self, type_name: str, scene_pos: QPointF) -> int | None:
        """A palette drop: add the layer there; dropped on an edge, insert it into the edge."""
        try:
            layer = self.new_layer(type_name)
        except DLPError as exc:
            self.message.emit(str(exc))
            return None
        position = (scene_pos.x(), scene_pos.y() - style.NODE_HEADER / 2)
        edge = self.scene.edge_at(scene_pos)
        macro = QUndoCommand(f"Add {type_name} '{layer.name}'")
        add = AddLayerCommand(self.doc, layer, position, parent=macro)
        if edge is None:
            self.undo_stack.push(macro)
        else:
            add.redo()  # the insertion below needs the node id; push replays from here
            self._insert_commands(add.node_id, edge.link, macro)
            add.undo()
            self.undo_stack.push(macro)
        self.scene.select_nodes([add.node_id])
        return add.node_id

    def quick_add(self, type_name: str, scene_pos: QPointF) -> int | None:
        """Quick add: the new layer is wired to the selected layer's first top; an in-place
        layer (ReLU after a convolution) is hung under its host instead of at the cursor."""
        selected = self.scene.selected_node_ids()
        wire_from = None
        position = (scene_pos.x(), scene_pos.y())
        if selected and self.doc.layer_view(selected[-1]).top:
            wire_from = (selected[-1], 0)
            if type_name in IN_PLACE_TYPES:
                position = self._below_attached(selected[-1])
        return self.add_layer(type_name, position, wire_from)

    def _below_attached(self, host: int) -> Position:
        """Where a new in-place layer hangs: under the host and what already hangs there."""
        hosts = attachment_hosts(self.doc)
        chain = [host]
        for node_id in self.doc.node_ids():
            if hosts.get(node_id) in chain:
                chain.append(node_id)
        x = self.doc.position(host)[0]
        bottom = max(self.doc.position(n)[1] + self.scene.node_item(n).body_rect().height()
                     for n in chain)
        return (x, bottom + ATTACH_GAP)

    def request_quick_add(self, scene_pos: QPointF) -> None:
        self.quick_add_requested.emit(scene_pos)

    # -- wiring --------------------------------------------------------------------
    def connect_ports(self, source: int, top_index: int, sink: int, bottom_index: int) -> bool:
        """Feed the sink's bottom slot from the source's top (one undo step)."""
        if source == sink:
            return False
        source_layer = self.doc.layer_view(source)
        sink_layer = self.doc.layer_view(sink)
        if top_index >= len(source_layer.top):
            self.message.emit(f"layer '{source_layer.name}' has no top {top_index}")
            return False
        from dlp.net.specs import get_spec

        try:
            max_bottoms = get_spec(sink_layer.type).bottoms[1]
        except DLPError:
            max_bottoms = None
        if max_bottoms is not None and bottom_index >= max_bottoms:
            self.message.emit(f"layer '{sink_layer.name}' ({sink_layer.type}) takes at most "
                              f"{max_bottoms} bottom(s)")
            return False
        new = self.doc.connected_layer(source, top_index, sink, bottom_index)
        if new == sink_layer:
            return False
        macro = QUndoCommand(f"Connect {source_layer.name} → {sink_layer.name}")
        SetLayerCommand(self.doc, sink, new, macro.text(), parent=macro)
        if self.doc.index_of(sink) < self.doc.index_of(source):
            # Caffe runs layers in file order: the consumer must come after its producer.
            MoveLayerOrderCommand(self.doc, sink, self.doc.index_of(source), parent=macro)
        self.undo_stack.push(macro)
        return True

    def _insert_commands(self, node_id: int, link: Link, parent: QUndoCommand) -> None:
        """Children of ``parent`` that put node ``node_id`` into ``link``'s edge."""
        layer = self.doc.layer(node_id)
        if not layer.top:
            return
        del layer.bottom[:]
        layer.bottom.append(link.blob)
        if is_in_place(layer):
            return
        SetLayerCommand(self.doc, node_id, layer, "wire", parent=parent)
        sink_layer = self.doc.layer(link.sink)
        sink_layer.bottom[link.bottom_index] = layer.top[0]
        SetLayerCommand(self.doc, link.sink, sink_layer, "wire", parent=parent)
        node_index, sink_index = self.doc.index_of(node_id), self.doc.index_of(link.sink)
        target = sink_index - 1 if node_index < sink_index else sink_index
        if node_index < self.doc.index_of(link.source) or node_index > sink_index:
            MoveLayerOrderCommand(self.doc, node_id, target, parent=parent)

    def finish_move(self, old: dict[int, Position], new: dict[int, Position],
                    insert_into: Link | None = None) -> None:
        """End of a drag: one step (plus the insertion when dropped onto an edge)."""
        macro = QUndoCommand(f"Move {len(new)} layer{'s' if len(new) != 1 else ''}")
        MoveNodesCommand(self.doc, old, new, parent=macro)
        if insert_into is not None and len(new) == 1:
            (node_id,) = new
            macro.setText(f"Insert '{self.doc.layer_view(node_id).name}' into {insert_into.blob}")
            self._insert_commands(node_id, insert_into, macro)
        self.undo_stack.push(macro)

    def nudge_selected(self, dx: float, dy: float) -> None:
        """Arrow keys: move the selection (with its attached in-place layers) a little."""
        chosen = set(self.scene.selected_node_ids())
        hosts = attachment_hosts(self.doc)
        for node_id in self.doc.node_ids():  # hosts come before what hangs on them
            if hosts.get(node_id) in chosen:
                chosen.add(node_id)
        old = {n: self.doc.position(n) for n in chosen}
        new = {n: (x + dx, y + dy) for n, (x, y) in old.items()}
        if new:
            self.undo_stack.push(MoveNodesCommand(self.doc, old, new))

    # -- deleting, copying ---------------------------------------------------------------
    def delete_nodes(self, node_ids: list[int]) -> None:
        """Delete layers; a consumer of a deleted one-input layer is bridged to its input."""
        doomed = [n for n in node_ids if n in self.doc]
        if not doomed:
            return
        macro = QUndoCommand(f"Delete {len(doomed)} layer{'s' if len(doomed) != 1 else ''}")
        gone = set(doomed)
        rewired: dict[int, Any] = {}
        for link in sorted(self.doc.links(), key=lambda k: -k.bottom_index):
            if link.source not in gone or link.sink in gone:
                continue
            removed = self.doc.layer_view(link.source)
            if is_in_place(removed):
                continue  # the consumer keeps reading the same blob from the host
            layer = rewired.setdefault(link.sink, self.doc.layer(link.sink))
            if len(removed.bottom) == 1:
                layer.bottom[link.bottom_index] = removed.bottom[0]
            else:
                del layer.bottom[link.bottom_index]
        for sink, layer in rewired.items():
            SetLayerCommand(self.doc, sink, layer, "rewire", parent=macro)
        for node_id in doomed:
            RemoveLayerCommand(self.doc, node_id, parent=macro)
        self.undo_stack.push(macro)

    def delete_selected(self) -> None:
        """Delete the selected layers, or disconnect the selected links."""
        nodes = self.scene.selected_node_ids()
        if nodes:
            self.delete_nodes(nodes)
        else:
            self.disconnect_links(self.scene.selected_links())

    def disconnect_links(self, links: list[Link]) -> None:
        """Remove the bottoms the links feed (one undo step)."""
        if not links:
            return
        macro = QUndoCommand(f"Disconnect {', '.join(sorted({link.blob for link in links}))}")
        by_sink: dict[int, list[int]] = {}
        for link in links:
            by_sink.setdefault(link.sink, []).append(link.bottom_index)
        for sink, indices in by_sink.items():
            layer = self.doc.layer(sink)
            for index in sorted(set(indices), reverse=True):
                del layer.bottom[index]
            SetLayerCommand(self.doc, sink, layer, macro.text(), parent=macro)
        self.undo_stack.push(macro)

    def copy_text(self, node_ids: list[int]) -> str:
        """The layers as a prototxt fragment with their positions (the clipboard payload)."""
        net = caffe_pb2.NetParameter()
        positions = {}
        for node_id in node_ids:
            net.layer.add().CopyFrom(self.doc.layer_view(node_id))
            positions[self.doc.layer_view(node_id).name] = self.doc.position(node_id)
        return json.dumps({"prototxt": text_format.MessageToString(net), "positions": positions})

    def paste_text(self, payload: str, offset: Position = (40.0, 40.0),
                   at: Position | None = None, text: str = "Paste") -> list[int]:
        """Add copied layers with fresh layer and blob names; returns the new node ids."""
        try:
            data = json.loads(payload)
            net = text_format.Parse(data["prototxt"], caffe_pb2.NetParameter())
            positions = {k: tuple(v) for k, v in data.get("positions", {}).items()}
        except (ValueError, KeyError, TypeError, text_format.ParseError) as exc:
            self.message.emit(f"the clipboard holds no DLP layers: {exc}")
            return []
        return self.add_net_fragment(net, positions, offset, at, text)

    def add_net_fragment(self, net: Any, positions: dict[str, Position],
                         offset: Position = (0.0, 0.0), at: Position | None = None,
                         text: str = "Paste") -> list[int]:
        if not len(net.layer):
            return []
        layer_names = set(self.doc.layer_names())
        blob_names = self.doc.blob_names()
        blob_map: dict[str, str] = {}
        layers = []
        for original in net.layer:
            layer = caffe_pb2.LayerParameter()
            layer.CopyFrom(original)
            layer.name = _fresh(layer.name, layer_names)
            layer.bottom[:] = [blob_map.get(b, b) for b in original.bottom]
            tops = []
            for top in original.top:
                if top in original.bottom or top in blob_map:  # in place, or a phase twin
                    tops.append(blob_map.get(top, top))
                else:
                    blob_map[top] = _fresh(top, blob_names)
                    tops.append(blob_map[top])
            layer.top[:] = tops
            layers.append((original.name, layer))
        known = [positions[name] for name, _ in layers if name in positions]
        if len(known) < len(layers):
            fragment = NetDocument(net)
            laid = layout_positions(fragment)
            positions = {fragment.layer_view(i).name: laid[i] for i in fragment.node_ids()}
            known = list(positions.values())
        left = min(p[0] for p in known)
        top = min(p[1] for p in known)
        dx, dy = (at[0] - left, at[1] - top) if at is not None else offset
        macro = QUndoCommand(f"{text} {len(layers)} layer{'s' if len(layers) != 1 else ''}")
        children = []
        for name, layer in layers:
            x, y = positions.get(name, (left, top))
            children.append(AddLayerCommand(self.doc, layer, (x + dx, y + dy), parent=macro))
        self.undo_stack.push(macro)
        ids = [child.node_id for child in children]
        self.scene.select_nodes(ids)
        return ids

    def duplicate_selected(self) -> list[int]:
        selected = self.scene.selected_node_ids()
        return self.paste_text(self.copy_text(selected), text="Duplicate") if selected else []

    # -- whole nets ----------------------------------------------------------------
    def replace_net(self, net: Any, positions: dict[str, Position] | None = None,
                    text: str = "Replace net") -> None:
        """Swap the whole net (one undo step); layers without a position are laid out."""
        positions = complete_positions(net, positions or {})
        self.undo_stack.push(ReplaceNetCommand(self.doc, net, positions, text))

    def import_file(self, path: str | Path) -> None:
        """Open a .prototxt (V0/V1/V2); positions come from ``<stem>.layout.json`` if any."""
        from dlp.net.prototxt import read_net

        path = Path(path)
        net = read_net(path)
        self.replace_net(net, read_layout(layout_path_for(path)), f"Import {path.name}")

    def export(self, path: str | Path, deploy_path: str | Path | None = None) -> Path:
        """Write train_val (and the derived deploy net beside it) plus the layout file."""
        from dlp.net.deploy import derive_deploy_net
        from dlp.net.prototxt import write_net

        path = Path(path)
        net = self.doc.to_net()
        input_shape = (1, *self.data_shape) if self.data_shape else None
        deploy = derive_deploy_net(net, input_shape, base_dir=self.base_dir)
        write_net(net, path)
        atomic_write_text(layout_path_for(path), self.doc.layout_json())
        deploy_path = Path(deploy_path) if deploy_path else path.with_name("deploy.prototxt")
        write_net(deploy, deploy_path)
        return deploy_path

    def auto_layout(self) -> None:
        if not len(self.doc):
            return
        new = layout_positions(self.doc)
        old = {node_id: self.doc.position(node_id) for node_id in new}
        self.undo_stack.push(MoveNodesCommand(self.doc, old, new))

    # -- library -------------------------------------------------------------------
    def drop_library_entry(self, name: str, scene_pos: QPointF) -> list[int]:
        """Add a library net's layers at the drop point (renamed where they clash)."""
        try:
            net, positions, input_shape = load_library_net(name, self.library_paths)
        except DLPError as exc:
            self.message.emit(str(exc))
            return []
        if self.data_shape is None:
            self.set_data_shape(input_shape)
        return self.add_net_fragment(net, positions, at=(scene_pos.x(), scene_pos.y()),
                                     text=f"Add '{name}':")

    def open_library_entry(self, name: str) -> None:
        try:
            net, positions, input_shape = load_library_net(name, self.library_paths)
        except DLPError as exc:
            self.message.emit(str(exc))
            return
        if self.data_shape is None:
            self.set_data_shape(input_shape)
        self.replace_net(net, positions, f"Open '{name}' from the library")


def _fresh(name: str, taken: set[str]) -> str:
    from dlp.net.document import unique_name

    fresh = unique_name(name, taken)
    taken.add(fresh)
    return fresh
