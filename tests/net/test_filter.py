"""Caffe's FilterNet: include/exclude rules on phase, level, stage and not_stage."""

from __future__ import annotations

import pytest

from dlp.net.filter import NetFilterError, filter_net, phase_value, state_meets_rule
from dlp.net.prototxt import parse_net_text
from dlp.proto import caffe_pb2

NET = """
name: "rules"
state { stage: "always" }
layer { name: "train_data" type: "Input" top: "data" include { phase: TRAIN } }
layer { name: "test_data" type: "Input" top: "data" include { phase: TEST } }
layer { name: "plain" type: "ReLU" bottom: "data" top: "data" }
layer { name: "not_deploy" type: "Sigmoid" bottom: "data" top: "s" exclude { stage: "deploy" } }
layer { name: "deploy_only" type: "Softmax" bottom: "data" top: "p" include { stage: "deploy" } }
layer { name: "level2" type: "TanH" bottom: "data" top: "t" include { min_level: 2 } }
layer { name: "upto1" type: "AbsVal" bottom: "data" top: "a" include { max_level: 1 } }
layer { name: "train_or_val" type: "BNLL" bottom: "data" top: "b"
        include { phase: TRAIN } include { stage: "val" } }
layer { name: "needs_both" type: "Exp" bottom: "data" top: "e"
        include { stage: "val" stage: "extra" } }
layer { name: "not_val" type: "Log" bottom: "data" top: "l" include { not_stage: "val" } }
layer { name: "own_stage" type: "Power" bottom: "data" top: "w" include { stage: "always" } }
"""


def names(phase: str | int, level: int = 0, stages: tuple[str, ...] = ()) -> list[str]:
    net = parse_net_text(NET)
    return [layer.name for layer in filter_net(net, phase, level, stages).layer]


def test_phase_rules_pick_the_data_layer() -> None:
    assert names("TRAIN") == ["train_data", "plain", "not_deploy", "upto1", "train_or_val",
                              "not_val", "own_stage"]
    assert names("TEST") == ["test_data", "plain", "not_deploy", "upto1", "not_val", "own_stage"]


def test_stages_include_and_exclude() -> None:
    deploy = names("TEST", stages=("deploy",))
    assert "deploy_only" in deploy and "not_deploy" not in deploy
    val = names("TEST", stages=("val",))
    assert "train_or_val" in val and "not_val" not in val and "needs_both" not in val
    assert "needs_both" in names("TEST", stages=("val", "extra"))


def test_levels() -> None:
    assert "level2" not in names("TEST", level=1) and "upto1" in names("TEST", level=1)
    assert "level2" in names("TEST", level=2) and "upto1" not in names("TEST", level=2)


def test_the_filtered_net_records_its_state_and_keeps_the_rest() -> None:
    net = parse_net_text(NET)
    before = net.SerializeToString()
    filtered = filter_net(net, caffe_pb2.TRAIN, 3, ["x"])
    assert filtered.name == "rules"
    assert filtered.state.phase == caffe_pb2.TRAIN and filtered.state.level == 3
    assert list(filtered.state.stage) == ["always", "x"]
    assert net.SerializeToString() == before  # the input is not modified


def test_include_and_exclude_together_is_an_error_naming_the_layer() -> None:
    net = parse_net_text('layer { name: "both" type: "ReLU" include { phase: TRAIN } '
                         'exclude { phase: TEST } }')
    with pytest.raises(NetFilterError, match=r"layer 'both' \(ReLU\).*not both"):
        filter_net(net, "TRAIN")


def test_phase_names_and_values() -> None:
    assert phase_value("train") == caffe_pb2.TRAIN and phase_value(1) == caffe_pb2.TEST
    with pytest.raises(NetFilterError, match="expected TRAIN or TEST"):
        phase_value("VAL")
    with pytest.raises(NetFilterError):
        phase_value(7)


def test_state_meets_rule_directly() -> None:
    state = caffe_pb2.NetState(phase=caffe_pb2.TEST, level=1, stage=["a"])
    assert state_meets_rule(state, caffe_pb2.NetStateRule())
    assert not state_meets_rule(state, caffe_pb2.NetStateRule(phase=caffe_pb2.TRAIN))
    assert state_meets_rule(state, caffe_pb2.NetStateRule(min_level=1, max_level=1))
    assert not state_meets_rule(state, caffe_pb2.NetStateRule(not_stage=["a"]))
