"""Live analysis of the edited net: shapes, parameter counts, FLOPs and problems per node.

Qt-free glue between the NetDocument (node ids) and ``dlp.net.shapes`` /
``dlp.net.validate`` (layer names); the canvas draws what this returns.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from dlp.errors import DLPError
from dlp.net.document import NetDocument, layer_phases
from dlp.net.specs.base import format_shape

PHASE_NUMBERS = {"TRAIN": 0, "TEST": 1}


@dataclass
class NodeReport:
    """What the canvas shows for one node in the phase analysed."""

    active: bool = False
    tops: dict[str, tuple[int, ...]] = field(default_factory=dict)
    params: int = 0
    flops: int = 0
    errors: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    blocked_by: str | None = None  # an upstream layer whose error leaves this one unknown

    def shape_text(self) -> str:
        return "  ".join(format_shape(shape) for shape in self.tops.values())

    def stats_text(self) -> str:
        if not self.tops:
            return ""
        parts = []
        if self.params:
            parts.append(f"{human(self.params)} params")
        if self.flops:
            parts.append(f"{human(self.flops)} FLOPs")
        return "  ·  ".join(parts)


@dataclass(frozen=True)
class Issue:
    node_id: int | None
    layer: str | None
    severity: str  # "error" | "warning"
    message: str


@dataclass
class NetAnalysis:
    phase: str
    nodes: dict[int, NodeReport]
    issues: list[Issue]
    total_params: int = 0
    total_flops: int = 0

    def blob_shape(self, source: int, blob: str) -> tuple[int, ...] | None:
        report = self.nodes.get(source)
        return report.tops.get(blob) if report else None


def human(value: float) -> str:
    """``1234567`` as ``1.2M``: short numbers for the canvas."""
    for unit, size in (("G", 1e9), ("M", 1e6), ("K", 1e3)):
        if abs(value) >= size:
            return f"{value / size:.1f}{unit}"
    return f"{int(value)}"


def analyse(doc: NetDocument, phase: str = "TRAIN",
            data_shape: tuple[int, ...] | None = None,
            base_dir: str | os.PathLike[str] | None = None) -> NetAnalysis:
    """Infer shapes and validate the document's net in ``phase`` (never raises DLPError)."""
    from dlp.net.shapes import infer_shapes
    from dlp.net.validate import validate_net

    net = doc.to_net()
    phase_number = PHASE_NUMBERS[phase]
    nodes: dict[int, NodeReport] = {}
    active: list[int] = []
    for node_id in doc.node_ids():
        running = phase_number in layer_phases(doc.layer_view(node_id))
        nodes[node_id] = NodeReport(active=running)
        if running:
            active.append(node_id)
    issues: list[Issue] = []
    # The net is often half-edited here: whatever goes wrong in the analysis is reported
    # in the issues list, never allowed to take the editor down.
    try:
        shapes = infer_shapes(net, phase=phase, data_shape=data_shape, base_dir=base_dir)
    except DLPError as exc:
        issues.append(Issue(None, None, "error", str(exc)))
        shapes = None
    except Exception as exc:
        issues.append(Issue(None, None, "error", f"shape inference failed: {exc!r}"))
        shapes = None
    if shapes is not None:
        cursor = 0
        for info in shapes.layers:
            node_id = _next_named(doc, active, cursor, info.name)
            if node_id is None:
                continue
            cursor = active.index(node_id) + 1
            report = nodes[node_id]
            report.tops = {blob: tuple(shape) for blob, shape in info.tops.items()
                           if shape is not None}
            report.params, report.flops = int(info.params or 0), int(info.flops or 0)
            if info.error:
                report.errors.append(info.error)
    try:
        problems = validate_net(net, phase=phase)
    except DLPError as exc:
        problems = []
        issues.append(Issue(None, None, "error", str(exc)))
    except Exception as exc:
        problems = []
        issues.append(Issue(None, None, "error", f"validation failed: {exc!r}"))
    for problem in problems:
        node_id = doc.find(problem.layer) if problem.layer else None
        if node_id is not None:
            bucket = nodes[node_id].errors if problem.severity == "error" else \
                nodes[node_id].warnings
            if problem.message not in bucket:
                bucket.append(problem.message)
    _mark_blocked(doc, nodes)
    blocked_count: dict[str, int] = {}
    for report in nodes.values():
        if report.blocked_by:
            blocked_count[report.blocked_by] = blocked_count.get(report.blocked_by, 0) + 1
    for node_id, report in nodes.items():
        name = doc.layer_view(node_id).name
        more = blocked_count.get(name)
        suffix = f" (and {more} layer{'s' if more != 1 else ''} after it cannot be checked)" \
            if more else ""
        issues += [Issue(node_id, name, "error", msg + suffix) for msg in report.errors]
        issues += [Issue(node_id, name, "warning", msg) for msg in report.warnings]
    for problem in problems:
        if not problem.layer or doc.find(problem.layer) is None:
            issues.append(Issue(None, problem.layer, problem.severity, problem.message))
    total_params = sum(r.params for r in nodes.values())
    total_flops = sum(r.flops for r in nodes.values())
    return NetAnalysis(phase, nodes, issues, total_params, total_flops)


def _next_named(doc: NetDocument, active: list[int], start: int, name: str) -> int | None:
    for node_id in active[start:]:
        if doc.layer_view(node_id).name == name:
            return node_id
    for node_id in active[:start]:
        if doc.layer_view(node_id).name == name:
            return node_id
    return None


def _mark_blocked(doc: NetDocument, nodes: dict[int, NodeReport]) -> None:
    """A layer whose error only follows from an upstream error is *blocked*, not wrong:
    only the root cause is drawn red, the layers after it wait for that fix."""
    sources: dict[int, list[int]] = {}
    for link in doc.links():
        sources.setdefault(link.sink, []).append(link.source)
    root_of: dict[int, str] = {}  # node → the failing layer it (transitively) waits for
    for node_id in doc.node_ids():
        report = nodes[node_id]
        upstream = [root_of[s] for s in sources.get(node_id, ()) if s in root_of]
        if report.errors and upstream:
            report.blocked_by = upstream[0]
            report.errors = []
            root_of[node_id] = upstream[0]
        elif report.errors:
            root_of[node_id] = doc.layer_view(node_id).name
        elif upstream and not report.tops:
            report.blocked_by = upstream[0]
            root_of[node_id] = upstream[0]
