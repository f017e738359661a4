"""Phase, level and stage filtering: Caffe's ``Net::FilterNet`` and ``StateMeetsRule``.

A layer with ``include`` rules is kept when the net state meets at least one of them;
a layer with ``exclude`` rules is dropped when the state meets any of them; a layer
with neither is always kept; giving both is an error.  A rule is met when every
condition it states holds: its ``phase``, ``level`` bounds, all of its ``stage``\\ s
present and none of its ``not_stage``\\ s.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from dlp.errors import InputError
from dlp.proto import caffe_pb2

PHASE_NAMES = {caffe_pb2.TRAIN: "TRAIN", caffe_pb2.TEST: "TEST"}


class NetFilterError(InputError):
    """A layer's include/exclude rules cannot be applied (both given, bad phase)."""


def phase_value(phase: str | int) -> int:
    """``"TRAIN"``/``"TEST"`` (any case) or ``caffe.TRAIN``/``caffe.TEST`` as the enum value."""
    if isinstance(phase, str):
        name = phase.strip().upper()
        for value, known in PHASE_NAMES.items():
            if name == known:
                return value
        raise NetFilterError(f"unknown phase {phase!r}; expected TRAIN or TEST")
    if phase in PHASE_NAMES:
        return int(phase)
    raise NetFilterError(f"unknown phase {phase!r}; expected TRAIN (0) or TEST (1)")


def make_state(phase: str | int, level: int = 0, stages: Iterable[str] = (),
               base: caffe_pb2.NetState | None = None) -> caffe_pb2.NetState:
    """The NetState a net runs in: ``base``'s stages plus ``stages``, with phase and level."""
    state = caffe_pb2.NetState()
    if base is not None:
        state.CopyFrom(base)
    state.phase = phase_value(phase)
    state.level = level
    for stage in stages:
        if stage not in state.stage:
            state.stage.append(stage)
    return state


def state_meets_rule(state: caffe_pb2.NetState, rule: caffe_pb2.NetStateRule) -> bool:
    """Caffe's ``StateMeetsRule``: every condition the rule states holds in ``state``."""
    if rule.HasField("phase") and rule.phase != state.phase:
        return False
    if rule.HasField("min_level") and state.level < rule.min_level:
        return False
    if rule.HasField("max_level") and state.level > rule.max_level:
        return False
    if any(stage not in state.stage for stage in rule.stage):
        return False
    return not any(stage in state.stage for stage in rule.not_stage)


def layer_included(layer: Any, state: caffe_pb2.NetState) -> bool:
    """Whether ``layer`` runs in ``state`` (Caffe's include/exclude logic)."""
    if layer.include and layer.exclude:
        raise NetFilterError(
            f"layer {layer.name!r} ({layer.type}): give either include or exclude rules, "
            "not both")
    if layer.include:
        return any(state_meets_rule(state, rule) for rule in layer.include)
    return not any(state_meets_rule(state, rule) for rule in layer.exclude)


def filter_net(net: caffe_pb2.NetParameter, phase: str | int, level: int = 0,
               stages: Iterable[str] = ()) -> caffe_pb2.NetParameter:
    """A copy of ``net`` holding only the layers that run in this phase/level/stages.

    The net's own ``state.stage`` entries count as given (as in Caffe, which adds the
    caller's stages to them); the copy's ``state`` records the state used.
    """
    state = make_state(phase, level, stages, net.state if net.HasField("state") else None)
    filtered = caffe_pb2.NetParameter()
    filtered.CopyFrom(net)
    del filtered.layer[:]
    for layer in net.layer:
        if layer_included(layer, state):
            filtered.layer.add().CopyFrom(layer)
    filtered.state.CopyFrom(state)
    return filtered
