"""Engine layers, one small ``nn.Module`` per Caffe type, grouped by family.

Importing this package registers every layer with :mod:`dlp.engine.registry`.
"""

from __future__ import annotations

from dlp.engine.layers import (  # noqa: F401  (imported for registration)
    activation,
    common,
    data,
    loss,
    normalization,
    python_layer,
    utility,
    vision,
)
from dlp.engine.layers.base import BuildContext, Layer

__all__ = ["BuildContext", "Layer"]
