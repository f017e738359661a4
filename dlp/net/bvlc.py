"""Make a DLP net runnable by BVLC Caffe: drop what only DLP understands.

DLP adds extension fields (numbers >= 10000) and two layer types, ``Dice`` and
``DiceLoss``.  Caffe skips unknown fields in binary files but refuses them in text,
and stops at an unknown layer type, so a net handed to a real ``caffe`` binary must
lose them.  A ``Dice`` metric only reports, so it can go (with its outputs, when no
other layer reads them); a ``DiceLoss`` drives training, and silently training a
different objective would be worse than refusing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from dlp.errors import InputError
from dlp.net.prototxt import strip_extensions
from dlp.net.specs import get_spec
from dlp.net.specs.base import UnknownLayerTypeError


class NotRunnableInCaffeError(InputError):
    """The net needs a DLP-only layer that BVLC Caffe cannot run."""


@dataclass
class BvlcExport:
    """The Caffe-ready net and what had to go, so the user can be told."""

    net: Any
    dropped_layers: list[str] = field(default_factory=list)


def _is_dlp_only(layer: Any) -> bool:
    try:
        return get_spec(layer.type).dlp_only
    except UnknownLayerTypeError:
        return False  # not ours: Caffe's own, or a custom type the user's Caffe has


def for_bvlc_caffe(net: Any, source: str = "the net") -> BvlcExport:
    """A copy of ``net`` that BVLC Caffe accepts; ``net`` itself is unchanged.

    Raises :class:`NotRunnableInCaffeError` naming the layer when a DLP-only layer
    cannot be removed without changing what the net computes or learns.
    """
    result = type(net)()
    result.CopyFrom(net)
    strip_extensions(result)
    dropped: list[str] = []
    for index in reversed(range(len(result.layer))):
        layer = result.layer[index]
        if not _is_dlp_only(layer):
            continue
        spec = get_spec(layer.type)
        readers = [other.name for other in result.layer
                   if other is not layer and set(other.bottom) & set(layer.top)]
        if spec.is_loss or readers:
            why = "it is the loss being trained" if spec.is_loss else \
                f"layer {readers[0]!r} reads its output"
            raise NotRunnableInCaffeError(
                f"{source}: layer {layer.name!r} ({layer.type}) is a DLP layer that BVLC "
                f"Caffe cannot run, and {why}; use a Caffe loss such as SoftmaxWithLoss "
                "to train with an external Caffe")
        dropped.append(layer.name)
        del result.layer[index]
    dropped.reverse()
    return BvlcExport(result, dropped)
