"""Loss and metric layers: losses output a scalar ``()`` as Caffe's 0-axis loss blob."""

from __future__ import annotations

from typing import Any

from dlp.net.specs.base import LayerSpec, Shape, count, format_shape, register_spec


class _LossSpec(LayerSpec):
    """Caffe's LossLayer: prediction and label/target in, one scalar loss out."""

    category = "Loss"
    param_field = "loss_param"
    bottoms = (2, 2)
    is_loss = True
    auto_top_blobs = True

    def check_bottoms(self, layer: Any, prediction: Shape, label: Shape) -> None:
        if not prediction or not label or prediction[0] != label[0]:
            raise self.error(
                layer, f"prediction {format_shape(prediction)} and label {format_shape(label)} "
                "must have the same first (batch) dimension")

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        self.check_bottoms(layer, tuple(bottom_shapes[0]), tuple(bottom_shapes[1]))
        return [()]

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        return 3 * count(bottom_shapes[0])

    def key_params(self, layer: Any) -> str:
        return _ignore_text(layer.loss_param)


def _ignore_text(param: Any) -> str:
    return f"ignore {param.ignore_label}" if param.HasField("ignore_label") else ""


def _check_labels_per_position(spec: LayerSpec, layer: Any, prediction: Shape, label: Shape,
                               axis: int) -> None:
    """One label per prediction position: ``count(label) == count(prediction) / C``."""
    expected = count(prediction, 0, axis) * count(prediction, axis + 1)
    if count(label) != expected:
        like = (*prediction[:axis], 1, *prediction[axis + 1:])
        channels = prediction[axis]
        raise spec.error(
            layer, f"label {format_shape(label)} has {count(label)} values; prediction "
            f"{format_shape(prediction)} has {expected} positions of {channels} classes "
            f"(expected a label like {format_shape(like)})")


@register_spec
class SoftmaxWithLossSpec(_LossSpec):
    """Caffe's SoftmaxWithLoss; an optional second top is the softmax output."""

    type = "SoftmaxWithLoss"
    summary = "Softmax over classes followed by the multinomial logistic (cross-entropy) loss."
    extra_param_fields = ("softmax_param",)
    tops = (1, 2)

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        prediction, label = tuple(bottom_shapes[0]), tuple(bottom_shapes[1])
        axis = self.canonical_axis(layer, layer.softmax_param.axis, len(prediction),
                                   "softmax_param.axis")
        _check_labels_per_position(self, layer, prediction, label, axis)
        return [(), prediction] if len(layer.top) >= 2 else [()]

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        return 5 * count(bottom_shapes[0])

    def key_params(self, layer: Any) -> str:
        p = layer.loss_param
        parts = [_ignore_text(p)]
        if p.HasField("normalization") or p.HasField("normalize"):
            names = {0: "FULL", 1: "VALID", 2: "BATCH_SIZE", 3: "NONE"}
            mode = p.normalization if p.HasField("normalization") else (1 if p.normalize else 2)
            parts.append(names.get(mode, str(mode)))
        return " ".join(part for part in parts if part)


@register_spec
class SigmoidCrossEntropyLossSpec(_LossSpec):
    type = "SigmoidCrossEntropyLoss"
    summary = "Sigmoid of each score followed by binary cross-entropy against 0/1 targets."

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        prediction, target = tuple(bottom_shapes[0]), tuple(bottom_shapes[1])
        self.check_bottoms(layer, prediction, target)
        if count(prediction) != count(target):
            raise self.error(layer, f"prediction {format_shape(prediction)} and target "
                             f"{format_shape(target)} must have the same number of values")
        return [()]


@register_spec
class EuclideanLossSpec(_LossSpec):
    type = "EuclideanLoss"
    summary = "Half the mean squared distance between prediction and target (regression)."

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        prediction, target = tuple(bottom_shapes[0]), tuple(bottom_shapes[1])
        self.check_bottoms(layer, prediction, target)
        if count(prediction, 1) != count(target, 1):
            raise self.error(layer, f"prediction {format_shape(prediction)} and target "
                             f"{format_shape(target)} must have the same size per sample")
        return [()]


@register_spec
class AccuracySpec(LayerSpec):
    """Caffe's Accuracy; the optional second top holds per-class accuracy ``(C,)``."""

    type = "Accuracy"
    category = "Loss"
    summary = "Fraction of positions whose label is among the top-k predicted classes."
    param_field = "accuracy_param"
    bottoms = (2, 2)
    tops = (1, 2)

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        p = layer.accuracy_param
        prediction, label = tuple(bottom_shapes[0]), tuple(bottom_shapes[1])
        axis = self.canonical_axis(layer, p.axis, len(prediction), "accuracy_param.axis")
        _check_labels_per_position(self, layer, prediction, label, axis)
        if p.top_k > prediction[axis]:
            raise self.error(layer, f"top_k {p.top_k} exceeds the number of classes "
                             f"{prediction[axis]}")
        return [(), (prediction[axis],)] if len(layer.top) >= 2 else [()]

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        return count(bottom_shapes[0])

    def key_params(self, layer: Any) -> str:
        p = layer.accuracy_param
        parts = [f"top {p.top_k}" if p.top_k != 1 else "", _ignore_text(p)]
        return " ".join(part for part in parts if part)


class _DiceBase(LayerSpec):
    category = "Loss"
    dlp_only = True
    param_field = "dice_param"
    bottoms = (2, 2)

    def check(self, layer: Any, bottom_shapes: list[Shape]) -> Shape:
        prediction, label = tuple(bottom_shapes[0]), tuple(bottom_shapes[1])
        if len(prediction) < 2:
            raise self.error(layer, f"scores {format_shape(prediction)} need a class axis "
                             "(N, C, ...)")
        if label[:1] != prediction[:1]:
            raise self.error(layer, f"scores {format_shape(prediction)} and label "
                             f"{format_shape(label)} must have the same batch size")
        _check_labels_per_position(self, layer, prediction, label, 1)
        return prediction

    def flops(self, layer: Any, bottom_shapes: list[Shape], top_shapes: list[Shape]) -> int:
        return 3 * count(bottom_shapes[0])

    def key_params(self, layer: Any) -> str:
        p = layer.dice_param
        parts = ["with bg" if p.include_background else "", _ignore_text(p)]
        return " ".join(part for part in parts if part)


@register_spec
class DiceSpec(_DiceBase):
    """DLP's Dice metric: top 0 the mean Dice over foreground classes, top 1 per class ``(C,)``."""

    type = "Dice"
    summary = "Dice overlap of the argmax prediction with the label, per class and averaged."
    tops = (1, 2)

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        prediction = self.check(layer, bottom_shapes)
        return [(), (prediction[1],)] if len(layer.top) >= 2 else [()]


@register_spec
class DiceLossSpec(_DiceBase):
    """DLP's soft Dice loss on softmax probabilities (for class-imbalanced segmentation)."""

    type = "DiceLoss"
    summary = "1 - soft Dice of the softmax probabilities: a loss robust to class imbalance."
    is_loss = True
    auto_top_blobs = True

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        self.check(layer, bottom_shapes)
        return [()]


# ---------------------------------------------------------------- known to the editor only
# Standard Caffe losses that DLP's engine does not run: declared so imported nets
# validate and shape, with a warning that training them needs Caffe itself.

@register_spec
class HingeLossSpec(_LossSpec):
    type = "HingeLoss"
    summary = "One-vs-all hinge (SVM) loss on class scores; not run by DLP's engine."
    param_field = "hinge_loss_param"
    extra_param_fields = ("loss_param",)
    engine_supported = False

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        scores, label = tuple(bottom_shapes[0]), tuple(bottom_shapes[1])
        self.check_bottoms(layer, scores, label)
        if count(label) != scores[0]:
            raise self.error(layer, f"label {format_shape(label)} must hold one class per "
                             f"sample ({scores[0]})")
        return [()]


@register_spec
class MultinomialLogisticLossSpec(HingeLossSpec):
    type = "MultinomialLogisticLoss"
    summary = "Negative log likelihood of given class probabilities; not run by DLP's engine."
    param_field = "loss_param"
    extra_param_fields = ()


@register_spec
class InfogainLossSpec(_LossSpec):
    """Caffe's InfogainLoss: an optional third bottom is the (C, C) infogain matrix."""

    type = "InfogainLoss"
    summary = "Softmax loss weighted by an infogain matrix; not run by DLP's engine."
    param_field = "infogain_loss_param"
    extra_param_fields = ("loss_param",)
    bottoms = (2, 3)
    tops = (1, 2)
    engine_supported = False

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        prediction, label = tuple(bottom_shapes[0]), tuple(bottom_shapes[1])
        axis = self.canonical_axis(layer, layer.infogain_loss_param.axis, len(prediction),
                                   "infogain_loss_param.axis")
        _check_labels_per_position(self, layer, prediction, label, axis)
        return [(), prediction] if len(layer.top) >= 2 else [()]


@register_spec
class ContrastiveLossSpec(_LossSpec):
    """Caffe's ContrastiveLoss: two feature blobs ``(N, C, 1, 1)`` and a similarity ``(N,)``."""

    type = "ContrastiveLoss"
    summary = "Siamese-net loss pulling similar pairs together; not run by DLP's engine."
    param_field = "contrastive_loss_param"
    extra_param_fields = ("loss_param",)
    bottoms = (3, 3)
    engine_supported = False

    def output_shapes(self, layer: Any, bottom_shapes: list[Shape]) -> list[Shape]:
        a, b, similar = (tuple(s) for s in bottom_shapes)
        if not a:
            raise self.error(layer, "the feature blobs need a batch axis (N, C, ...)")
        if a != b:
            raise self.error(layer, f"the two feature blobs differ: {format_shape(a)} and "
                             f"{format_shape(b)}")
        if count(similar) != a[0]:
            raise self.error(layer, f"the similarity blob {format_shape(similar)} must hold one "
                             f"value per pair ({a[0]})")
        return [()]
