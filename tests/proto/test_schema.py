"""The Caffe schema: generated code is current, and field numbers match BVLC Caffe."""

from __future__ import annotations

import ast
import struct
from pathlib import Path

import pytest
from google.protobuf import descriptor_pb2

from dlp.proto import caffe_pb2

# (message, field, number) facts from BVLC Caffe master (shared/reference/caffe-formats.md).
CAFFE_FIELD_NUMBERS = {
    "Datum": {"channels": 1, "height": 2, "width": 3, "data": 4, "label": 5,
              "float_data": 6, "encoded": 7},
    "BlobShape": {"dim": 1},
    "BlobProto": {"num": 1, "channels": 2, "height": 3, "width": 4, "data": 5, "diff": 6,
                  "shape": 7, "double_data": 8, "double_diff": 9},
    "NetParameter": {"name": 1, "layers": 2, "input": 3, "input_dim": 4, "force_backward": 5,
                     "state": 6, "debug_info": 7, "input_shape": 8, "layer": 100},
    "LayerParameter": {
        "name": 1, "type": 2, "bottom": 3, "top": 4, "loss_weight": 5, "param": 6, "blobs": 7,
        "include": 8, "exclude": 9, "phase": 10, "propagate_down": 11,
        "transform_param": 100, "loss_param": 101, "accuracy_param": 102, "argmax_param": 103,
        "concat_param": 104, "convolution_param": 106, "data_param": 107,
        "dropout_param": 108, "dummy_data_param": 109, "eltwise_param": 110,
        "hdf5_data_param": 112, "image_data_param": 115, "inner_product_param": 117,
        "lrn_param": 118, "memory_data_param": 119, "pooling_param": 121, "power_param": 122,
        "relu_param": 123, "sigmoid_param": 124, "softmax_param": 125, "slice_param": 126,
        "tanh_param": 127, "python_param": 130, "prelu_param": 131, "reshape_param": 133,
        "flatten_param": 135, "batch_norm_param": 139, "elu_param": 140, "bias_param": 141,
        "scale_param": 142, "input_param": 143, "crop_param": 144, "swish_param": 147,
        "clip_param": 148, "dice_param": 10001},
    "ParamSpec": {"name": 1, "share_mode": 2, "lr_mult": 3, "decay_mult": 4},
    "ConvolutionParameter": {
        "num_output": 1, "bias_term": 2, "pad": 3, "kernel_size": 4, "group": 5, "stride": 6,
        "weight_filler": 7, "bias_filler": 8, "pad_h": 9, "pad_w": 10, "kernel_h": 11,
        "kernel_w": 12, "stride_h": 13, "stride_w": 14, "engine": 15, "axis": 16,
        "force_nd_im2col": 17, "dilation": 18},
    "CropParameter": {"axis": 1, "offset": 2},
    "PoolingParameter": {"pool": 1, "kernel_size": 2, "stride": 3, "pad": 4, "kernel_h": 5,
                         "kernel_w": 6, "stride_h": 7, "stride_w": 8, "pad_h": 9, "pad_w": 10,
                         "engine": 11, "global_pooling": 12, "round_mode": 13},
    "PythonParameter": {"module": 1, "layer": 2, "param_str": 3, "share_in_parallel": 4},
    "DataParameter": {"source": 1, "scale": 2, "mean_file": 3, "batch_size": 4,
                      "crop_size": 5, "mirror": 6, "rand_skip": 7, "backend": 8,
                      "force_encoded_color": 9, "prefetch": 10, "shuffle": 10001},
    "InputParameter": {"shape": 1},
    "FillerParameter": {"type": 1, "value": 2, "min": 3, "max": 4, "mean": 5, "std": 6,
                        "sparse": 7, "variance_norm": 8},
    "SolverParameter": {
        "train_net": 1, "test_net": 2, "test_iter": 3, "test_interval": 4, "base_lr": 5,
        "display": 6, "max_iter": 7, "lr_policy": 8, "gamma": 9, "power": 10, "momentum": 11,
        "weight_decay": 12, "stepsize": 13, "snapshot": 14, "snapshot_prefix": 15,
        "snapshot_diff": 16, "solver_mode": 17, "device_id": 18, "test_compute_loss": 19,
        "random_seed": 20, "train_net_param": 21, "test_net_param": 22, "net": 24,
        "net_param": 25, "train_state": 26, "test_state": 27, "snapshot_after_train": 28,
        "regularization_type": 29, "solver_type": 30, "delta": 31, "test_initialization": 32,
        "average_loss": 33, "stepvalue": 34, "clip_gradients": 35, "iter_size": 36,
        "snapshot_format": 37, "rms_decay": 38, "momentum2": 39, "type": 40,
        "layer_wise_reduce": 41, "weights": 42, "best_metric": 10001, "best_mode": 10002,
        "early_stop_rounds": 10003, "keep_last_snapshots": 10004},
    "SolverState": {"iter": 1, "learned_net": 2, "history": 3, "current_step": 4},
    "V1LayerParameter": {"bottom": 2, "top": 3, "name": 4, "type": 5, "blobs": 6,
                         "blobs_lr": 7, "weight_decay": 8, "include": 32, "exclude": 33},
    "TransformationParameter": {"scale": 1, "mirror": 2, "crop_size": 3, "mean_file": 4,
                                "mean_value": 5, "force_color": 6, "force_gray": 7,
                                "augmentation": 10001},
}


def _embedded_descriptor(module_source: str) -> descriptor_pb2.FileDescriptorProto:
    """The FileDescriptorProto literal a generated *_pb2.py passes to AddSerializedFile."""
    tree = ast.parse(module_source)
    for node in ast.walk(tree):
        if (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "AddSerializedFile"):
            return descriptor_pb2.FileDescriptorProto.FromString(node.args[0].value)
    raise AssertionError("no AddSerializedFile call in the generated module")


def test_generated_module_matches_caffe_proto(tmp_path: Path) -> None:
    """caffe_pb2.py must be regenerated (python -m dlp.proto.build) after editing caffe.proto."""
    from dlp.proto.build import generate

    committed = Path(caffe_pb2.__file__)
    fresh_files = generate(tmp_path)
    fresh = _embedded_descriptor(fresh_files[0].read_text())
    assert _embedded_descriptor(committed.read_text()) == fresh, (
        "dlp/proto/caffe_pb2.py is stale: run `python -m dlp.proto.build`")
    # The module the interpreter actually loaded carries the same schema.
    loaded = descriptor_pb2.FileDescriptorProto()
    caffe_pb2.DESCRIPTOR.CopyToProto(loaded)
    assert [m.name for m in loaded.message_type] == [m.name for m in fresh.message_type]
    for generated in fresh_files:
        assert (committed.parent / generated.name).read_text() == generated.read_text(), (
            f"dlp/proto/{generated.name} is stale: run `python -m dlp.proto.build`")


def test_build_check_detects_a_stale_module(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    from dlp.proto.build import main

    committed = Path(caffe_pb2.__file__).parent
    for name in ("caffe_pb2.py", "caffe_pb2.pyi"):
        (tmp_path / name).write_bytes((committed / name).read_bytes())
    assert main(["--check", "--out-dir", str(tmp_path)]) == 0
    # An edit of caffe.proto not followed by a rebuild leaves the module behind.
    generated = (tmp_path / "caffe_pb2.py").read_text()
    stale = generated.replace("keep_last_snapshots", "keep_last_snapshotz")
    assert stale != generated
    (tmp_path / "caffe_pb2.py").write_text(stale)
    assert main(["--check", "--out-dir", str(tmp_path)]) == 1
    assert "stale:" in capsys.readouterr().err
    assert main(["--out-dir", str(tmp_path)]) == 0
    assert main(["--check", "--out-dir", str(tmp_path)]) == 0


@pytest.mark.parametrize("message_name", sorted(CAFFE_FIELD_NUMBERS))
def test_field_numbers_match_caffe(message_name: str) -> None:
    fields = getattr(caffe_pb2, message_name).DESCRIPTOR.fields_by_name
    got = {name: fields[name].number for name in CAFFE_FIELD_NUMBERS[message_name]
           if name in fields}
    assert got == CAFFE_FIELD_NUMBERS[message_name]


def test_schema_is_proto2_package_caffe() -> None:
    file = descriptor_pb2.FileDescriptorProto.FromString(caffe_pb2.DESCRIPTOR.serialized_pb)
    assert file.package == "caffe"
    assert file.syntax in ("", "proto2")


DLP_EXTENSIONS = {("LayerParameter", "dice_param"), ("TransformationParameter", "augmentation"),
                  ("DataParameter", "shuffle"), ("SolverParameter", "best_metric"),
                  ("SolverParameter", "best_mode"), ("SolverParameter", "early_stop_rounds"),
                  ("SolverParameter", "keep_last_snapshots")}


def test_only_dlp_extensions_use_numbers_from_10000() -> None:
    """DLP's own fields sit >= 10000 so they never collide with Caffe's numbering."""
    high = set()
    for message in caffe_pb2.DESCRIPTOR.message_types_by_name.values():
        for field in message.fields:
            if field.number >= 10000:
                high.add((message.name, field.name))
    assert high == DLP_EXTENSIONS


def test_defaults_follow_caffe() -> None:
    assert caffe_pb2.PoolingParameter().round_mode == caffe_pb2.PoolingParameter.CEIL
    assert caffe_pb2.ConvolutionParameter().bias_term is True
    assert caffe_pb2.ConvolutionParameter().group == 1
    assert caffe_pb2.SolverParameter().type == "SGD"
    assert caffe_pb2.SolverParameter().solver_mode == caffe_pb2.SolverParameter.GPU
    assert caffe_pb2.LossParameter().normalization == caffe_pb2.LossParameter.VALID
    assert caffe_pb2.DataParameter().backend == caffe_pb2.DataParameter.LEVELDB
    assert caffe_pb2.NetState().phase == caffe_pb2.TEST
    assert caffe_pb2.FillerParameter().type == "constant"
    assert caffe_pb2.CropParameter().axis == 2
    assert caffe_pb2.DiceParameter().smooth == 1.0
    assert caffe_pb2.AugmentationParameter().elastic_sigma == 8.0
    assert caffe_pb2.SolverParameter().best_mode == "max"


def _varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        out.append(byte | (0x80 if value else 0))
        if not value:
            return bytes(out)


def _key(number: int, wire_type: int) -> bytes:
    return _varint(number << 3 | wire_type)


def test_decodes_hand_encoded_caffe_datum() -> None:
    """A Datum laid out byte by byte as Caffe writes it decodes field by field."""
    pixels = bytes(range(6))
    wire = (_key(1, 0) + _varint(1) + _key(2, 0) + _varint(2) + _key(3, 0) + _varint(3)
            + _key(4, 2) + _varint(len(pixels)) + pixels + _key(5, 0) + _varint(7))
    datum = caffe_pb2.Datum.FromString(wire)
    assert (datum.channels, datum.height, datum.width, datum.label) == (1, 2, 3, 7)
    assert datum.data == pixels
    assert datum.SerializeToString() == wire


def test_blob_data_is_packed_float() -> None:
    blob = caffe_pb2.BlobProto(data=[1.0, -2.5])
    blob.shape.dim.extend([2])
    wire = blob.SerializeToString()
    packed_floats = struct.pack("<2f", 1.0, -2.5)
    assert _key(5, 2) + _varint(8) + packed_floats in wire
    assert _key(7, 2) in wire


def test_extension_fields_are_skippable_by_caffe() -> None:
    """Caffe parses our binary files: the extension is a separate, skippable record."""
    layer = caffe_pb2.LayerParameter(name="dice", type="Dice")
    layer.dice_param.smooth = 0.5
    wire = layer.SerializeToString()
    plain = caffe_pb2.LayerParameter(name="dice", type="Dice").SerializeToString()
    assert wire.startswith(plain)
    extension = wire[len(plain):]
    assert extension.startswith(_key(10001, 2))
    # A parser without the field keeps it as unknown bytes and still reads the rest.
    rule_only = caffe_pb2.NetStateRule.FromString(_key(10001, 2) + extension[3:] + _key(2, 0)
                                                  + _varint(3))
    assert rule_only.min_level == 3


def test_standalone_records_round_trip_byte_stable() -> None:
    """Datum (LMDB records), BlobProtoVector and SolverState with every field set."""
    datum = caffe_pb2.Datum(channels=1, height=2, width=2, data=b"\x00\x01\x02\xff", label=3,
                            float_data=[0.5, 1.5], encoded=True)
    history = caffe_pb2.BlobProto(data=[0.25], diff=[1.0], double_data=[2.0],
                                  double_diff=[3.0], num=1, channels=1, height=1, width=1)
    history.shape.dim.extend([1])
    vector = caffe_pb2.BlobProtoVector(blobs=[history, history])
    state = caffe_pb2.SolverState(iter=1000, learned_net="snap_iter_1000.caffemodel",
                                  history=[history], current_step=2)
    for message in (datum, vector, state):
        fields = {field.name for field, _ in message.ListFields()}
        assert fields == {field.name for field in message.DESCRIPTOR.fields}
        wire = message.SerializeToString()
        again = type(message).FromString(wire)
        assert again == message
        assert again.SerializeToString() == wire
