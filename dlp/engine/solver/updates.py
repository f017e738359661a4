"""Caffe's update rules (SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam) on tensors.

The conventions are Caffe's, not ``torch.optim``'s, so that a Caffe solver file
trains the same way here:

* the gradient is first divided by ``iter_size`` (Caffe's ``Normalize``), then the
  weight decay is *added to the gradient* (L2: ``decay * w``; L1: ``decay * sign(w)``)
  with ``local_decay = weight_decay * decay_mult``;
* momentum is applied to the *lr-scaled* gradient: ``v = momentum * v + local_rate * g``,
  ``w -= v`` with ``local_rate = rate * lr_mult``;
* Adam folds its bias correction into the rate;
* ``clip_gradients`` scales every diff when their global L2 norm exceeds it, before
  the per-parameter steps.

History tensors are kept in Caffe's order: one per parameter, and for AdaDelta and
Adam a second set after the first (``history_[i + n]`` in Caffe), which is exactly
the order of ``SolverState.history``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from dlp.errors import InputError


@dataclass
class UpdateParam:
    """One learnable parameter as the solver sees it (shared params appear once)."""

    tensor: torch.Tensor
    lr_mult: float = 1.0
    decay_mult: float = 1.0
    name: str = ""


@dataclass(frozen=True)
class Hyper:
    """The solver fields the update rules read (defaults are Caffe's)."""

    momentum: float = 0.0
    momentum2: float = 0.999
    delta: float = 1e-8
    rms_decay: float = 0.99

    @classmethod
    def from_solver(cls, solver_param: Any) -> Hyper:
        return cls(
            momentum=float(solver_param.momentum),
            momentum2=float(solver_param.momentum2),
            delta=float(solver_param.delta),
            rms_decay=float(solver_param.rms_decay),
        )


class UpdateRule:
    """Turns a (regularized) gradient into the step Caffe subtracts from the weights."""

    name: ClassVar[str]
    #: history tensors per parameter (Caffe's ``history_`` holds n or 2n blobs)
    history_sets: ClassVar[int] = 1

    def __init__(self, params: Sequence[UpdateParam], hyper: Hyper) -> None:
        self.hyper = hyper
        self.history: list[torch.Tensor] = [
            torch.zeros_like(p.tensor, memory_format=torch.preserve_format)
            for _ in range(self.history_sets)
            for p in params
        ]
        self._count = len(params)
        self.check()

    def check(self) -> None:
        """Reject hyper-parameters Caffe rejects for this rule."""

    def second(self, index: int) -> torch.Tensor:
        return self.history[index + self._count]

    def step(self, index: int, diff: torch.Tensor, local_rate: float, iteration: int) -> None:
        """Replace ``diff`` in place by the value to subtract from parameter ``index``."""
        raise NotImplementedError

    def step_group(
        self, indices: Sequence[int], diffs: list[torch.Tensor], local_rate: float,
        iteration: int,
    ) -> None:
        """:meth:`step` for parameters sharing one ``local_rate``."""
        for index, diff in zip(indices, diffs, strict=True):
            self.step(index, diff, local_rate, iteration)


class SGD(UpdateRule):
    name = "SGD"

    def step(self, index: int, diff: torch.Tensor, local_rate: float, iteration: int) -> None:
        history = self.history[index]
        history.mul_(self.hyper.momentum).add_(diff, alpha=local_rate)
        diff.copy_(history)

    def step_group(
        self, indices: Sequence[int], diffs: list[torch.Tensor], local_rate: float,
        iteration: int,
    ) -> None:
        # One fused kernel per operation for all parameters: the per-tensor loop cost
        # ~3 % of a small net's iteration in dispatch alone.
        history = [self.history[index] for index in indices]
        torch._foreach_mul_(history, self.hyper.momentum)
        torch._foreach_add_(history, diffs, alpha=local_rate)
        torch._foreach_copy_(diffs, history)


class Nesterov(UpdateRule):
    name = "Nesterov"

    def step(self, index: int, diff: torch.Tensor, local_rate: float, iteration: int) -> None:
        momentum = self.hyper.momentum
        history = self.history[index]
        previous = history.clone()
        history.mul_(momentum).add_(diff, alpha=local_rate)
        diff.copy_(history).mul_(1.0 + momentum).sub_(previous, alpha=momentum)


class AdaGrad(UpdateRule):
    name = "AdaGrad"

    def check(self) -> None:
        if self.hyper.momentum != 0:
            raise InputError("solver: field momentum: AdaGrad cannot be used with momentum")

    def step(self, index: int, diff: torch.Tensor, local_rate: float, iteration: int) -> None:
        history = self.history[index]
        history.addcmul_(diff, diff)
        diff.div_(history.sqrt().add_(self.hyper.delta)).mul_(local_rate)


class RMSProp(UpdateRule):
    name = "RMSProp"

    def check(self) -> None:
        if self.hyper.momentum != 0:
            raise InputError(
                "solver: field momentum: RMSProp uses rms_decay, momentum must be 0"
            )
        if not 0 <= self.hyper.rms_decay < 1:
            raise InputError("solver: field rms_decay must be in [0, 1)")

    def step(self, index: int, diff: torch.Tensor, local_rate: float, iteration: int) -> None:
        decay = self.hyper.rms_decay
        history = self.history[index]
        history.mul_(decay).addcmul_(diff, diff, value=1.0 - decay)
        diff.div_(history.sqrt().add_(self.hyper.delta)).mul_(local_rate)


class AdaDelta(UpdateRule):
    name = "AdaDelta"
    history_sets = 2

    def step(self, index: int, diff: torch.Tensor, local_rate: float, iteration: int) -> None:
        momentum, delta = self.hyper.momentum, self.hyper.delta
        grad_sq, update_sq = self.history[index], self.second(index)
        grad_sq.mul_(momentum).addcmul_(diff, diff, value=1.0 - momentum)
        scale = (update_sq + delta).div_(grad_sq + delta).sqrt_()
        diff.mul_(scale)
        update_sq.mul_(momentum).addcmul_(diff, diff, value=1.0 - momentum)
        diff.mul_(local_rate)


class Adam(UpdateRule):
    name = "Adam"
    history_sets = 2

    def step(self, index: int, diff: torch.Tensor, local_rate: float, iteration: int) -> None:
        beta1, beta2, eps = self.hyper.momentum, self.hyper.momentum2, self.hyper.delta
        m, v = self.history[index], self.second(index)
        t = iteration + 1
        correction = math.sqrt(1.0 - beta2**t) / (1.0 - beta1**t)
        m.mul_(beta1).add_(diff, alpha=1.0 - beta1)
        v.mul_(beta2).addcmul_(diff, diff, value=1.0 - beta2)
        diff.copy_(m).div_(v.sqrt().add_(eps)).mul_(local_rate * correction)


UPDATE_RULES: dict[str, type[UpdateRule]] = {
    rule.name: rule for rule in (SGD, Nesterov, AdaGrad, RMSProp, AdaDelta, Adam)
}

#: the deprecated ``solver_type`` enum (SGD=0 … ADAM=5) mapped to ``type`` names
LEGACY_SOLVER_TYPES: tuple[str, ...] = ("SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam")


def solver_type_name(solver_param: Any) -> str:
    """The update rule's name, honouring the deprecated ``solver_type`` enum as Caffe does."""
    if solver_param.HasField("solver_type") and not solver_param.HasField("type"):
        return LEGACY_SOLVER_TYPES[int(solver_param.solver_type)]
    return solver_param.type


def make_rule(name: str, params: Sequence[UpdateParam], hyper: Hyper) -> UpdateRule:
    """Build the update rule called ``name`` (Caffe's ``type`` field)."""
    try:
        cls = UPDATE_RULES[name]
    except KeyError:
        known = ", ".join(UPDATE_RULES)
        raise InputError(
            f"solver: field type: unknown solver {name!r} (expected {known})"
        ) from None
    return cls(params, hyper)


def clip_gradients(params: Sequence[UpdateParam], threshold: float) -> float | None:
    """Scale all diffs so their global L2 norm is at most ``threshold``.

    Returns the norm when scaling happened (for the log line), else ``None``.
    A negative threshold (Caffe's default -1) disables clipping.
    """
    if threshold < 0:
        return None
    grads = [p.tensor.grad for p in params if p.tensor.grad is not None]
    if not grads:
        return None
    norm = float(torch.stack([g.double().pow(2).sum() for g in grads]).sum().sqrt())
    if norm <= threshold:
        return None
    scale = threshold / norm
    for g in grads:
        g.mul_(scale)
    return norm


def apply_update(
    params: Sequence[UpdateParam],
    rule: UpdateRule,
    rate: float,
    iteration: int,
    *,
    weight_decay: float = 0.0,
    regularization: str = "L2",
    iter_size: int = 1,
) -> None:
    """Caffe's ``Normalize`` + ``Regularize`` + ``ComputeUpdateValue`` + ``Update``.

    ``param.grad`` holds the gradient summed over ``iter_size`` forward/backward
    passes (clip it first with :func:`clip_gradients`); the weights are updated in
    place and the gradients are left holding the applied step, as Caffe's diffs do.
    """
    if regularization not in ("L1", "L2"):
        raise InputError(
            f"solver: field regularization_type: unknown {regularization!r} (expected L1 or L2)"
        )
    groups: dict[tuple[float, float], list[int]] = {}
    for index, param in enumerate(params):
        if param.lr_mult != 0:  # Caffe computes no diff for frozen params; the step is zero
            groups.setdefault((param.lr_mult, param.decay_mult), []).append(index)
    with torch.no_grad():
        for (lr_mult, decay_mult), indices in groups.items():
            tensors = [params[index].tensor for index in indices]
            for tensor in tensors:
                if tensor.grad is None:
                    tensor.grad = torch.zeros_like(tensor)
            diffs = [tensor.grad for tensor in tensors]
            if iter_size != 1:
                torch._foreach_mul_(diffs, 1.0 / iter_size)
            local_decay = weight_decay * decay_mult
            if local_decay:
                decay_terms = tensors if regularization == "L2" else torch._foreach_sign(tensors)
                torch._foreach_add_(diffs, decay_terms, alpha=local_decay)
            rule.step_group(indices, diffs, rate * lr_mult, iteration)
            torch._foreach_sub_(tensors, diffs)
