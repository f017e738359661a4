"""Export for BVLC Caffe: DLP-only layers and fields go, or the export is refused."""

from __future__ import annotations

import pytest

from dlp.net.bvlc import NotRunnableInCaffeError, for_bvlc_caffe
from dlp.net.library import find_entry
from dlp.net.prototxt import has_extensions, net_to_text, parse_net_text

TAIL = """
layer { name: "input" type: "Input" top: "data" top: "label"
  input_param { shape { dim: 1 dim: 1 dim: 8 dim: 8 } shape { dim: 1 dim: 1 dim: 8 dim: 8 } } }
layer { name: "score" type: "Convolution" bottom: "data" top: "score"
  convolution_param { num_output: 2 kernel_size: 1 } }
"""


def test_the_netlib_fcn_loses_its_dice_metric_and_extension_fields_only() -> None:
    net, _solver = find_entry("sunnybrook-fcn").load()
    original = net_to_text(net)
    assert has_extensions(net)

    export = for_bvlc_caffe(net, "sunnybrook-fcn")

    assert net_to_text(net) == original  # the user's net is untouched
    assert not has_extensions(export.net)
    assert [layer.type for layer in net.layer if layer.type == "Dice"] and \
        export.dropped_layers == [layer.name for layer in net.layer if layer.type == "Dice"]
    kept = [layer.name for layer in net.layer if layer.name not in export.dropped_layers]
    assert [layer.name for layer in export.net.layer] == kept
    assert any(layer.type == "SoftmaxWithLoss" for layer in export.net.layer)


@pytest.mark.parametrize(("extra", "why"), [
    ('layer { name: "dl" type: "DiceLoss" bottom: "score" bottom: "label" top: "loss" }',
     r"layer 'dl' \(DiceLoss\).*it is the loss being trained"),
    ('layer { name: "d" type: "Dice" bottom: "score" bottom: "label" top: "dice" }\n'
     'layer { name: "p" type: "Power" bottom: "dice" top: "twice" power_param { scale: 2 } }',
     r"layer 'd' \(Dice\).*layer 'p' reads its output"),
])
def test_a_dlp_layer_that_cannot_go_is_refused_with_its_name(extra: str, why: str) -> None:
    net = parse_net_text(TAIL + extra, "my.prototxt")
    with pytest.raises(NotRunnableInCaffeError, match="my.prototxt: " + why):
        for_bvlc_caffe(net, "my.prototxt")


def test_unknown_custom_types_are_left_for_the_users_caffe() -> None:
    net = parse_net_text(TAIL + 'layer { name: "c" type: "MyCustomLayer" bottom: "score" '
                         'top: "out" }', "net")
    assert [layer.type for layer in for_bvlc_caffe(net).net.layer][-1] == "MyCustomLayer"
