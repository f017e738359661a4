"""The engine's registry of layer types: Caffe type name -> ``nn.Module`` class.

Like Caffe's ``layer_factory``, it fails loudly: registering a type twice is an
error, and asking for an unknown type names the closest known ones.  Bottom/top
counts are not declared here; they come from :mod:`dlp.net.specs`, the one
declaration shared with the editor.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from typing import TypeVar

from dlp.errors import DLPError, InputError

_LAYER_CLASSES: dict[str, type] = {}

LayerClass = TypeVar("LayerClass", bound=type)


class DuplicateLayerTypeError(DLPError):
    """Two engine classes claim the same Caffe layer type."""


class UnknownEngineLayerError(InputError):
    """A net names a layer type the engine does not implement."""


def register_layer(type_name: str) -> Callable[[LayerClass], LayerClass]:
    """Class decorator registering an engine layer for the Caffe type ``type_name``."""

    def decorate(cls: LayerClass) -> LayerClass:
        if type_name in _LAYER_CLASSES:
            raise DuplicateLayerTypeError(
                f"engine layer type {type_name!r} is registered twice "
                f"({_LAYER_CLASSES[type_name].__qualname__} and {cls.__qualname__})"
            )
        cls.type_name = type_name
        _LAYER_CLASSES[type_name] = cls
        return cls

    return decorate


def closest_types(type_name: str, limit: int = 3) -> list[str]:
    """The registered type names most similar to ``type_name`` (case-insensitive)."""
    _ensure_loaded()
    by_lower = {name.lower(): name for name in _LAYER_CLASSES}
    matches = difflib.get_close_matches(type_name.lower(), by_lower, n=limit, cutoff=0.5)
    return [by_lower[m] for m in matches]


def get_layer_class(type_name: str, layer_name: str | None = None) -> type:
    """The engine class for ``type_name``; an unknown type names the closest known ones."""
    _ensure_loaded()
    try:
        return _LAYER_CLASSES[type_name]
    except KeyError:
        pass
    where = f"layer {layer_name!r}: " if layer_name else ""
    close = closest_types(type_name)
    hint = f"did you mean {', '.join(close)}?" if close else (
        f"known types: {', '.join(sorted(_LAYER_CLASSES))}"
    )
    raise UnknownEngineLayerError(f"{where}unknown layer type {type_name!r}; {hint}")


def registered_types() -> list[str]:
    """All registered Caffe type names, sorted."""
    _ensure_loaded()
    return sorted(_LAYER_CLASSES)


def _ensure_loaded() -> None:
    # Layer modules register themselves on import; importing the package is enough.
    import dlp.engine.layers  # noqa: F401
