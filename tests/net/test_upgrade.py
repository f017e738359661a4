"""Upgrading old nets, solvers and .caffemodels the way Caffe's upgrade_proto does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from dlp.net.prototxt import parse_net_text, parse_solver_text, parse_text, read_net, read_solver
from dlp.net.upgrade import (
    V1_TYPE_NAMES,
    UpgradeError,
    inputs_to_input_layer,
    is_v0_net,
    is_v1_net,
    needs_upgrade,
    upgrade_net,
    upgrade_solver,
)
from dlp.proto import caffe_pb2

CORPUS = Path(__file__).parent / "corpus"


def _raw_net(text: str) -> caffe_pb2.NetParameter:
    return parse_text(text, caffe_pb2.NetParameter)


def test_v1_net_upgrades_to_the_equivalent_v2_net() -> None:
    v1 = _raw_net("""
        name: "small"
        layers { name: "data" type: DATA top: "data" top: "label"
                 data_param { source: "db" batch_size: 4 scale: 0.5 mirror: true }
                 include { phase: TRAIN } }
        layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv"
                 blobs_lr: 1 blobs_lr: 2 weight_decay: 1 weight_decay: 0
                 convolution_param { num_output: 2 kernel_size: 3 } }
        layers { name: "loss" type: SOFTMAX_LOSS bottom: "conv" bottom: "label" top: "loss"
                 loss_weight: 2 loss_param { ignore_label: 255 } }
    """)
    expected = _raw_net("""
        name: "small"
        layer { name: "data" type: "Data" top: "data" top: "label" include { phase: TRAIN }
                transform_param { scale: 0.5 mirror: true }
                data_param { source: "db" batch_size: 4 } }
        layer { name: "conv" type: "Convolution" bottom: "conv" top: "conv" }
        layer { name: "loss" type: "SoftmaxWithLoss" bottom: "conv" bottom: "label" top: "loss"
                loss_weight: 2 loss_param { ignore_label: 255 } }
    """)
    conv = expected.layer[1]
    del conv.bottom[:]
    conv.bottom.append("data")
    conv.param.add(lr_mult=1, decay_mult=1)
    conv.param.add(lr_mult=2, decay_mult=0)
    conv.convolution_param.num_output = 2
    conv.convolution_param.kernel_size.append(3)
    assert is_v1_net(v1) and needs_upgrade(v1)
    upgraded = upgrade_net(v1)
    assert upgraded == expected
    assert not needs_upgrade(upgraded)
    assert len(v1.layers) == 3 and not v1.layer, "the input message must not change"


def test_v1_corpus_upgrade_keeps_every_layer_and_field() -> None:
    raw = parse_text((CORPUS / "v1_all_layers.prototxt").read_text(), caffe_pb2.NetParameter)
    net = read_net(CORPUS / "v1_all_layers.prototxt")
    # The deprecated input became the first layer, the V1 layers follow in order.
    assert net.layer[0].type == "Input" and list(net.layer[0].top) == ["extra"]
    assert list(net.layer[0].input_param.shape[0].dim) == [2, 3, 8, 8]
    assert [layer.name for layer in net.layer[1:]] == [layer.name for layer in raw.layers]
    assert [layer.type for layer in net.layer[1:]] == [V1_TYPE_NAMES[v.type] for v in raw.layers]
    by_name = {layer.name: layer for layer in net.layer}

    conv = by_name["conv1"]
    assert [(p.name, p.share_mode, p.lr_mult, p.decay_mult) for p in conv.param] == [
        ("conv1_w", caffe_pb2.ParamSpec.STRICT, 1.0, 1.0),
        ("conv1_b", caffe_pb2.ParamSpec.PERMISSIVE, 2.0, 0.0)]
    assert list(conv.blobs[0].data) == [0.5]
    assert conv.convolution_param.weight_filler.std == pytest.approx(0.01)
    # Only lr given: decay keeps its default.
    assert [(p.lr_mult, p.HasField("decay_mult")) for p in by_name["fc"].param] == [
        (1.0, False), (2.0, False)]
    data = by_name["data"]
    assert data.transform_param.crop_size == 8 and data.transform_param.mirror
    assert data.transform_param.mean_file == "mean.binaryproto"
    assert not data.data_param.HasField("scale") and data.data_param.backend == 1
    assert by_name["images"].transform_param.crop_size == 8
    assert by_name["windows"].transform_param.scale == 2
    assert list(by_name["loss"].loss_weight) == [1.0]
    assert by_name["loss"].loss_param.normalize is True
    assert by_name["accuracy"].include[0].phase == caffe_pb2.TEST
    assert by_name["images"].exclude[0].phase == caffe_pb2.TRAIN
    assert by_name["h5out"].hdf5_output_param.file_name == "out.h5"
    assert by_name["unset"].type == ""


def test_every_v1_enum_value_has_a_v2_name() -> None:
    assert set(V1_TYPE_NAMES) == {v.number for v in
                                  caffe_pb2.V1LayerParameter.LayerType.DESCRIPTOR.values}


def test_v0_net_folds_padding_and_maps_fields() -> None:
    raw = parse_text((CORPUS / "v0_padding.prototxt").read_text(), caffe_pb2.NetParameter)
    assert is_v0_net(raw)
    net = read_net(CORPUS / "v0_padding.prototxt")
    names = [layer.name for layer in net.layer]
    assert "pad1" not in names
    by_name = {layer.name: layer for layer in net.layer}
    conv = by_name["conv1"]
    assert conv.type == "Convolution"
    assert list(conv.bottom) == ["data"]
    param = conv.convolution_param
    assert (list(param.pad), list(param.kernel_size), list(param.stride)) == ([2], [5], [1])
    assert param.num_output == 16 and param.bias_term and param.group == 1
    assert [(p.lr_mult, p.decay_mult) for p in conv.param] == [(1, 1), (2, 0)]
    assert len(conv.blobs) == 1
    data = by_name["train_data"]
    assert data.type == "Data"
    assert (data.data_param.source, data.data_param.batch_size, data.data_param.rand_skip) == (
        "train_leveldb", 16, 10)
    assert data.transform_param.crop_size == 28 and data.transform_param.mirror
    assert data.transform_param.mean_file == "mean.binaryproto"
    pool = by_name["pool1"].pooling_param
    assert (pool.pool, pool.kernel_size, pool.stride) == (caffe_pb2.PoolingParameter.AVE, 3, 2)
    lrn = by_name["norm1"].lrn_param
    assert (lrn.local_size, lrn.k) == (3, 1)
    assert by_name["drop1"].dropout_param.dropout_ratio == pytest.approx(0.3)
    assert by_name["concat"].concat_param.concat_dim == 1
    assert by_name["fc"].inner_product_param.bias_term is False
    assert by_name["loss"].type == "SoftmaxWithLoss"
    images = by_name["images"]
    assert images.image_data_param.shuffle and images.image_data_param.new_height == 32
    window = by_name["windows"].window_data_param
    assert (window.fg_threshold, window.context_pad, window.crop_mode) == (
        pytest.approx(0.6), 8, "square")
    assert by_name["h5"].hdf5_data_param.batch_size == 4
    assert by_name["h5out"].hdf5_output_param.file_name == "o.h5"
    assert by_name["info"].infogain_loss_param.source == "H.binaryproto"


def test_v0_padding_into_a_non_conv_layer_is_refused() -> None:
    net = _raw_net("""
        layers { layer { name: "pad" type: "padding" pad: 1 } bottom: "x" top: "p" }
        layers { layer { name: "act" type: "relu" } bottom: "p" top: "y" }
    """)
    with pytest.raises(UpgradeError, match=r'layer "act".*only conv and pool'):
        upgrade_net(net, source="old.prototxt")


def test_unknown_v0_type_names_the_layer() -> None:
    net = _raw_net('layers { layer { name: "odd" type: "warp" } }')
    with pytest.raises(UpgradeError, match=r'old\.prototxt: layer "odd": unknown V0 layer type'):
        upgrade_net(net, source="old.prototxt")


def test_mixing_layer_and_layers_is_refused() -> None:
    net = _raw_net('layer { name: "a" type: "ReLU" } layers { name: "b" type: RELU }')
    with pytest.raises(UpgradeError, match="mixes new 'layer' and old 'layers'"):
        upgrade_net(net, source="mixed.prototxt")


def test_input_shape_becomes_input_layer() -> None:
    net = read_net(CORPUS / "v2_deploy_input_shape.prototxt")
    first = net.layer[0]
    assert (first.name, first.type, list(first.top)) == ("input", "Input", ["data", "aux"])
    assert [list(s.dim) for s in first.input_param.shape] == [[1, 1, 28, 28], [1, 4]]
    assert [layer.name for layer in net.layer[1:]] == ["ip", "sum"]


def test_inputs_can_be_kept_as_written() -> None:
    raw = parse_text((CORPUS / "v2_deploy_input_dim.prototxt").read_text(),
                     caffe_pb2.NetParameter)
    kept = upgrade_net(raw, convert_inputs=False)
    assert kept == raw
    converted = inputs_to_input_layer(kept)
    assert list(converted.layer[0].input_param.shape[0].dim) == [1, 3, 227, 227]
    assert not converted.input


def test_input_dim_count_must_match() -> None:
    net = _raw_net('input: "a" input: "b" input_dim: 1 input_dim: 3 input_dim: 8 input_dim: 8')
    with pytest.raises(UpgradeError, match=r"2 input.*4 input_dim values; expected 4 per input"):
        upgrade_net(net, source="deploy.prototxt")


def test_input_without_shape_is_dropped_like_old_caffemodels() -> None:
    net = upgrade_net(_raw_net('input: "data" layer { name: "r" type: "ReLU" bottom: "data" }'))
    assert not net.input and [layer.name for layer in net.layer] == ["r"]


def test_old_batch_norm_params_are_frozen() -> None:
    net = read_net(CORPUS / "v2_weights.prototxt")
    batch_norm = net.layer[-1]
    assert [(p.lr_mult, p.decay_mult) for p in batch_norm.param] == [(0, 0)] * 3


def test_solver_type_enum_becomes_string() -> None:
    solver = read_solver(CORPUS / "solver_old_type.prototxt")
    assert solver.type == "Nesterov"
    assert not solver.HasField("solver_type")
    for enum_value, name in [(0, "SGD"), (2, "AdaGrad"), (3, "RMSProp"), (4, "AdaDelta"),
                             (5, "Adam")]:
        old = caffe_pb2.SolverParameter(solver_type=enum_value)
        assert upgrade_solver(old).type == name


def test_solver_type_conflict_is_refused() -> None:
    with pytest.raises(UpgradeError, match='solver_type ADAM contradicts type "SGD"'):
        parse_solver_text('type: "SGD"\nsolver_type: ADAM\n', "solver.prototxt")


def test_inline_solver_nets_are_upgraded() -> None:
    solver = read_solver(CORPUS / "solver_inline.prototxt")
    assert solver.train_net_param.layer[0].type == "InnerProduct"
    assert not solver.train_net_param.layers
    assert solver.test_net_param[0].layer[0].type == "Input"


def test_parse_without_upgrade_keeps_the_old_format() -> None:
    text = (CORPUS / "v1_all_layers.prototxt").read_text()
    assert len(parse_net_text(text, upgrade=False).layers) > 0


# ---------------------------------------------------------------------------
# .caffemodel files (binary NetParameter)


def _blob(shape: tuple[int, ...], seed: int) -> caffe_pb2.BlobProto:
    values = np.random.default_rng(seed).standard_normal(int(np.prod(shape))).astype(np.float32)
    blob = caffe_pb2.BlobProto()
    blob.shape.dim.extend(shape)
    blob.data.extend(values.tolist())
    return blob


def test_caffemodel_round_trip_is_byte_stable(tmp_path: Path) -> None:
    net = read_net(CORPUS / "v2_vision.prototxt")
    for index, layer in enumerate(net.layer):
        if layer.type in ("Convolution", "InnerProduct"):
            layer.blobs.append(_blob((2, 3, 3, 3), index))
            layer.blobs.append(_blob((2,), index + 100))
    wire = net.SerializeToString()
    path = tmp_path / "model.caffemodel"
    path.write_bytes(wire)
    again = caffe_pb2.NetParameter.FromString(path.read_bytes())
    assert again == net
    assert again.SerializeToString() == wire


def test_v1_caffemodel_is_byte_stable_and_upgrades_with_its_weights() -> None:
    """An old-style .caffemodel: V1 layers, 4-D legacy blob dims, blobs_lr."""
    model = caffe_pb2.NetParameter(name="old_model")
    conv = model.layers.add(name="conv1", type=caffe_pb2.V1LayerParameter.CONVOLUTION)
    conv.bottom.append("data")
    conv.top.append("conv1")
    conv.blobs_lr.extend([1, 2])
    weights = conv.blobs.add(num=4, channels=1, height=3, width=3)
    weights.data.extend(np.linspace(-1, 1, 36, dtype=np.float32).tolist())
    bias = conv.blobs.add(num=1, channels=1, height=1, width=4)
    bias.data.extend([0.0, 0.5, -0.5, 1.0])
    fc = model.layers.add(name="fc", type=caffe_pb2.V1LayerParameter.INNER_PRODUCT)
    fc.blobs.add(num=1, channels=1, height=2, width=4).data.extend([1, 2, 3, 4, 5, 6, 7, 8])
    wire = model.SerializeToString()

    loaded = caffe_pb2.NetParameter.FromString(wire)
    assert loaded.SerializeToString() == wire

    upgraded = upgrade_net(loaded, source="old.caffemodel")
    assert [layer.type for layer in upgraded.layer] == ["Convolution", "InnerProduct"]
    assert upgraded.layer[0].blobs[0] == weights
    assert upgraded.layer[0].blobs[1] == bias
    assert list(upgraded.layer[1].blobs[0].data) == [1, 2, 3, 4, 5, 6, 7, 8]
    upgraded_wire = upgraded.SerializeToString()
    assert caffe_pb2.NetParameter.FromString(upgraded_wire).SerializeToString() == upgraded_wire
