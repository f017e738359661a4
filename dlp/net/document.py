"""The net being edited: a NetParameter plus node positions, with plain observers.

The editor's undo commands change only this model; the canvas, the text view and the
property panel follow its signals (Orange's canvas habit).  Nothing here imports Qt,
so the model can be driven and tested headless.

Each layer gets a stable integer *node id* for its lifetime in the document, because
layer names are user-editable and Caffe does not require them to be unique across
phases.  Links are derived from blob names the way Caffe wires a net: a bottom is fed
by the most recent earlier layer that writes that blob in a phase the consumer runs in.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from dlp.errors import InputError
from dlp.signal import Signal

Position = tuple[float, float]
PHASES = frozenset({0, 1})  # caffe.Phase: TRAIN = 0, TEST = 1


@dataclass(frozen=True)
class Link:
    """Top ``top_index`` of node ``source`` feeds bottom ``bottom_index`` of node ``sink``."""

    source: int
    top_index: int
    sink: int
    bottom_index: int
    blob: str


class DocumentError(InputError):
    """An edit the document refuses (unknown node, duplicate id, bad layout file)."""


def layer_phases(layer: Any) -> frozenset[int]:
    """The phases (TRAIN=0, TEST=1) a layer runs in, from its include/exclude rules."""
    if layer.include:
        phases: set[int] = set()
        for rule in layer.include:
            phases |= {rule.phase} if rule.HasField("phase") else set(PHASES)
        return frozenset(phases)
    phases = set(PHASES)
    if layer.HasField("phase"):
        phases = {layer.phase}
    for rule in layer.exclude:
        only_phase = rule.HasField("phase") and not (
            rule.stage or rule.not_stage or rule.HasField("min_level")
            or rule.HasField("max_level"))
        if only_phase:
            phases.discard(rule.phase)
    return frozenset(phases)


def is_in_place(layer: Any) -> bool:
    """True when the layer writes its result over its input blob (ReLU on conv1)."""
    return bool(layer.bottom) and bool(layer.top) and layer.top[0] == layer.bottom[0]


def compute_links(layers: Iterable[tuple[int, Any]]) -> list[Link]:
    """Derive the links of a net from its ``(node_id, LayerParameter)`` list in order."""
    producers: dict[str, list[tuple[int, int, frozenset[int]]]] = {}
    links: list[Link] = []
    for node_id, layer in layers:
        phases = layer_phases(layer)
        for bottom_index, blob in enumerate(layer.bottom):
            remaining = set(phases)
            for source, top_index, source_phases in reversed(producers.get(blob, [])):
                if remaining & source_phases:
                    links.append(Link(source, top_index, node_id, bottom_index, blob))
                    remaining -= source_phases
                if not remaining:
                    break
        for top_index, blob in enumerate(layer.top):
            producers.setdefault(blob, []).append((node_id, top_index, phases))
    return links


def unique_name(base: str, taken: Iterable[str]) -> str:
    """``base`` if free, else ``base`` with the next free number (conv → conv2, conv2 → conv3)."""
    used = set(taken)
    if base not in used:
        return base
    match = re.match(r"^(.*?)(\d+)$", base)
    stem, number = (match.group(1), int(match.group(2))) if match else (base, 1)
    number += 1
    while f"{stem}{number}" in used:
        number += 1
    return f"{stem}{number}"


class NetDocument:
    """An editable Caffe net: header fields, layers keyed by node id, node positions.

    Signals (plain callbacks): ``net_reset()``, ``layer_added(node_id)``,
    ``layer_removed(node_id)``, ``layer_changed(node_id)``, ``node_moved(node_id, pos)``,
    ``link_added(Link)``, ``link_removed(Link)``, and ``changed()`` after every edit
    that changes the NetParameter (not after moves; ``revision`` counts those edits).
    """

    def __init__(self, net: Any = None, positions: dict[str, Position] | None = None) -> None:
        from dlp.proto import caffe_pb2

        self._pb = caffe_pb2
        self.net_reset = Signal()
        self.layer_added = Signal()
        self.layer_removed = Signal()
        self.layer_changed = Signal()
        self.node_moved = Signal()
        self.link_added = Signal()
        self.link_removed = Signal()
        self.changed = Signal()
        self._header = caffe_pb2.NetParameter()
        self._order: list[int] = []
        self._layers: dict[int, Any] = {}
        self._positions: dict[int, Position] = {}
        self._links: set[Link] = set()
        self._next_id = 1
        self.revision = 0  # grows with every change of the NetParameter (not with moves)
        if net is not None:
            self.set_net(net, positions)

    # -- reading -------------------------------------------------------------------
    def node_ids(self) -> list[int]:
        return list(self._order)

    def __len__(self) -> int:
        return len(self._order)

    def __contains__(self, node_id: object) -> bool:
        return node_id in self._layers

    def layer(self, node_id: int) -> Any:
        """A copy of the node's LayerParameter (edit it, then ``set_layer``)."""
        copy = self._pb.LayerParameter()
        copy.CopyFrom(self._require(node_id))
        return copy

    def layer_view(self, node_id: int) -> Any:
        """The node's LayerParameter itself, for reading only (no copy; do not mutate)."""
        return self._require(node_id)

    def position(self, node_id: int) -> Position:
        self._require(node_id)
        return self._positions.get(node_id, (0.0, 0.0))

    def index_of(self, node_id: int) -> int:
        self._require(node_id)
        return self._order.index(node_id)

    def find(self, name: str) -> int | None:
        """The first node whose layer is called ``name``."""
        for node_id in self._order:
            if self._layers[node_id].name == name:
                return node_id
        return None

    def links(self) -> list[Link]:
        return sorted(self._links, key=lambda link: (link.sink, link.bottom_index, link.source))

    def has_link(self, link: Link) -> bool:
        return link in self._links

    def layer_names(self) -> list[str]:
        return [self._layers[node_id].name for node_id in self._order]

    def blob_names(self) -> set[str]:
        names: set[str] = set()
        for layer in self._layers.values():
            names.update(layer.top)
            names.update(layer.bottom)
        return names

    def header(self) -> Any:
        """A copy of the net-level fields (name, input, state, …) without layers."""
        copy = self._pb.NetParameter()
        copy.CopyFrom(self._header)
        return copy

    def to_net(self) -> Any:
        """The whole NetParameter being edited (a fresh message)."""
        net = self._pb.NetParameter()
        net.CopyFrom(self._header)
        for node_id in self._order:
            net.layer.add().CopyFrom(self._layers[node_id])
        return net

    def positions_by_name(self) -> dict[str, Position]:
        """Positions keyed by layer name (for ``train_val.layout.json``)."""
        result: dict[str, Position] = {}
        for node_id in self._order:
            result.setdefault(self._layers[node_id].name, self._positions.get(node_id, (0, 0)))
        return result

    # -- editing -------------------------------------------------------------------
    def set_net(self, net: Any, positions: dict[str, Position] | None = None,
                node_ids: list[int | None] | None = None) -> list[int]:
        """Replace everything; V1 nets must be upgraded first. Returns the node ids.

        ``node_ids`` (one per layer, ``None`` for a fresh id) lets undo restore the ids
        that other commands refer to.
        """
        if len(net.layers):
            raise DocumentError("the net uses V1 'layers' entries; upgrade it before editing "
                                "(dlp.net.upgrade.upgrade_net)")
        positions = positions or {}
        self._header = self._pb.NetParameter()
        self._header.CopyFrom(net)
        self._header.ClearField("layer")
        self._order, self._layers, self._positions = [], {}, {}
        wanted = list(node_ids or [])
        wanted += [None] * (len(net.layer) - len(wanted))
        reserved = {i for i in wanted if i is not None}
        self._next_id = max([self._next_id, *(i + 1 for i in reserved)])
        for layer, requested in zip(net.layer, wanted, strict=True):
            node_id = requested if requested is not None and requested not in self._layers \
                else self._new_id()
            copy = self._pb.LayerParameter()
            copy.CopyFrom(layer)
            self._order.append(node_id)
            self._layers[node_id] = copy
            if layer.name in positions:
                x, y = positions[layer.name]
                self._positions[node_id] = (float(x), float(y))
        self._links = set(compute_links(self._ordered_layers()))
        self.revision += 1
        self.net_reset.emit()
        self.changed.emit()
        return list(self._order)

    def add_layer(self, layer: Any, position: Position = (0.0, 0.0), index: int | None = None,
                  node_id: int | None = None) -> int:
        """Insert ``layer`` at ``index`` (default: the end); returns its node id."""
        if node_id is None:
            node_id = self._new_id()
        elif node_id in self._layers:
            raise DocumentError(f"node {node_id} is already in the net")
        self._next_id = max(self._next_id, node_id + 1)
        copy = self._pb.LayerParameter()
        copy.CopyFrom(layer)
        index = len(self._order) if index is None else max(0, min(index, len(self._order)))
        self._order.insert(index, node_id)
        self._layers[node_id] = copy
        self._positions[node_id] = (float(position[0]), float(position[1]))
        self.layer_added.emit(node_id)
        self._refresh_links()
        self._bump()
        return node_id

    def remove_layer(self, node_id: int) -> tuple[int, Any, Position]:
        """Remove a node; returns ``(index, layer, position)`` so it can be put back."""
        layer = self.layer(node_id)
        index = self._order.index(node_id)
        position = self.position(node_id)
        self._order.remove(node_id)
        del self._layers[node_id]
        self._positions.pop(node_id, None)
        self._refresh_links()
        self.layer_removed.emit(node_id)
        self._bump()
        return index, layer, position

    def set_layer(self, node_id: int, layer: Any) -> None:
        """Replace the node's LayerParameter (name, wiring and parameters)."""
        current = self._require(node_id)
        if current == layer:
            return
        current.CopyFrom(layer)
        self.layer_changed.emit(node_id)
        self._refresh_links()
        self._bump()

    def move_layer(self, node_id: int, index: int) -> None:
        """Change the node's place in the layer order (Caffe runs layers in order)."""
        self._require(node_id)
        self._order.remove(node_id)
        self._order.insert(max(0, min(index, len(self._order))), node_id)
        self._refresh_links()
        self._bump()

    def set_header(self, header: Any) -> None:
        """Replace the net-level fields (layers in ``header`` are ignored)."""
        self._header = self._pb.NetParameter()
        self._header.CopyFrom(header)
        self._header.ClearField("layer")
        self._bump()

    def set_positions(self, positions: dict[int, Position]) -> None:
        for node_id, (x, y) in positions.items():
            self._require(node_id)
            self._positions[node_id] = (float(x), float(y))
            self.node_moved.emit(node_id, (float(x), float(y)))

    # -- wiring helpers (pure: they return edited copies for a command to apply) -------
    def connected_layer(self, source: int, top_index: int, sink: int, bottom_index: int) -> Any:
        """The sink's layer with bottom ``bottom_index`` fed by the source's top.

        A slot past the end appends a bottom (a new port), so ports fill in order.
        """
        blob = self._require(source).top[top_index]
        layer = self.layer(sink)
        if bottom_index < len(layer.bottom):
            layer.bottom[bottom_index] = blob
        else:
            layer.bottom.append(blob)
        return layer

    def disconnected_layer(self, sink: int, bottom_index: int) -> Any:
        """The sink's layer without bottom ``bottom_index``."""
        layer = self.layer(sink)
        del layer.bottom[bottom_index]
        return layer

    def fresh_layer_name(self, base: str) -> str:
        return unique_name(base, self.layer_names())

    def fresh_blob_name(self, base: str) -> str:
        return unique_name(base, self.blob_names())

    # -- layout file ---------------------------------------------------------------
    def layout_json(self) -> str:
        data = {"version": 1, "positions": {name: [round(x, 1), round(y, 1)]
                                            for name, (x, y) in self.positions_by_name().items()}}
        return json.dumps(data, indent=1, sort_keys=True) + "\n"

    @staticmethod
    def parse_layout_json(text: str, source: str = "<layout>") -> dict[str, Position]:
        """Positions by layer name from a ``*.layout.json`` text."""
        try:
            data = json.loads(text)
            positions = data["positions"]
            return {str(name): (float(xy[0]), float(xy[1])) for name, xy in positions.items()}
        except (ValueError, KeyError, TypeError, IndexError, AttributeError) as exc:
            raise DocumentError(f"{source}: not a DLP layout file (expected "
                                f"{{\"positions\": {{layer: [x, y]}}}}): {exc}") from exc

    # -- internals -----------------------------------------------------------------
    def _bump(self) -> None:
        self.revision += 1
        self.changed.emit()

    def _require(self, node_id: int) -> Any:
        try:
            return self._layers[node_id]
        except KeyError:
            raise DocumentError(f"no node {node_id} in the net") from None

    def _new_id(self) -> int:
        node_id = self._next_id
        self._next_id += 1
        return node_id

    def _ordered_layers(self) -> list[tuple[int, Any]]:
        return [(node_id, self._layers[node_id]) for node_id in self._order]

    def _refresh_links(self) -> None:
        new_links = set(compute_links(self._ordered_layers()))
        removed, added = self._links - new_links, new_links - self._links
        self._links = new_links
        for link in sorted(removed, key=_link_key):
            self.link_removed.emit(link)
        for link in sorted(added, key=_link_key):
            self.link_added.emit(link)


def _link_key(link: Link) -> tuple[int, int, int, int]:
    return (link.source, link.top_index, link.sink, link.bottom_index)
