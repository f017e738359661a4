"""Caffe's weight fillers (``FillerParameter``), drawing from a seeded generator.

Fan-in/fan-out follow Caffe exactly: ``fan_in = count / shape[0]`` and
``fan_out = count / shape[1]`` — for a Deconvolution weight ``(in, out/g, k...)``
that is the opposite of PyTorch's convention, which is what Caffe does.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch

from dlp.errors import InputError

# FillerParameter.VarianceNorm enum values (caffe.proto).
FAN_IN, FAN_OUT, AVERAGE = 0, 1, 2

FillFunction = Callable[[torch.Tensor, Any, torch.Generator], None]
_FILLERS: dict[str, FillFunction] = {}


class FillerError(InputError):
    """A filler is unknown or cannot fill a blob of the given shape."""


def _filler(name: str) -> Callable[[FillFunction], FillFunction]:
    def decorate(fn: FillFunction) -> FillFunction:
        _FILLERS[name] = fn
        return fn

    return decorate


def _field(filler: Any, name: str, default: float) -> float:
    if filler is None:
        return default
    return getattr(filler, name) if filler.HasField(name) else default


def _fan_count(shape: tuple[int, ...], filler: Any) -> float:
    total = math.prod(shape)
    fan_in = total / shape[0] if shape else 1
    fan_out = total / shape[1] if len(shape) > 1 else total
    norm = int(_field(filler, "variance_norm", FAN_IN))
    if norm == FAN_OUT:
        return fan_out
    if norm == AVERAGE:
        return (fan_in + fan_out) / 2
    return fan_in


@_filler("constant")
def _constant(blob: torch.Tensor, filler: Any, gen: torch.Generator) -> None:
    blob.fill_(_field(filler, "value", 0.0))


@_filler("uniform")
def _uniform(blob: torch.Tensor, filler: Any, gen: torch.Generator) -> None:
    low, high = _field(filler, "min", 0.0), _field(filler, "max", 1.0)
    blob.uniform_(low, high, generator=gen)


@_filler("gaussian")
def _gaussian(blob: torch.Tensor, filler: Any, gen: torch.Generator) -> None:
    blob.normal_(_field(filler, "mean", 0.0), _field(filler, "std", 1.0), generator=gen)
    sparse = int(_field(filler, "sparse", -1))
    if sparse >= 0:
        # Caffe keeps each weight with probability sparse / num_outputs (shape[0]).
        if blob.dim() < 1:
            raise FillerError("a sparse gaussian filler needs a blob with at least one axis")
        keep = min(1.0, sparse / blob.shape[0])
        mask = torch.empty_like(blob).bernoulli_(keep, generator=gen)
        blob.mul_(mask)


@_filler("positive_unitball")
def _positive_unitball(blob: torch.Tensor, filler: Any, gen: torch.Generator) -> None:
    blob.uniform_(0.0, 1.0, generator=gen)
    rows = blob.view(blob.shape[0], -1) if blob.dim() else blob.view(1, -1)
    rows.div_(rows.sum(dim=1, keepdim=True))


@_filler("xavier")
def _xavier(blob: torch.Tensor, filler: Any, gen: torch.Generator) -> None:
    bound = math.sqrt(3.0 / _fan_count(tuple(blob.shape), filler))
    blob.uniform_(-bound, bound, generator=gen)


@_filler("msra")
def _msra(blob: torch.Tensor, filler: Any, gen: torch.Generator) -> None:
    std = math.sqrt(2.0 / _fan_count(tuple(blob.shape), filler))
    blob.normal_(0.0, std, generator=gen)


@_filler("bilinear")
def _bilinear(blob: torch.Tensor, filler: Any, gen: torch.Generator) -> None:
    """Upsampling kernels for Deconvolution (Caffe's BilinearFiller, also for 3-D)."""
    if blob.dim() < 3:
        raise FillerError(
            f"the bilinear filler needs a (C, C', k, k[, k]) blob, got shape {tuple(blob.shape)}"
        )
    kernel = torch.ones((), dtype=torch.float64)
    for size in blob.shape[2:]:
        f = math.ceil(size / 2)
        c = (size - 1) / (2.0 * f)
        axis = 1 - torch.abs(torch.arange(size, dtype=torch.float64) / f - c)
        kernel = kernel.unsqueeze(-1) * axis
    blob.copy_(kernel.to(blob.dtype).expand_as(blob))


def filler_types() -> list[str]:
    return sorted(_FILLERS)


def fill(blob: torch.Tensor, filler: Any, generator: torch.Generator,
         default: str = "constant", default_value: float = 0.0) -> None:
    """Fill ``blob`` in place as Caffe's ``GetFiller(filler)`` would.

    ``filler`` is a ``FillerParameter`` or None (then ``default``/``default_value``,
    e.g. Scale's implicit constant 1).
    """
    kind = filler.type if filler is not None and filler.HasField("type") else None
    if kind is None and (filler is None or not filler.ListFields()):
        kind = default
        if default == "constant":
            with torch.no_grad():
                blob.fill_(default_value)
            return
    kind = kind or "constant"
    try:
        fn = _FILLERS[kind]
    except KeyError:
        raise FillerError(
            f"unknown filler type {kind!r}; expected one of {', '.join(filler_types())}"
        ) from None
    with torch.no_grad():
        fn(blob, filler, generator)
