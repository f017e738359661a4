"""The Data tab (``QtDataModule``): build datasets and look at what they hold."""

from __future__ import annotations

from dlp.gui.data.qt_data_module import QtDataModule

__all__ = ["QtDataModule"]
