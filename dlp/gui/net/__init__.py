"""The Net module: a visual editor of Caffe networks (palette, canvas, properties)."""

from __future__ import annotations

from dlp.gui.net.qt_net_module import QtNetModule

__all__ = ["QtNetModule"]
