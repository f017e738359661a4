"""The Deploy tab: model configuration, drop zone, viewer, measurements, evaluate, batch."""

from __future__ import annotations

from dlp.gui.deploy.qt_deploy_module import QtDeployModule

__all__ = ["QtDeployModule"]
