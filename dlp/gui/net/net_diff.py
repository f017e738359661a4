"""What changed between two nets: layers added, removed and changed (which fields).

Qt-free. Layers are matched by name, the way Caffe matches weights to layers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from google.protobuf.descriptor import FieldDescriptor


@dataclass(frozen=True)
class FieldChange:
    path: str  # "convolution_param.num_output"
    old: str
    new: str

    def __str__(self) -> str:
        return f"{self.path}: {self.old} → {self.new}"


@dataclass
class NetDiff:
    added: list[str] = field(default_factory=list)      # in ``new`` only
    removed: list[str] = field(default_factory=list)    # in ``old`` only
    changed: dict[str, list[FieldChange]] = field(default_factory=dict)
    moved: list[str] = field(default_factory=list)      # same layer, other place in order

    @property
    def is_empty(self) -> bool:
        return not (self.added or self.removed or self.changed or self.moved)

    def lines(self) -> list[str]:
        out = [f"+ {name} (added)" for name in self.added]
        out += [f"- {name} (removed)" for name in self.removed]
        for name, changes in self.changed.items():
            out.append(f"~ {name}: " + "; ".join(str(c) for c in changes))
        out += [f"↕ {name} (moved in the layer order)" for name in self.moved]
        return out


def _text(value: Any) -> str:
    if hasattr(value, "ListFields"):
        inner = " ".join(f"{f.name}: {_text(v)}" for f, v in value.ListFields())
        return "{" + inner + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_text(v) for v in value) + "]"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def message_changes(old: Any, new: Any, prefix: str = "") -> list[FieldChange]:
    """Field-level differences between two messages of the same type (``blobs`` ignored)."""
    changes: list[FieldChange] = []
    names = {f.name: f for f, _ in old.ListFields()} | {f.name: f for f, _ in new.ListFields()}
    for name in sorted(names, key=lambda n: names[n].number):
        descriptor = names[name]
        if name == "blobs":
            continue
        path = f"{prefix}{name}"
        a, b = getattr(old, name), getattr(new, name)
        if descriptor.is_repeated:
            a, b = list(a), list(b)
            if a != b:
                changes.append(FieldChange(path, _text(a), _text(b)))
            continue
        has_a, has_b = old.HasField(name), new.HasField(name)
        if descriptor.cpp_type == FieldDescriptor.CPPTYPE_MESSAGE and has_a and has_b:
            changes += message_changes(a, b, f"{path}.")
        elif (has_a, a) != (has_b, b):
            changes.append(FieldChange(path, _text(a) if has_a else "(unset)",
                                       _text(b) if has_b else "(unset)"))
    return changes


def diff_nets(old: Any, new: Any) -> NetDiff:
    """Compare two NetParameters layer by layer (matched by name)."""
    old_layers = {layer.name: layer for layer in old.layer}
    new_layers = {layer.name: layer for layer in new.layer}
    result = NetDiff()
    result.added = [name for name in new_layers if name not in old_layers]
    result.removed = [name for name in old_layers if name not in new_layers]
    for name, layer in new_layers.items():
        if name in old_layers:
            changes = message_changes(old_layers[name], layer)
            if changes:
                result.changed[name] = changes
    common_old = [n for n in old_layers if n in new_layers]
    common_new = [n for n in new_layers if n in old_layers]
    if common_old != common_new:
        position = {name: i for i, name in enumerate(common_old)}
        result.moved = [n for i, n in enumerate(common_new)
                        if position[n] != i and n not in result.changed]
    return result
