"""Structural checks of a net before anything runs it (Caffe's ``Net::Init`` checks).

:func:`validate_net` lists every problem it finds in one phase, each naming the layer
and blob at fault and what was expected: unknown layer types (with the closest
names), wrong numbers of bottoms/tops (from the layer specs the engine also uses),
bottoms no earlier layer produces, tops written twice without being in-place, cycles,
duplicate layer names, loss layers without a label, and parameters a type ignores.
:func:`check_net` raises one :class:`NetValidationError` holding the errors.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from dlp.errors import DLPError, InputError
from dlp.net.filter import PHASE_NAMES, layer_included, make_state, phase_value
from dlp.net.specs import LayerSpec, count_problem, get_spec
from dlp.proto import caffe_pb2

Severity = Literal["error", "warning"]

@dataclass(frozen=True)
class NetIssue:
    """One problem: ``layer`` is the layer's name (None for the net as a whole)."""

    layer: str | None
    message: str
    severity: Severity = "error"

    def __str__(self) -> str:
        return f"{self.severity}: {self.message}"


class NetValidationError(InputError):
    """A net has errors; ``issues`` lists them all, the message names each."""

    def __init__(self, issues: list[NetIssue], source: str | None = None) -> None:
        self.issues = issues
        where = f"{source}: " if source else ""
        count = len(issues)
        details = "; ".join(issue.message for issue in issues)
        super().__init__(f"{where}{count} error{'s' if count != 1 else ''} in the net: {details}")


def _describe(layer: Any) -> str:
    return f"layer {layer.name!r} ({layer.type})"


def _closest(name: str, candidates: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


class _Checker:
    """Walks one phase's layers in file order, collecting issues."""

    def __init__(self, net: caffe_pb2.NetParameter, phase: int, level: int,
                 stages: Iterable[str]) -> None:
        self.net = net
        self.phase = phase
        self.state = make_state(phase, level, stages,
                                net.state if net.HasField("state") else None)
        self.issues: list[NetIssue] = []

    def add(self, layer: Any | None, message: str, severity: Severity = "error") -> None:
        name = layer.name if layer is not None else None
        text = f"{_describe(layer)}: {message}" if layer is not None else message
        self.issues.append(NetIssue(name, text, severity))

    def running_layers(self) -> list[Any]:
        running = []
        for layer in self.net.layer:
            try:
                if layer_included(layer, self.state):
                    running.append(layer)
            except DLPError as exc:
                self.issues.append(NetIssue(layer.name, str(exc), "error"))
        return running

    def other_phase_producers(self) -> dict[str, str]:
        """Blob -> producing layer, for layers that run only in the other phase."""
        other = make_state(1 - self.phase, self.state.level, self.state.stage)
        producers: dict[str, str] = {}
        for layer in self.net.layer:
            try:
                if layer_included(layer, other) and not layer_included(layer, self.state):
                    for top in layer.top:
                        producers.setdefault(top, layer.name)
            except DLPError:
                continue
        return producers

    def run(self) -> list[NetIssue]:
        layers = self.running_layers()
        phase_name = PHASE_NAMES[self.phase]
        if not layers:
            self.add(None, f"the net has no layers in phase {phase_name}", "warning")
            return self.issues
        self.check_names(layers)
        specs: dict[int, LayerSpec] = {}
        for index, layer in enumerate(layers):
            spec = self.check_type(layer)
            if spec is not None:
                specs[index] = spec
                self.check_fields(layer, spec)
        self.check_blobs(layers, specs)
        self.check_cycles(layers)
        if self.phase == caffe_pb2.TRAIN and not any(
                spec.is_loss or any(w for w in layers[i].loss_weight)
                for i, spec in specs.items()):
            self.add(None, "the net has no loss layer in phase TRAIN: training would have "
                     "nothing to minimize", "warning")
        return self.issues

    def check_names(self, layers: list[Any]) -> None:
        seen: dict[str, int] = {}
        for index, layer in enumerate(layers):
            if not layer.name:
                self.add(layer, f"layer #{index + 1} has no name (weights are matched by "
                         "layer name)", "warning")
                continue
            if layer.name in seen:
                first = seen[layer.name] + 1
                self.add(layer, f"duplicate layer name {layer.name!r} (layers #{first} and "
                         f"#{index + 1} in phase {PHASE_NAMES[self.phase]}); weights are "
                         "matched by name")
            else:
                seen[layer.name] = index

    def check_type(self, layer: Any) -> LayerSpec | None:
        try:
            spec = get_spec(layer.type)
        except DLPError as exc:
            self.add(layer, str(exc))
            return None
        if layer.type == "Python":
            module = layer.python_param.module or "?"
            self.add(layer, f"runs Python code from module {module!r}; DLP refuses it unless "
                     "Python layers are enabled for the project", "warning")
        if not spec.engine_supported:
            self.add(layer, f"DLP's engine cannot run {layer.type} layers (the editor knows "
                     "them for import and export only)", "warning")
        problem = count_problem(spec, layer)
        if problem:
            self.add(layer, problem)
        if len(layer.loss_weight) > max(len(layer.top), 1):
            self.add(layer, f"{len(layer.loss_weight)} loss_weight values for "
                     f"{len(layer.top)} tops; give one per top")
        if layer.propagate_down and len(layer.propagate_down) != len(layer.bottom):
            self.add(layer, f"give propagate_down once per bottom ({len(layer.bottom)}) or "
                     f"not at all; got {len(layer.propagate_down)}")
        return spec

    def check_fields(self, layer: Any, spec: LayerSpec) -> None:
        own = {spec.param_field, *spec.extra_param_fields}
        if spec.category == "Loss":
            own.add("loss_param")
        for descriptor, _ in layer.ListFields():
            name = descriptor.name
            if not name.endswith("_param") or name in own:
                continue
            reads = f" (it reads {spec.param_field})" if spec.param_field else ""
            self.add(layer, f"{name} is ignored by {layer.type} layers{reads}", "warning")

    def check_blobs(self, layers: list[Any], specs: dict[int, LayerSpec]) -> None:
        producer: dict[str, str] = {}
        other_phase = self.other_phase_producers()
        for index, layer in enumerate(layers):
            spec = specs.get(index)
            for position, bottom in enumerate(layer.bottom):
                if bottom in producer:
                    continue
                self.add(layer, self.missing_bottom_message(
                    layer, spec, position, bottom, producer, layers, index, other_phase))
            for position, top in enumerate(layer.top):
                in_place = position < len(layer.bottom) and layer.bottom[position] == top
                if top in producer and not in_place:
                    self.add(layer, f"top {top!r} is already produced by layer "
                             f"{producer[top]!r}; a blob may be rewritten only in-place "
                             f"(as bottom {position} and top {position} of one layer)")
                producer[top] = layer.name

    def missing_bottom_message(self, layer: Any, spec: LayerSpec | None, position: int,
                               bottom: str, producer: dict[str, str], layers: list[Any],
                               index: int, other_phase: dict[str, str]) -> str:
        phase_name = PHASE_NAMES[self.phase]
        for later_layer in layers[index:]:
            if bottom in later_layer.top and later_layer is not layer:
                return (f"bottom {bottom!r} is produced only later, by layer "
                        f"{later_layer.name!r}; layers run in file order, so move it first")
        label_hint = ""
        if spec is not None and spec.category == "Loss" and position > 0:
            label_hint = "needs a label blob: "
        if bottom in other_phase:
            return (f"{label_hint}bottom {bottom!r} is produced only in phase "
                    f"{PHASE_NAMES[1 - self.phase]} (by layer {other_phase[bottom]!r}), not in "
                    f"{phase_name}")
        available = ", ".join(sorted(producer)) or "none"
        return (f"{label_hint}unknown bottom blob {bottom!r}{_closest(bottom, producer)} "
                f"(blobs available at this point in phase {phase_name}: {available})")

    def check_cycles(self, layers: list[Any]) -> None:
        """Report loops formed by bottoms that only later layers produce."""
        edges: dict[int, set[int]] = {i: set() for i in range(len(layers))}
        latest: dict[str, int] = {}
        for index, layer in enumerate(layers):
            for bottom in layer.bottom:
                if bottom in latest:
                    edges[latest[bottom]].add(index)
                else:
                    for j in range(index + 1, len(layers)):
                        if bottom in layers[j].top:
                            edges[j].add(index)
            for top in layer.top:
                latest[top] = index
        reported: set[frozenset[int]] = set()
        for cycle in _find_cycles(edges):
            key = frozenset(cycle)
            if key in reported:
                continue
            reported.add(key)
            names = [layers[i].name for i in cycle]
            self.add(layers[cycle[0]], "is part of a cycle: "
                     + " → ".join([*names, names[0]]))


def _find_cycles(edges: dict[int, set[int]]) -> list[list[int]]:
    """Some cycle through each strongly connected group of nodes (iterative DFS)."""
    cycles: list[list[int]] = []
    state: dict[int, int] = {}  # 1 = on the current path, 2 = finished
    for root in edges:
        if root in state:
            continue
        path: list[int] = [root]
        iterators = [iter(sorted(edges[root]))]
        state[root] = 1
        while iterators:
            advanced = False
            for nxt in iterators[-1]:
                if state.get(nxt) == 1:
                    cycles.append(path[path.index(nxt):])
                elif nxt not in state:
                    state[nxt] = 1
                    path.append(nxt)
                    iterators.append(iter(sorted(edges[nxt])))
                    advanced = True
                    break
            if not advanced:
                state[path.pop()] = 2
                iterators.pop()
    return cycles


def validate_net(net: caffe_pb2.NetParameter, phase: str | int = "TRAIN", *, level: int = 0,
                 stages: Iterable[str] = ()) -> list[NetIssue]:
    """Every structural problem of ``net`` in ``phase`` (errors first, then warnings)."""
    issues = _Checker(net, phase_value(phase), level, stages).run()
    return sorted(issues, key=lambda issue: issue.severity != "error")


def check_net(net: caffe_pb2.NetParameter, phase: str | int = "TRAIN", *, level: int = 0,
              stages: Iterable[str] = (), source: str | None = None) -> list[NetIssue]:
    """Raise :class:`NetValidationError` when ``net`` has errors; return the warnings."""
    issues = validate_net(net, phase, level=level, stages=stages)
    errors = [issue for issue in issues if issue.severity == "error"]
    if errors:
        raise NetValidationError(errors, source)
    return [issue for issue in issues if issue.severity == "warning"]
