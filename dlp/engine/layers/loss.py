"""Loss and metric layers: SoftmaxWithLoss, SigmoidCrossEntropyLoss, EuclideanLoss,
Accuracy, and DLP's Dice (metric) and DiceLoss (soft Dice, differentiable).

Losses return a 0-d tensor; the net multiplies it by the layer's ``loss_weight``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F  # noqa: N812 (PyTorch convention)

from dlp.engine.layers.base import BuildContext, Layer, Shape, canonical_axis, count
from dlp.engine.registry import register_layer

# LossParameter.NormalizationMode
FULL, VALID, BATCH_SIZE, NONE = 0, 1, 2, 3
_LOG_FLT_MIN = -87.33654475  # log(FLT_MIN): Caffe clamps probabilities at FLT_MIN


def normalization_mode(loss_param: Any, default: int = VALID) -> int:
    """Caffe's rule: explicit ``normalization`` wins, then legacy ``normalize``."""
    if loss_param.HasField("normalization"):
        return loss_param.normalization
    if loss_param.HasField("normalize"):
        return VALID if loss_param.normalize else BATCH_SIZE
    return default


def normalizer(mode: int, outer: int, inner: int, valid: torch.Tensor | int) -> Any:
    """Caffe's ``get_normalizer``: FULL = outer*inner, VALID = non-ignored count,
    BATCH_SIZE = outer, NONE = 1; never below 1."""
    if mode == FULL:
        return max(1, outer * inner)
    if mode == VALID:
        return valid.clamp_min(1) if isinstance(valid, torch.Tensor) else max(1, valid)
    if mode == BATCH_SIZE:
        return max(1, outer)
    return 1


class _LabelledLayer(Layer):
    """Predictions ``(..., C at axis, ...)`` with labels holding one class index per position."""

    axis_source = "softmax_param"
    ignore_source = "loss_param"

    def _setup_labels(self, param: Any, bottom_shapes: list[Shape], axis: int) -> None:
        shape, label = bottom_shapes[0], bottom_shapes[1]
        self.axis = canonical_axis(param, axis, len(shape))
        self.classes = shape[self.axis]
        self.outer = count(shape, 0, self.axis)
        self.inner = count(shape, self.axis + 1)
        if count(label) != self.outer * self.inner:
            raise self.error(
                f"label blob {param.bottom[1]!r} shape {label} must hold one label per "
                f"prediction: {self.outer * self.inner} values for predictions {shape} with "
                f"classes on axis {self.axis}"
            )
        self.label_shape = (*shape[:self.axis], 1, *shape[self.axis + 1:])

    def _labels(self, label: torch.Tensor, ignore: int | None
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Labels as int64 in the prediction's layout, and the valid mask (None = all)."""
        labels = label.detach().reshape(self.label_shape).long()
        valid = None if ignore is None else labels != ignore
        picked = labels if valid is None else labels.masked_fill(~valid, 0)
        if picked.device.type == "cpu" and picked.numel():
            low, high = int(picked.min()), int(picked.max())
            if low < 0 or high >= self.classes:
                raise self.error(f"label values must be in 0..{self.classes - 1}"
                                 f"{'' if ignore is None else f' or {ignore} (ignored)'}, "
                                 f"found {low if low < 0 else high}")
        return picked, valid


@register_layer("SoftmaxWithLoss")
class SoftmaxWithLoss(_LabelledLayer):
    """Multinomial logistic loss of the softmax, Caffe's normalisation modes and
    ``ignore_label``; an optional second top is the softmax itself."""

    is_loss: ClassVar[bool] = True

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        self._setup_labels(param, bottom_shapes, param.softmax_param.axis)
        lp = param.loss_param
        self.ignore = lp.ignore_label if lp.HasField("ignore_label") else None
        self.mode = normalization_mode(lp)
        self.with_prob = len(param.top) > 1

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, ...]:
        log_prob = torch.log_softmax(x, dim=self.axis)
        picked, valid = self._labels(label, self.ignore)
        nll = -log_prob.gather(self.axis, picked).clamp_min(_LOG_FLT_MIN)
        if valid is None:
            total, n_valid = nll.sum(), self.outer * self.inner
        else:
            total, n_valid = (nll * valid).sum(), valid.sum()
        loss = total / normalizer(self.mode, self.outer, self.inner, n_valid)
        if self.with_prob:
            return loss, log_prob.exp()
        return (loss,)


@register_layer("SigmoidCrossEntropyLoss")
class SigmoidCrossEntropyLoss(Layer):
    """Cross-entropy of ``sigmoid(x)`` against targets in [0, 1]; normalisation
    BATCH_SIZE unless set (Caffe master's default for this layer)."""

    is_loss: ClassVar[bool] = True

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        shape, target = bottom_shapes[0], bottom_shapes[1]
        if count(shape) != count(target):
            raise self.error(f"target {target} must have as many values as the scores {shape}")
        lp = param.loss_param
        self.ignore = lp.ignore_label if lp.HasField("ignore_label") else None
        self.mode = normalization_mode(lp, default=BATCH_SIZE)
        self.outer = shape[0] if shape else 1
        self.inner = count(shape) // max(1, self.outer)

    def forward(self, x: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor]:
        target = target.detach().reshape(x.shape).to(x.dtype)
        losses = F.binary_cross_entropy_with_logits(x, target, reduction="none")
        if self.ignore is None:
            total, n_valid = losses.sum(), self.outer * self.inner
        else:
            valid = target != self.ignore
            total, n_valid = (losses * valid).sum(), valid.sum()
        return (total / normalizer(self.mode, self.outer, self.inner, n_valid),)


@register_layer("EuclideanLoss")
class EuclideanLoss(Layer):
    """``sum (a - b)^2 / (2N)`` with N the first axis."""

    is_loss: ClassVar[bool] = True

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        a, b = bottom_shapes[0], bottom_shapes[1]
        if count(a) != count(b) or (a and b and a[0] != b[0]):
            raise self.error(f"bottoms must have the same number of values, got {a} and {b}")
        self.num = a[0] if a else 1

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> tuple[torch.Tensor]:
        diff = a - b.reshape(a.shape)
        return ((diff * diff).sum() / (2.0 * self.num),)


@register_layer("Accuracy")
class Accuracy(_LabelledLayer):
    """Fraction of positions whose label is among the ``top_k`` scores (ties count as
    Caffe counts them: correct when at most ``top_k`` scores are >= the label's); an
    optional second top holds the accuracy per class ``(C,)``."""

    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        p = param.accuracy_param
        self._setup_labels(param, bottom_shapes, p.axis)
        self.top_k = p.top_k
        if not 1 <= self.top_k <= self.classes:
            raise self.error(f"top_k {self.top_k} must be in 1..{self.classes}")
        self.ignore = p.ignore_label if p.HasField("ignore_label") else None
        self.per_class = len(param.top) > 1

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = x.detach()
        picked, valid = self._labels(label, self.ignore)
        true_score = x.gather(self.axis, picked)
        at_least = (x >= true_score).sum(dim=self.axis, keepdim=True)
        correct = (at_least <= self.top_k).to(x.dtype)
        weight = torch.ones_like(correct) if valid is None else valid.to(x.dtype)
        hits = (correct * weight).sum()
        total = weight.sum()
        accuracy = torch.where(total > 0, hits / total.clamp_min(1), torch.zeros_like(hits))
        if not self.per_class:
            return (accuracy,)
        flat_labels = picked.reshape(-1)
        per_hits = torch.zeros(self.classes, dtype=x.dtype, device=x.device).index_add_(
            0, flat_labels, (correct * weight).reshape(-1))
        per_count = torch.zeros(self.classes, dtype=x.dtype, device=x.device).index_add_(
            0, flat_labels, weight.reshape(-1))
        per_class = torch.where(per_count > 0, per_hits / per_count.clamp_min(1),
                                torch.zeros_like(per_hits))
        return accuracy, per_class


def _one_hot(labels: torch.Tensor, classes: int, axis: int, dtype: torch.dtype) -> torch.Tensor:
    """``labels`` with a size-1 class axis at ``axis`` → one-hot along that axis."""
    hot = torch.zeros((*labels.shape[:axis], classes, *labels.shape[axis + 1:]),
                      dtype=dtype, device=labels.device)
    return hot.scatter_(axis, labels, 1.0)


class _DiceBase(_LabelledLayer):
    def __init__(self, param: Any, bottom_shapes: list[Shape], ctx: BuildContext) -> None:
        super().__init__(param, bottom_shapes, ctx)
        self._setup_labels(param, bottom_shapes, 1)
        p = param.dice_param
        self.ignore = p.ignore_label if p.HasField("ignore_label") else None
        self.smooth = float(p.smooth)
        self.first_class = 0 if p.include_background or self.classes == 1 else 1
        self.n_tops = len(param.top)


@register_layer("Dice")
class Dice(_DiceBase):
    """Dice of the argmax prediction, ``(2|P∩L| + s) / (|P| + |L| + s)`` per image and
    class, averaged over images.  Top 0: mean over the foreground classes (background
    too with ``include_background``); optional top 1: every class's Dice ``(C,)``.
    A class absent from both prediction and label scores 1."""

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor, ...]:
        x = x.detach()
        picked, valid = self._labels(label, self.ignore)
        prediction = x.argmax(dim=1, keepdim=True)
        pred_hot = _one_hot(prediction, self.classes, 1, x.dtype)
        label_hot = _one_hot(picked, self.classes, 1, x.dtype)
        if valid is not None:
            mask = valid.to(x.dtype)
            pred_hot, label_hot = pred_hot * mask, label_hot * mask
        dims = tuple(range(2, x.dim()))
        inter = (pred_hot * label_hot).sum(dim=dims)
        sizes = pred_hot.sum(dim=dims) + label_hot.sum(dim=dims)
        denominator = sizes + self.smooth
        dice = torch.where(denominator > 0, (2 * inter + self.smooth) /
                           denominator.clamp_min(1e-12), torch.ones_like(inter))
        per_class = dice.mean(dim=0)
        mean = per_class[self.first_class:].mean()
        return (mean, per_class) if self.n_tops > 1 else (mean,)


@register_layer("DiceLoss")
class DiceLoss(_DiceBase):
    """``1 - mean_c (2 sum p*l + s) / (sum p + sum l + s)`` on softmax probabilities, sums
    over the whole batch per class (foreground classes unless ``include_background``)."""

    is_loss: ClassVar[bool] = True

    def forward(self, x: torch.Tensor, label: torch.Tensor) -> tuple[torch.Tensor]:
        prob = torch.softmax(x, dim=1)
        picked, valid = self._labels(label, self.ignore)
        label_hot = _one_hot(picked, self.classes, 1, x.dtype)
        if valid is not None:
            mask = valid.to(x.dtype)
            prob, label_hot = prob * mask, label_hot * mask
        dims = (0, *range(2, x.dim()))
        inter = (prob * label_hot).sum(dim=dims)
        sizes = prob.sum(dim=dims) + label_hot.sum(dim=dims)
        dice = (2 * inter + self.smooth) / (sizes + self.smooth).clamp_min(1e-12)
        return (1.0 - dice[self.first_class:].mean(),)
