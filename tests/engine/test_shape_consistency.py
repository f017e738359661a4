"""For every registered layer type, dlp.net.shapes.infer_shapes (the editor's
torch-free inference) equals the shapes the engine actually produces."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from dlp.data.lmdb_io import DatumWriter
from dlp.engine.net import Net
from dlp.engine.registry import registered_types
from dlp.net.prototxt import parse_net_text
from dlp.net.shapes import infer_shapes

X = (2, 4, 9, 7)  # blob "x"; "y" is (2, 4, 9, 7) too, "v" a volume, "lab" labels
INPUTS = {"x": X, "y": X, "v": (1, 2, 5, 6, 7), "lab": (2, 1, 9, 7), "vec": (2, 4)}

CASES: dict[str, list[str]] = {
    "AbsVal": ['type: "AbsVal" bottom: "x" top: "t"'],
    "Accuracy": ['type: "Accuracy" bottom: "x" bottom: "lab" top: "t" top: "t2" '
                 'accuracy_param { top_k: 2 }'],
    "ArgMax": ['type: "ArgMax" bottom: "x" top: "t" argmax_param { top_k: 3 out_max_val: true }',
               'type: "ArgMax" bottom: "x" top: "t" argmax_param { axis: 1 }'],
    "BNLL": ['type: "BNLL" bottom: "x" top: "t"'],
    "BatchNorm": ['type: "BatchNorm" bottom: "x" top: "t"'],
    "Bias": ['type: "Bias" bottom: "x" top: "t" bias_param { num_axes: 2 }',
             'type: "Bias" bottom: "x" bottom: "vec" top: "t" bias_param { axis: 0 }'],
    "Clip": ['type: "Clip" bottom: "x" top: "t" clip_param { min: 0 max: 1 }'],
    "Concat": ['type: "Concat" bottom: "x" bottom: "y" top: "t" concat_param { axis: 3 }'],
    "Convolution": ['type: "Convolution" bottom: "x" top: "t" convolution_param { '
                    'num_output: 6 kernel_h: 3 kernel_w: 2 stride: 2 pad: 1 dilation: 2 }',
                    'type: "Convolution" bottom: "v" top: "t" convolution_param { '
                    'num_output: 3 kernel_size: 3 kernel_size: 2 kernel_size: 1 pad: 1 }'],
    "Crop": ['type: "Crop" bottom: "x" bottom: "small" top: "t" crop_param { offset: 2 }'],
    "Data": [],  # LMDB: see test_data_layer_shapes
    "Deconvolution": ['type: "Deconvolution" bottom: "x" top: "t" convolution_param { '
                      'num_output: 4 group: 2 kernel_size: 4 stride: 3 pad: 1 }',
                      'type: "Deconvolution" bottom: "v" top: "t" convolution_param { '
                      'num_output: 2 kernel_size: 2 stride: 2 }'],
    "Dice": ['type: "Dice" bottom: "x" bottom: "lab" top: "t" top: "t2"'],
    "DiceLoss": ['type: "DiceLoss" bottom: "x" bottom: "lab" top: "t"'],
    "Dropout": ['type: "Dropout" bottom: "x" top: "t"'],
    "DummyData": ['type: "DummyData" top: "t" top: "t2" dummy_data_param { shape { dim: 2 '
                  'dim: 3 } shape { dim: 1 dim: 1 dim: 4 dim: 5 } }'],
    "ELU": ['type: "ELU" bottom: "x" top: "t"'],
    "Eltwise": ['type: "Eltwise" bottom: "x" bottom: "y" top: "t" eltwise_param { '
                'operation: MAX }'],
    "EuclideanLoss": ['type: "EuclideanLoss" bottom: "x" bottom: "y" top: "t"'],
    "Embed": ['type: "Embed" bottom: "lab" top: "t" embed_param { num_output: 3 '
              'input_dim: 4 }'],
    "Exp": ['type: "Exp" bottom: "x" top: "t"'],
    "Flatten": ['type: "Flatten" bottom: "x" top: "t" flatten_param { axis: 2 }'],
    "InnerProduct": ['type: "InnerProduct" bottom: "x" top: "t" inner_product_param { '
                     'num_output: 5 axis: 2 }'],
    "Input": ['type: "Input" top: "t" input_param { shape { dim: 3 dim: 2 } }'],
    "LRN": ['type: "LRN" bottom: "x" top: "t" lrn_param { norm_region: WITHIN_CHANNEL }'],
    "MVN": ['type: "MVN" bottom: "x" top: "t" mvn_param { across_channels: true }'],
    "Log": ['type: "Log" bottom: "x" top: "t" log_param { shift: 10 }'],
    "PReLU": ['type: "PReLU" bottom: "x" top: "t"'],
    "Pooling": ['type: "Pooling" bottom: "x" top: "t" pooling_param { pool: AVE kernel_size: 3 '
                'stride: 2 pad: 1 }',
                'type: "Pooling" bottom: "x" top: "t" pooling_param { kernel_size: 2 '
                'stride: 3 pad: 1 }',
                'type: "Pooling" bottom: "x" top: "t" pooling_param { global_pooling: true }',
                'type: "Pooling" bottom: "v" top: "t" pooling_param { kernel_size: 2 '
                'stride: 2 }'],
    "Power": ['type: "Power" bottom: "x" top: "t" power_param { shift: 5 }'],
    "Python": [],  # user code: see test_net.py
    "ReLU": ['type: "ReLU" bottom: "x" top: "t"'],
    "Reduction": ['type: "Reduction" bottom: "x" top: "t" reduction_param { axis: 1 }'],
    "Reshape": ['type: "Reshape" bottom: "x" top: "t" reshape_param { shape { dim: 0 dim: -1 '
                'dim: 7 } }'],
    "Scale": ['type: "Scale" bottom: "x" top: "t" scale_param { bias_term: true }'],
    "Sigmoid": ['type: "Sigmoid" bottom: "x" top: "t"'],
    "SigmoidCrossEntropyLoss": ['type: "SigmoidCrossEntropyLoss" bottom: "x" bottom: "y" '
                                'top: "t"'],
    "Silence": ['type: "Silence" bottom: "x" bottom: "y"'],
    "Slice": ['type: "Slice" bottom: "x" top: "t" top: "t2" slice_param { axis: 2 '
              'slice_point: 4 }'],
    "Softmax": ['type: "Softmax" bottom: "x" top: "t"'],
    "SoftmaxWithLoss": ['type: "SoftmaxWithLoss" bottom: "x" bottom: "lab" top: "t" top: "t2"'],
    "Split": ['type: "Split" bottom: "x" top: "t" top: "t2"'],
    "Swish": ['type: "Swish" bottom: "x" top: "t"'],
    "Tile": ['type: "Tile" bottom: "x" top: "t" tile_param { axis: 2 tiles: 2 }'],
    "TanH": ['type: "TanH" bottom: "x" top: "t"'],
    "Threshold": ['type: "Threshold" bottom: "x" top: "t"'],
}


def test_every_registered_type_has_a_case():
    assert set(CASES) == set(registered_types())


def _net_text(layer: str) -> str:
    shapes = "".join("shape { " + " ".join(f"dim: {d}" for d in s) + " } "
                     for s in INPUTS.values())
    tops = " ".join(f'top: "{n}"' for n in INPUTS)
    return (f'layer {{ name: "in" type: "Input" {tops} input_param {{ {shapes} }} }}\n'
            'layer { name: "small" type: "Pooling" bottom: "x" top: "small" '
            'pooling_param { kernel_size: 2 stride: 2 } }\n'
            f'layer {{ name: "under_test" {layer} }}')


@pytest.mark.parametrize("layer", [c for cases in CASES.values() for c in cases])
def test_inferred_shapes_equal_engine_shapes(layer):
    net_param = parse_net_text(_net_text(layer), "<case>")
    net = Net(net_param, "TRAIN", seed=0)
    generator = torch.Generator().manual_seed(0)
    inputs = {name: torch.rand(shape, generator=generator) for name, shape in INPUTS.items()}
    inputs["lab"] = torch.randint(0, 4, INPUTS["lab"], generator=generator).float()
    for name in set(net.input_names) - set(inputs):  # the Input case's own blob
        inputs[name] = torch.zeros(net.blob_shapes[name])
    blobs = net(inputs)
    inferred = infer_shapes(net_param, "TRAIN")
    assert not [layer_info.error for layer_info in inferred.layers if layer_info.error]
    assert {k: tuple(v.shape) for k, v in blobs.items()} == {
        k: tuple(v) for k, v in inferred.blobs.items()}


def test_data_layer_shapes(tmp_path):
    with DatumWriter(tmp_path / "db") as db:
        db.put(0, np.zeros((3, 10, 12), np.uint8), label=1)
    text = (f'layer {{ name: "d" type: "Data" top: "data" top: "label" data_param {{ '
            f'source: "{tmp_path / "db"}" backend: LMDB batch_size: 3 }} '
            f'transform_param {{ crop_size: 8 }} }}')
    net_param = parse_net_text(text)
    net = Net(net_param, "TEST")
    try:
        blobs = net()
        assert {k: tuple(v.shape) for k, v in blobs.items()} == \
            {k: tuple(v) for k, v in infer_shapes(net_param, "TEST").blobs.items()} == \
            {"data": (3, 3, 8, 8), "label": (3,)}
    finally:
        net.close()
