""".caffemodel reading/writing, copying by layer name with a report, and the errors
a user meets with the wrong or a damaged file."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlp.engine.net import Net
from dlp.engine.weights import (
    WeightsError,
    blob_to_array,
    export_state_dict,
    load_weights,
    read_caffemodel,
    tensor_to_blob,
    write_caffemodel,
)
from dlp.net.prototxt import parse_net_text
from dlp.proto import caffe_pb2

BASE = """
name: "base"
layer { name: "in" type: "Input" top: "data" input_param { shape { dim: 1 dim: 2 dim: 6 dim: 6 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  convolution_param { num_output: 3 kernel_size: 3 weight_filler { type: "gaussian" } } }
layer { name: "bn1" type: "BatchNorm" bottom: "conv1" top: "conv1" }
layer { name: "fc6" type: "InnerProduct" bottom: "conv1" top: "fc6"
  inner_product_param { num_output: 4 weight_filler { type: "xavier" } } }
"""


def base_net(text: str = BASE, seed: int = 0) -> Net:
    return Net(parse_net_text(text, "base.prototxt"), "TRAIN", seed=seed)


def test_caffemodel_round_trip_is_byte_stable(tmp_path):
    net = base_net()
    net({"data": torch.randn(1, 2, 6, 6)})  # BatchNorm accumulates statistics
    first = tmp_path / "a.caffemodel"
    write_caffemodel(net, first)
    weights = read_caffemodel(first)
    assert [len(layer.blobs) for layer in weights.layer] == [0, 2, 3, 2]
    assert list(weights.layer[3].blobs[0].shape.dim) == [4, 48]
    second = tmp_path / "b.caffemodel"
    write_caffemodel(weights, second)
    assert first.read_bytes() == second.read_bytes()
    other = base_net(seed=5)
    report = other.copy_from(weights)
    assert report.matched == ["conv1", "bn1", "fc6"]
    for name in ("conv1", "bn1", "fc6"):
        for a, b in zip(net.layer(name).caffe_blobs(), other.layer(name).caffe_blobs(),
                        strict=True):
            torch.testing.assert_close(a, b)


def test_legacy_4d_and_double_blobs_are_read():
    legacy = caffe_pb2.BlobProto(num=1, channels=1, height=2, width=3)
    legacy.data.extend(range(6))
    assert blob_to_array(legacy).shape == (1, 1, 2, 3)
    doubles = caffe_pb2.BlobProto()
    doubles.shape.dim.extend([2, 2])
    doubles.double_data.extend([0.5, 1.5, 2.5, 3.5])
    np.testing.assert_array_equal(blob_to_array(doubles), [[0.5, 1.5], [2.5, 3.5]])
    roundtrip = blob_to_array(tensor_to_blob(torch.arange(6.0).reshape(2, 3)))
    np.testing.assert_array_equal(roundtrip, np.arange(6.0).reshape(2, 3))
    # A legacy (1, 1, N, K) InnerProduct weight fits an (N, K) blob, as in Caffe.
    net = base_net()
    weights = net.to_net_parameter()
    fc6 = weights.layer[3].blobs[0]
    values = blob_to_array(fc6)
    fc6.ClearField("shape")
    fc6.num, fc6.channels, fc6.height, fc6.width = 1, 1, 4, 48
    fresh = base_net(seed=3)
    assert fresh.copy_from(weights).matched == ["conv1", "bn1", "fc6"]
    np.testing.assert_array_equal(fresh.layer("fc6").weight.detach().numpy(), values)


def test_v1_caffemodel_is_upgraded(tmp_path):
    old = caffe_pb2.NetParameter(name="old")
    conv = old.layers.add(name="conv1", type=caffe_pb2.V1LayerParameter.CONVOLUTION)
    conv.bottom.append("data")
    conv.top.append("conv1")
    conv.blobs.append(tensor_to_blob(torch.full((3, 2, 3, 3), 0.25)))
    conv.blobs.append(tensor_to_blob(torch.full((3,), -1.0)))
    path = tmp_path / "old.caffemodel"
    path.write_bytes(old.SerializeToString())
    upgraded = read_caffemodel(path)
    assert upgraded.layer[0].type == "Convolution" and len(upgraded.layer[0].blobs) == 2
    net = base_net()
    report = load_weights(net, path)
    assert report.matched == ["conv1"] and report.missing == ["bn1", "fc6"]
    assert net.layer("conv1").bias.tolist() == [-1.0, -1.0, -1.0]


def test_fine_tuning_renamed_layer_picks_up_only_matching_names(tmp_path):
    path = tmp_path / "pretrained.caffemodel"
    write_caffemodel(base_net(), path)
    renamed = BASE.replace('name: "fc6"', 'name: "fc6_new"').replace("num_output: 4",
                                                                     "num_output: 5")
    net = base_net(renamed)
    before = net.layer("fc6_new").weight.detach().clone()
    report = load_weights(net, path)
    assert report.matched == ["conv1", "bn1"]
    assert report.missing == ["fc6_new"] and report.unused == ["fc6"]
    assert torch.equal(net.layer("fc6_new").weight, before)
    assert "unused layers in the weights: fc6" in report.summary()


def test_shape_mismatch_is_reported_and_strict_refuses(tmp_path):
    path = tmp_path / "w.caffemodel"
    write_caffemodel(base_net(), path)
    wider = base_net(BASE.replace("num_output: 4", "num_output: 6"))
    report = load_weights(wider, path)
    assert report.mismatched == [("fc6", 0, (6, 48), (4, 48)), ("fc6", 1, (6,), (4,))]
    assert "fc6[0] net 6x48 vs file 4x48" in report.summary()
    with pytest.raises(WeightsError, match=r"w.caffemodel: .*shape mismatch"):
        load_weights(wider, path, strict=True)


def test_weights_of_another_net_give_a_clear_error(tmp_path):
    other = Net(parse_net_text(
        'layer { name: "in" type: "Input" top: "x" input_param { shape { dim: 1 dim: 3 } } }'
        'layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" '
        'inner_product_param { num_output: 2 } }'), "TEST")
    path = tmp_path / "lenet.caffemodel"
    write_caffemodel(other, path)
    with pytest.raises(WeightsError, match=r"lenet.caffemodel: no layer of these weights fits "
                                           "net 'base' .*the file has ip; the net expects "
                                           "conv1, bn1, fc6"):
        load_weights(base_net(), path)


def test_truncated_or_wrong_file_names_the_file(tmp_path):
    good = tmp_path / "good.caffemodel"
    write_caffemodel(base_net(), good)
    cut = tmp_path / "cut.caffemodel"
    cut.write_bytes(good.read_bytes()[:-7])
    with pytest.raises(WeightsError, match=r"cut.caffemodel: not a readable .caffemodel"):
        read_caffemodel(cut)
    text = tmp_path / "net.caffemodel"
    text.write_text(BASE)
    with pytest.raises(WeightsError, match=r"net.caffemodel: "):
        read_caffemodel(text)
    with pytest.raises(WeightsError, match=r"missing.caffemodel: weights file not found"):
        read_caffemodel(tmp_path / "missing.caffemodel")


def test_export_state_dict_names_layers_and_blobs():
    net = base_net()
    state = export_state_dict(net)
    assert list(state) == ["conv1.weight", "conv1.bias", "bn1.mean", "bn1.variance",
                           "bn1.scale_factor", "fc6.weight", "fc6.bias"]
    assert state["conv1.weight"].is_contiguous() and state["fc6.weight"].shape == (4, 48)
    torch.save(state, "/dev/null")
