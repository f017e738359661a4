"""Automatic layered layout (top to bottom) of a net with grandalf's Sugiyama layout.

In-place layers (ReLU on conv1) are folded into their host first, so a ResNet's
BatchNorm/Scale/ReLU chains do not become layers of their own: the layout sees one
block per host and stacks the in-place nodes right under it, "attached".
Qt-free: sizes come in, positions (top-centre of each node) go out.
"""

from __future__ import annotations

from grandalf.graphs import Edge, Graph, Vertex
from grandalf.layouts import SugiyamaLayout

from dlp.net.document import NetDocument, is_in_place

Position = tuple[float, float]
ATTACH_GAP = 8.0  # vertical gap between a host and the in-place layers hanging under it


class _Box:
    """The view object grandalf expects on each vertex (``w``, ``h``, then ``xy``)."""

    __slots__ = ("h", "w", "xy")

    def __init__(self, w: float, h: float) -> None:
        self.w, self.h, self.xy = w, h, (0.0, 0.0)


def attachment_hosts(doc: NetDocument) -> dict[int, int]:
    """Map each in-place node to the node it hangs under (its bottom-0 source)."""
    hosts: dict[int, int] = {}
    for link in doc.links():
        if link.bottom_index == 0 and is_in_place(doc.layer_view(link.sink)):
            hosts.setdefault(link.sink, link.source)
    return hosts


def attached_groups(doc: NetDocument) -> dict[int, list[int]]:
    """Each root node → itself followed by the chain of in-place nodes attached to it."""
    hosts = attachment_hosts(doc)

    def root(node_id: int) -> int:
        seen = set()
        while node_id in hosts and node_id not in seen:
            seen.add(node_id)
            node_id = hosts[node_id]
        return node_id

    groups: dict[int, list[int]] = {}
    for node_id in doc.node_ids():
        groups.setdefault(root(node_id), []).append(node_id)
    return groups


def layered_layout(doc: NetDocument, sizes: dict[int, tuple[float, float]],
                   row_gap: float = 56.0, column_gap: float = 44.0) -> dict[int, Position]:
    """Positions (top-centre) for every node; components are placed side by side."""
    groups = attached_groups(doc)
    group_of = {member: root for root, members in groups.items() for member in members}
    vertices: dict[int, Vertex] = {}
    for root, members in groups.items():
        width = max(sizes[m][0] for m in members)
        height = sum(sizes[m][1] for m in members) + ATTACH_GAP * (len(members) - 1)
        vertex = Vertex(root)
        vertex.view = _Box(width, height)
        vertices[root] = vertex
    pairs = {(group_of[link.source], group_of[link.sink]) for link in doc.links()}
    edges = [Edge(vertices[a], vertices[b]) for a, b in sorted(pairs) if a != b]
    graph = Graph(list(vertices.values()), edges)
    positions: dict[int, Position] = {}
    x_offset = 0.0
    for component in graph.C:
        layout = SugiyamaLayout(component)
        layout.yspace = row_gap
        layout.xspace = column_gap
        layout.init_all()
        layout.draw(1)
        component_vertices = list(component.sV)
        left = min(v.view.xy[0] - v.view.w / 2 for v in component_vertices)
        top = min(v.view.xy[1] - v.view.h / 2 for v in component_vertices)
        right = x_offset
        for vertex in component_vertices:
            cx, cy = vertex.view.xy
            x = cx - left + x_offset
            y = cy - vertex.view.h / 2 - top
            for member in groups[vertex.data]:
                positions[member] = (x, y)
                y += sizes[member][1] + ATTACH_GAP
            right = max(right, x + vertex.view.w / 2)
        x_offset = right + column_gap
    return positions
