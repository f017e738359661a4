"""The fine-tuning report shown before training: which layers pretrained weights fill.

Builds the TRAIN net with the engine and copies the weights exactly as the solver
will (``dlp.engine.weights.copy_weights``), so the matched / missing / mismatched
lists the user reads are the ones training gets.  Imports torch: run it off the GUI
thread.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

from dlp.errors import InputError


def weight_report(net_param: Any, weights: Iterable[str | os.PathLike[str]],
                  device: str = "cpu") -> Any:
    """``WeightReport`` of copying each file of ``weights`` (in order) into the net.

    Later files win for layers several files hold, as ``caffe train --weights a,b``.
    """
    from dlp.engine.net import Net
    from dlp.engine.weights import WeightReport, copy_weights, read_caffemodel

    paths = [str(w) for w in weights if str(w)]
    if not paths:
        raise InputError("no pretrained weights file given")
    net = Net(net_param, "TRAIN", device=device)
    try:
        total = WeightReport()
        for path in paths:
            report = copy_weights(net, read_caffemodel(path))
            total.matched = sorted(set(total.matched) | set(report.matched))
            total.mismatched += [m for m in report.mismatched if m[0] not in total.matched]
            total.unused = sorted(set(total.unused) | set(report.unused))
        with_blobs = [name for name, layer in zip(net.layer_names, net.layers, strict=False)
                      if layer.blob_names]
        total.missing = [n for n in with_blobs if n not in total.matched
                         and not any(m[0] == n for m in total.mismatched)]
        return total
    finally:
        net.close()
