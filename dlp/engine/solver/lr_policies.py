"""Caffe's learning-rate policies as a table (``lr_policy`` name -> function).

Each policy takes the solver parameters, the iteration and Caffe's ``current_step``
(the step counter stored in ``.solverstate``) and returns ``(rate, current_step)``.
The formulas are those of Caffe's ``SGDSolver::GetLearningRate``.  This module stays
torch-free: the Train tab previews the schedule with it.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from dlp.errors import InputError

#: (solver_param, iteration, current_step) -> (learning rate, new current_step)
LrPolicy = Callable[[Any, int, int], "tuple[float, int]"]


def _fixed(p: Any, it: int, step: int) -> tuple[float, int]:
    return p.base_lr, step


def _step(p: Any, it: int, step: int) -> tuple[float, int]:
    current = it // p.stepsize
    return p.base_lr * p.gamma**current, current


def _exp(p: Any, it: int, step: int) -> tuple[float, int]:
    return p.base_lr * p.gamma**it, step


def _inv(p: Any, it: int, step: int) -> tuple[float, int]:
    return p.base_lr * (1.0 + p.gamma * it) ** (-p.power), step


def _multistep(p: Any, it: int, step: int) -> tuple[float, int]:
    # Caffe advances at most one step per call; the solver calls it every iteration,
    # so the count only lags when stepvalues are equal (which Caffe also tolerates).
    if step < len(p.stepvalue) and it >= p.stepvalue[step]:
        step += 1
    return p.base_lr * p.gamma**step, step


def _poly(p: Any, it: int, step: int) -> tuple[float, int]:
    return p.base_lr * (1.0 - it / p.max_iter) ** p.power, step


def _sigmoid(p: Any, it: int, step: int) -> tuple[float, int]:
    return p.base_lr * (1.0 / (1.0 + math.exp(-p.gamma * (it - p.stepsize)))), step


LR_POLICIES: dict[str, LrPolicy] = {
    "fixed": _fixed,
    "step": _step,
    "exp": _exp,
    "inv": _inv,
    "multistep": _multistep,
    "poly": _poly,
    "sigmoid": _sigmoid,
}

#: fields each policy needs beyond base_lr (checked before training starts)
_REQUIRED: dict[str, tuple[str, ...]] = {
    "step": ("stepsize", "gamma"),
    "exp": ("gamma",),
    "inv": ("gamma", "power"),
    "multistep": ("stepvalue", "gamma"),
    "poly": ("power", "max_iter"),
    "sigmoid": ("gamma", "stepsize"),
}


def get_policy(name: str, source: str = "solver") -> LrPolicy:
    """The policy function for ``lr_policy: name``; unknown names list the known ones."""
    try:
        return LR_POLICIES[name]
    except KeyError:
        known = ", ".join(sorted(LR_POLICIES))
        raise InputError(
            f"{source}: field lr_policy: unknown policy {name!r} (expected one of {known})"
        ) from None


def check_policy_fields(solver_param: Any, source: str = "solver") -> None:
    """Raise :class:`InputError` when ``lr_policy`` lacks a field it needs."""
    name = solver_param.lr_policy
    get_policy(name, source)
    for field in _REQUIRED.get(name, ()):
        value = getattr(solver_param, field)
        missing = len(value) == 0 if field == "stepvalue" else not solver_param.HasField(field)
        if missing:
            raise InputError(f"{source}: lr_policy {name!r} needs field {field}")
    if name == "step" and solver_param.stepsize <= 0:
        raise InputError(f"{source}: field stepsize must be > 0 for lr_policy 'step'")
    if name == "poly" and solver_param.max_iter <= 0:
        raise InputError(f"{source}: field max_iter must be > 0 for lr_policy 'poly'")


def learning_rate(solver_param: Any, iteration: int, current_step: int = 0) -> tuple[float, int]:
    """Caffe's learning rate at ``iteration``; returns ``(rate, current_step)``."""
    return get_policy(solver_param.lr_policy)(solver_param, iteration, current_step)
