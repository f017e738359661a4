"""Loss and metric layers: scalar losses, label checks, per-class outputs, Dice."""

from __future__ import annotations

import pytest
from google.protobuf import text_format

from dlp.net.specs import ShapeError, get_spec
from dlp.proto import caffe_pb2


def make_layer(text: str) -> caffe_pb2.LayerParameter:
    return text_format.Parse(text, caffe_pb2.LayerParameter())


def shapes(text: str, *bottoms: tuple[int, ...]) -> list[tuple[int, ...]]:
    layer = make_layer(text)
    return get_spec(layer.type).output_shapes(layer, list(bottoms))


SCORE, LABEL = (2, 3, 4, 4), (2, 1, 4, 4)


def test_softmax_with_loss_gives_a_scalar_and_optionally_the_probabilities() -> None:
    spec = get_spec("SoftmaxWithLoss")
    assert spec.is_loss and spec.auto_top_blobs and spec.bottoms == (2, 2)
    assert shapes('name: "loss" type: "SoftmaxWithLoss" top: "loss"', SCORE, LABEL) == [()]
    assert shapes('name: "loss" type: "SoftmaxWithLoss" top: "loss" top: "prob"',
                  SCORE, LABEL) == [(), SCORE]
    # a label without the channel axis holds the same N*H*W values
    assert shapes('name: "loss" type: "SoftmaxWithLoss"', SCORE, (2, 4, 4)) == [()]
    layer = make_layer('type: "SoftmaxWithLoss" loss_param { ignore_label: 255 '
                       'normalization: NONE }')
    assert spec.key_params(layer) == "ignore 255 NONE"


def test_softmax_with_loss_names_the_expected_label_shape() -> None:
    with pytest.raises(ShapeError) as info:
        shapes('name: "loss" type: "SoftmaxWithLoss"', SCORE, (2, 1, 8, 8))
    message = str(info.value)
    assert "layer 'loss' (SoftmaxWithLoss)" in message
    assert "label 2\u00d71\u00d78\u00d78 has 128 values" in message
    assert "2\u00d71\u00d74\u00d74" in message


def test_sigmoid_cross_entropy_and_euclidean_compare_counts() -> None:
    assert shapes('name: "l" type: "SigmoidCrossEntropyLoss"', (2, 3), (2, 3)) == [()]
    with pytest.raises(ShapeError, match="same number of values"):
        shapes('name: "l" type: "SigmoidCrossEntropyLoss"', (2, 3), (2, 4))
    assert shapes('name: "l" type: "EuclideanLoss"', (2, 3, 2), (2, 6)) == [()]
    with pytest.raises(ShapeError, match="same first"):
        shapes('name: "l" type: "EuclideanLoss"', (2, 3), (3, 2))


def test_accuracy_scalar_and_per_class_output() -> None:
    spec = get_spec("Accuracy")
    assert not spec.is_loss and spec.category == "Loss"
    assert shapes('name: "acc" type: "Accuracy" top: "acc"', SCORE, LABEL) == [()]
    assert shapes('name: "acc" type: "Accuracy" top: "acc" top: "per_class"',
                  SCORE, LABEL) == [(), (3,)]
    with pytest.raises(ShapeError, match="top_k 5 exceeds the number of classes 3"):
        shapes('name: "acc" type: "Accuracy" accuracy_param { top_k: 5 }', SCORE, LABEL)


def test_dice_metric_and_loss() -> None:
    assert shapes('name: "dice" type: "Dice" top: "dice"', SCORE, LABEL) == [()]
    assert shapes('name: "dice" type: "Dice" top: "dice" top: "per_class"',
                  SCORE, LABEL) == [(), (3,)]
    assert get_spec("Dice").tops == (1, 2) and not get_spec("Dice").is_loss
    loss = get_spec("DiceLoss")
    assert loss.is_loss and loss.tops == (1, 1)
    assert shapes('name: "dl" type: "DiceLoss"', (1, 2, 3, 3, 3), (1, 1, 3, 3, 3)) == [()]
    with pytest.raises(ShapeError, match="same batch size"):
        shapes('name: "dice" type: "Dice"', SCORE, (1, 1, 4, 4))
    layer = make_layer('type: "Dice" dice_param { ignore_label: 255 include_background: true }')
    assert get_spec("Dice").key_params(layer) == "with bg ignore 255"


def test_caffe_losses_the_engine_does_not_run_still_shape() -> None:
    for type_name in ("HingeLoss", "MultinomialLogisticLoss", "InfogainLoss", "ContrastiveLoss"):
        assert not get_spec(type_name).engine_supported
        assert get_spec(type_name).category == "Loss"
    assert shapes('name: "h" type: "HingeLoss"', (4, 10), (4,)) == [()]
    with pytest.raises(ShapeError, match="one class per sample"):
        shapes('name: "h" type: "HingeLoss"', (4, 10), (4, 2))
    assert shapes('name: "m" type: "MultinomialLogisticLoss"', (4, 10, 1, 1), (4, 1, 1, 1)) == [()]
    assert shapes('name: "i" type: "InfogainLoss" top: "l" top: "p"', SCORE, LABEL, (3, 3)) == [
        (), SCORE]
    assert shapes('name: "c" type: "ContrastiveLoss"', (4, 8, 1, 1), (4, 8, 1, 1), (4,)) == [()]
    with pytest.raises(ShapeError, match="one value per pair"):
        shapes('name: "c" type: "ContrastiveLoss"', (4, 8), (4, 8), (3,))
