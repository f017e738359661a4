"""The Train tab: solver form, training launch, live curves, runs and snapshots."""

from __future__ import annotations

from dlp.gui.train.qt_train_module import QtTrainModule

__all__ = ["QtTrainModule"]
