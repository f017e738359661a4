"""What the Train form reads from a net and the project's datasets."""

from __future__ import annotations

from types import SimpleNamespace

from dlp.net.prototxt import parse_net_text
from dlp.train.setup import (
    apply_data_settings,
    best_metric_choices,
    data_layers,
    dataset_summary,
    db_choices,
    default_choice,
)

NET = """
layer { name: "data" type: "Data" top: "data" include { phase: TRAIN }
  data_param { source: "train_db/features" batch_size: 4 } }
layer { name: "label" type: "Data" top: "label" include { phase: TRAIN }
  data_param { source: "train_db/labels" batch_size: 4 } }
layer { name: "data" type: "Data" top: "data" include { phase: TEST }
  data_param { source: "val_db/features" batch_size: 1 } }
layer { name: "conv" type: "Convolution" bottom: "data" top: "score"
  convolution_param { num_output: 2 kernel_size: 1 } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
layer { name: "acc" type: "Accuracy" bottom: "score" bottom: "label" top: "accuracy"
  include { phase: TEST } }
"""


class _Manifest:
    splits = {"train": SimpleNamespace(count=6), "val": SimpleNamespace(count=2)}
    shape = [1, 32, 32]
    dtype = "uint8"
    classes = ["background", "LV"]

    def db_path(self, split, kind):
        return f"/data/ds/{split}_db/{kind}"


def test_data_layers_are_told_apart_by_index_and_phase():
    layers = data_layers(parse_net_text(NET, "n"))
    assert [(la.index, la.name, la.phase, la.batch_size) for la in layers] == [
        (0, "data", "TRAIN", 4), (1, "label", "TRAIN", 4), (2, "data", "TEST", 1)]


def test_default_choices_follow_phase_and_top_name():
    entry = SimpleNamespace(name="ds", manifest=_Manifest())
    choices = db_choices([entry, SimpleNamespace(name="broken", manifest=None)])
    assert len(choices) == 4 and choices[0].label == "ds: train/features"
    layers = data_layers(parse_net_text(NET, "n"))
    picked = [default_choice(la, choices).path for la in layers]
    assert picked == ["/data/ds/train_db/features", "/data/ds/train_db/labels",
                      "/data/ds/val_db/features"]
    assert "train 6, val 2 records; 1x32x32 uint8" in dataset_summary(entry)


def test_apply_data_settings_changes_a_copy():
    net = parse_net_text(NET, "n")
    changed = apply_data_settings(net, {2: "/db/val"}, train_batch=8, test_batch=2)
    assert changed.layer[2].data_param.source == "/db/val"
    assert [la.batch_size for la in data_layers(changed)] == [8, 8, 2]
    assert net.layer[2].data_param.source == "val_db/features"  # original untouched


def test_best_metric_choices_are_the_unconsumed_tops_of_the_test_net():
    assert best_metric_choices(parse_net_text(NET, "n")) == ["loss", "accuracy"]
