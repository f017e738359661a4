"""Building and running nets: phases, in-place layers, loss weights, parameter
multipliers and sharing, and one clear error per kind of bad input."""

from __future__ import annotations

import textwrap

import pytest
import torch

from dlp.engine.net import Net
from dlp.engine.registry import (
    DuplicateLayerTypeError,
    get_layer_class,
    register_layer,
    registered_types,
)
from dlp.errors import DLPError
from dlp.net.prototxt import parse_net_text
from tests.engine.conftest import net_with_inputs

SMALL = """
name: "small"
layer { name: "in" type: "Input" top: "data" top: "label"
  input_param { shape { dim: 2 dim: 1 dim: 8 dim: 8 } shape { dim: 2 dim: 1 dim: 8 dim: 8 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
  param { lr_mult: 1 decay_mult: 1 } param { lr_mult: 2 decay_mult: 0 }
  convolution_param { num_output: 4 kernel_size: 3 pad: 1 weight_filler { type: "msra" } } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "drop" type: "Dropout" bottom: "conv1" top: "conv1" }
layer { name: "score" type: "Convolution" bottom: "conv1" top: "score"
  convolution_param { num_output: 2 kernel_size: 1 weight_filler { type: "xavier" } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "score" bottom: "label" top: "loss" }
layer { name: "acc" type: "Accuracy" bottom: "score" bottom: "label" top: "accuracy"
  include { phase: TEST } }
"""


def small_net(phase: str = "TRAIN", **kwargs) -> Net:
    return Net(parse_net_text(SMALL, "small.prototxt"), phase, seed=0, **kwargs)


def batch() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {"data": torch.rand(2, 1, 8, 8, generator=generator),
            "label": torch.randint(0, 2, (2, 1, 8, 8), generator=generator).float()}


def test_phase_filtering_names_and_outputs():
    train, test = small_net("TRAIN"), small_net("TEST")
    assert train.layer_names == ["in", "conv1", "relu1", "drop", "score", "loss"]
    assert test.layer_names[-1] == "acc"
    assert train.input_names == ["data", "label"]
    assert train.output_names == ["loss"] and test.output_names == ["loss", "accuracy"]
    assert train.loss_weights == {"loss": 1.0}
    assert test.layer("acc").top_k == 1


def test_training_reduces_the_loss_and_in_place_layers_rebind():
    net = small_net()
    params = net.learnable_params()
    assert [(p.layer, p.index, p.lr_mult, p.decay_mult) for p in params] == [
        ("conv1", 0, 1.0, 1.0), ("conv1", 1, 2.0, 0.0), ("score", 0, 1.0, 1.0),
        ("score", 1, 1.0, 1.0)]
    optimizer = torch.optim.SGD([p.tensor for p in params], lr=0.5)
    inputs = batch()
    losses = []
    for _ in range(15):
        blobs = net(inputs)
        assert blobs["conv1"].min() >= 0  # the in-place ReLU's result under conv1's name
        loss = net.loss(blobs)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


def test_relu_in_place_after_a_reader_keeps_gradients_correct():
    # conv1 is read by 'copy' before the in-place ReLU: overwriting it would corrupt
    # 'copy' (a view), so the engine must not run that ReLU in place.
    text = """
layer { name: "conv1" type: "Convolution" bottom: "x" top: "conv1"
  convolution_param { num_output: 2 kernel_size: 1 weight_filler { type: "gaussian" } } }
layer { name: "copy" type: "Reshape" bottom: "conv1" top: "copy"
  reshape_param { shape { dim: 0 dim: -1 } } }
layer { name: "relu" type: "ReLU" bottom: "conv1" top: "conv1" }"""
    net = net_with_inputs(text, {"x": (1, 2, 3, 3)}, memory_format="contiguous", seed=1)
    x = torch.randn(1, 2, 3, 3)
    blobs = net({"x": x})
    conv = torch.nn.functional.conv2d(x, net.layer("conv1").weight, net.layer("conv1").bias)
    torch.testing.assert_close(blobs["copy"], conv.reshape(1, -1))
    torch.testing.assert_close(blobs["conv1"], conv.clamp_min(0))


def test_shared_parameters_by_name_appear_once():
    text = """
layer { name: "a" type: "InnerProduct" bottom: "x" top: "a" param { name: "w" } param { name: "b" }
  inner_product_param { num_output: 3 weight_filler { type: "gaussian" } } }
layer { name: "b" type: "InnerProduct" bottom: "x" top: "b" param { name: "w" } param { name: "b" }
  inner_product_param { num_output: 3 } }"""
    net = net_with_inputs(text, {"x": (2, 4)})
    assert [(p.layer, p.name) for p in net.learnable_params()] == [("a", "w"), ("a", "b")]
    blobs = net({"x": torch.randn(2, 4)})
    torch.testing.assert_close(blobs["a"], blobs["b"])
    (blobs["a"].sum() + blobs["b"].sum()).backward()
    assert net.layer("a").weight is net.layer("b").weight


def test_frozen_blobs_get_no_gradient():
    net = net_with_inputs('layer { name: "ip" type: "InnerProduct" bottom: "x" top: "y" '
                          'param { lr_mult: 0 } inner_product_param { num_output: 2 } }',
                          {"x": (1, 3)})
    weight, bias = (p.tensor for p in net.learnable_params())
    net({"x": torch.randn(1, 3)})["y"].sum().backward()
    assert weight.grad is None and bias.grad is not None


def test_share_weights_with_a_test_net():
    train, test = small_net("TRAIN"), small_net("TEST")
    assert test.share_weights_with(train) == 4
    assert test.layer("conv1").weight is train.layer("conv1").weight


def test_to_net_parameter_round_trips_through_copy_from():
    source, target = small_net(), Net(parse_net_text(SMALL), "TEST", seed=9)
    report = target.copy_from(source.to_net_parameter())
    assert report.matched == ["conv1", "score"] and not report.mismatched
    torch.testing.assert_close(target.layer("score").weight, source.layer("score").weight)
    assert source.to_net_parameter(with_weights=False).layer[1].blobs == []


@pytest.mark.parametrize(("net_text", "message"), [
    ('layer { name: "x" type: "Convolutoin" bottom: "data" top: "y" }',
     "layer 'x': unknown layer type 'Convolutoin'; did you mean Convolution"),
    ('layer { name: "x" type: "ReLU" bottom: "dta" top: "y" }',
     "layer 'x' \\(ReLU\\): bottom 'dta' is not produced by an earlier layer"),
    ('layer { name: "x" type: "Eltwise" bottom: "data" bottom: "other" top: "y" }',
     "layer 'x' \\(Eltwise\\): bottom 1 .*shape"),
    ('layer { name: "x" type: "Convolution" bottom: "data" top: "y" '
     'convolution_param { num_output: 2 kernel_size: 9 } }', "layer 'x' \\(Convolution\\)"),
    ('layer { name: "x" type: "ReLU" bottom: "data" bottom: "other" top: "y" }',
     "layer 'x' \\(ReLU\\): takes 1 bottom\\(s\\), got 2"),
    ('layer { name: "x" type: "Accuracy" bottom: "data" bottom: "other" }',
     "layer 'x' \\(Accuracy\\): produces 1 to 2 top\\(s\\), got 0"),
    ('layer { name: "x" type: "ReLU" bottom: "data" top: "other" }',
     "layer 'x' \\(ReLU\\): top 'other' is already produced"),
    ('layer { name: "x" type: "Python" bottom: "data" top: "y" python_param { module: "m" '
     'layer: "L" } }', "Python layers run code from the prototxt .* disabled"),
])
def test_bad_nets_give_one_clear_error(net_text, message):
    with pytest.raises(DLPError, match=message):
        net_with_inputs(net_text, {"data": (1, 2, 4, 4), "other": (1, 3, 4, 4)})


def test_registry_rejects_duplicates_and_lists_types():
    assert {"Convolution", "Dice", "DiceLoss", "Python", "Data"} <= set(registered_types())
    with pytest.raises(DuplicateLayerTypeError, match=r"'ReLU' is registered twice"):
        register_layer("ReLU")(type("Again", (), {}))
    assert get_layer_class("ReLU").type_name == "ReLU"


PY_MODULE = '''
import caffe
import numpy as np

class Doubler(caffe.Layer):
    def setup(self, bottom, top):
        self.factor = float(self.param_str or 2)

    def reshape(self, bottom, top):
        top[0].reshape(*bottom[0].data.shape)

    def forward(self, bottom, top):
        top[0].data[...] = bottom[0].data * self.factor

    def backward(self, top, propagate_down, bottom):
        bottom[0].diff[...] = top[0].diff * self.factor
'''


def test_python_layer_runs_user_code_when_enabled(tmp_path):
    (tmp_path / "user_layers.py").write_text(textwrap.dedent(PY_MODULE))
    text = ('layer { name: "py" type: "Python" bottom: "x" top: "y" python_param { '
            'module: "user_layers" layer: "Doubler" param_str: "3" } }')
    net = net_with_inputs(text, {"x": (2, 3)}, python_layers=True, root=tmp_path)
    assert net.blob_shapes["y"] == (2, 3)
    x = torch.randn(2, 3, requires_grad=True)
    y = net({"x": x})["y"]
    torch.testing.assert_close(y, 3 * x.detach())
    y.sum().backward()
    torch.testing.assert_close(x.grad, torch.full((2, 3), 3.0))
    with pytest.raises(DLPError, match=r"cannot import python_param.module 'nope'"):
        net_with_inputs(text.replace("user_layers", "nope"), {"x": (2, 3)},
                        python_layers=True, root=tmp_path)


def test_relu_after_global_max_pooling_keeps_its_gradient():
    text = """
layer { name: "conv" type: "Convolution" bottom: "x" top: "c"
  convolution_param { num_output: 2 kernel_size: 1 weight_filler { type: "gaussian" } } }
layer { name: "gmax" type: "Pooling" bottom: "c" top: "g" pooling_param { pool: MAX
  global_pooling: true } }
layer { name: "relu" type: "ReLU" bottom: "g" top: "g" }"""
    net = net_with_inputs(text, {"x": (1, 2, 3, 3)}, seed=0)
    x = torch.randn(1, 2, 3, 3, requires_grad=True)
    net({"x": x})["g"].sum().backward()  # would fail if the ReLU overwrote amax's output
    assert x.grad is not None


def test_a_loss_layer_without_top_gets_an_automatic_one_counted_in_the_loss():
    # Caffe's AutoTopBlobs: a LossLayer written with no top still has one (weight 1,
    # or its loss_weight), which is not an output blob and cannot feed another layer.
    text = ('layer { name: "loss" type: "SoftmaxWithLoss" bottom: "x" bottom: "y" }'
            'layer { name: "e" type: "EuclideanLoss" bottom: "x" bottom: "z" loss_weight: 3 }')
    net = net_with_inputs(text, {"x": (2, 3), "y": (2,), "z": (2, 3)})
    assert sorted(net.loss_weights.values()) == [1.0, 3.0]
    assert net.output_names == []
    x = torch.randn(2, 3, requires_grad=True)
    y, z = torch.tensor([0.0, 2.0]), torch.randn(2, 3)
    blobs = net({"x": x, "y": y, "z": z})
    expected = (torch.nn.functional.cross_entropy(x, y.long())
                + 3 * ((x - z) ** 2).sum() / 4)
    loss = net.loss(blobs)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert x.grad is not None and x.grad.abs().sum() > 0
    with pytest.raises(DLPError, match=r"bottom 'loss \(automatic\)' is the automatic top"):
        net_with_inputs(text + 'layer { name: "r" type: "ReLU" bottom: "loss (automatic)" '
                        'top: "r" }', {"x": (2, 3), "y": (2,), "z": (2, 3)})


def test_a_netlib_style_loss_without_top_trains_like_one_with_a_top():
    named = Net(parse_net_text(SMALL), "TRAIN", seed=0)
    anonymous = Net(parse_net_text(SMALL.replace(' top: "loss" }', " }")), "TRAIN", seed=0)
    inputs = batch()
    torch.manual_seed(1)  # the same dropout masks for both
    expected = named.loss(named(inputs))
    torch.manual_seed(1)
    torch.testing.assert_close(anonymous.loss(anonymous(inputs)), expected)
