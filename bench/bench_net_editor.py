"""Net editor speed: opening a 1,000-layer net, and dragging a node in it.

Figures:
- ``net_editor.open_1000_layers_s``: import (read + upgrade) + automatic layout + scene
  build + shape analysis + first paint of a generated ResNet-style prototxt, in seconds
  (target <= 1.0); the detail gives the ratio against parsing the same text alone,
  measured in the same run.
- ``net_editor.drag_move_worst_ms`` / ``_median_ms``: one mouse-move event while dragging
  a node of that net at 100 % zoom, including the repaint Qt schedules for it (target
  <= 16 ms each).
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
from pathlib import Path

from bench.common import Figure

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")


def resnet_prototxt(target_layers: int = 1000) -> str:
    """A ResNet-style bottleneck net (conv/BN/Scale/ReLU, projections, Eltwise) with about
    ``target_layers`` layers, like ResNet-152's deploy prototxt but longer."""
    lines = ['name: "resnet-generated"',
             'layer { name: "data" type: "Input" top: "data" '
             "input_param { shape { dim: 1 dim: 3 dim: 224 dim: 224 } } }"]
    count = 1

    def add(text: str) -> None:
        nonlocal count
        lines.append(f"layer {{ {text} }}")
        count += 1

    def conv_bn(name: str, bottom: str, out: int, kernel: int, stride: int, relu: bool) -> str:
        pad = kernel // 2
        add(f'name: "{name}" type: "Convolution" bottom: "{bottom}" top: "{name}" '
            f"convolution_param {{ num_output: {out} kernel_size: {kernel} pad: {pad} "
            f"stride: {stride} bias_term: false }}")
        add(f'name: "bn_{name}" type: "BatchNorm" bottom: "{name}" top: "{name}"')
        add(f'name: "scale_{name}" type: "Scale" bottom: "{name}" top: "{name}" '
            "scale_param { bias_term: true }")
        if relu:
            add(f'name: "{name}_relu" type: "ReLU" bottom: "{name}" top: "{name}"')
        return name

    top = conv_bn("conv1", "data", 64, 7, 2, True)
    add('name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1" '
        "pooling_param { pool: MAX kernel_size: 3 stride: 2 }")
    top = "pool1"
    stage, block, width = 2, 0, 64
    blocks_per_stage = {2: 3, 3: 8, 4: 10**6, 5: 3}  # stage 4 grows to reach the target
    while count < target_layers - 20 or stage < 5:
        if block >= blocks_per_stage[stage] or (stage == 4 and count >= target_layers - 60):
            stage, block, width = stage + 1, 0, width * 2
            if stage > 5:
                break
        name = f"res{stage}_{block}"
        stride = 2 if block == 0 and stage > 2 else 1
        shortcut = top
        if block == 0:
            shortcut = conv_bn(f"{name}_branch1", top, width * 4, 1, stride, False)
        a = conv_bn(f"{name}_branch2a", top, width, 1, stride, True)
        b = conv_bn(f"{name}_branch2b", a, width, 3, 1, True)
        c = conv_bn(f"{name}_branch2c", b, width * 4, 1, 1, False)
        add(f'name: "{name}" type: "Eltwise" bottom: "{shortcut}" bottom: "{c}" top: "{name}"')
        add(f'name: "{name}_relu" type: "ReLU" bottom: "{name}" top: "{name}"')
        top, block = name, block + 1
    add(f'name: "pool5" type: "Pooling" bottom: "{top}" top: "pool5" '
        "pooling_param { pool: AVE global_pooling: true }")
    add('name: "fc1000" type: "InnerProduct" bottom: "pool5" top: "fc1000" '
        "inner_product_param { num_output: 1000 }")
    add('name: "prob" type: "Softmax" bottom: "fc1000" top: "prob"')
    return "\n".join(lines) + "\n"


def run() -> list[Figure]:
    from PyQt5.QtCore import QPointF, Qt
    from PyQt5.QtGui import QMouseEvent
    from PyQt5.QtTest import QTest
    from PyQt5.QtWidgets import QApplication

    from dlp.gui.net import QtNetModule
    from dlp.net.prototxt import parse_net_text

    app = QApplication.instance() or QApplication([])
    text = resnet_prototxt(1000)
    folder = Path(tempfile.mkdtemp(prefix="dlp-bench-net-"))
    path = folder / "resnet.prototxt"
    path.write_text(text)
    layers = len(parse_net_text(text).layer)

    def fresh_module() -> QtNetModule:
        module = QtNetModule(None)
        module.resize(1400, 900)
        module.show()
        app.processEvents()
        return module

    def open_net(module: QtNetModule) -> None:
        module.import_file(path)
        module.editor.run_analysis()
        module.view.viewport().repaint()  # the first paint, synchronously

    # Each open goes into a fresh, empty editor (the user's "first paint"); parsing alone
    # is timed right after it, so both see the same load on this shared machine.
    fresh_module().close()  # warm-up: imports, fonts, the grid tile
    opens, parses = [], []
    for _ in range(3):
        module = fresh_module()
        start = time.perf_counter()
        open_net(module)
        opens.append(time.perf_counter() - start)
        start = time.perf_counter()
        parse_net_text(text)
        parses.append(time.perf_counter() - start)
        module.close()
        module.deleteLater()
        app.processEvents()
    t_open, t_parse = statistics.median(opens), statistics.median(parses)
    figures = [Figure("net_editor.open_1000_layers_s", t_open, 1.0, "<=",
                      f"{layers} layers; {t_open / t_parse:.1f}x parsing alone "
                      f"({t_parse * 1000:.0f} ms)")]
    module = fresh_module()
    open_net(module)

    # Drag a mid-net node back and forth, one event per step, timing each with its repaint.
    node_id = module.doc.find(f"res4_{5}_branch2b")
    item = module.scene.node_item(node_id)
    module.view.resetTransform()
    module.view.centerOn(item)
    app.processEvents()
    viewport = module.view.viewport()
    grab = module.view.mapFromScene(item.mapToScene(item.body_rect().center()))

    def send(kind, pos, buttons) -> None:  # a move with the left button held
        QApplication.sendEvent(viewport, QMouseEvent(kind, QPointF(pos), Qt.NoButton, buttons,
                                                     Qt.NoModifier))

    start_pos = item.pos()
    QTest.mousePress(viewport, Qt.LeftButton, Qt.NoModifier, grab)
    if not item.isSelected():
        raise RuntimeError("the drag benchmark did not grab its node")
    times = []
    for step in range(120):
        offset = (step % 40) * 3 - 60
        pos = grab + type(grab)(offset, offset // 3)
        start = time.perf_counter()
        send(QMouseEvent.MouseMove, pos, Qt.LeftButton)
        app.processEvents()  # the repaint Qt scheduled for the moved item and its edges
        times.append((time.perf_counter() - start) * 1000)
    full = []
    for step in range(40):  # the same, but forcing a repaint of the whole canvas each time
        pos = grab + type(grab)((step % 40) * 3 - 60, 0)
        start = time.perf_counter()
        send(QMouseEvent.MouseMove, pos, Qt.LeftButton)
        viewport.repaint()
        full.append((time.perf_counter() - start) * 1000)
    moved = item.pos() != start_pos
    QTest.mouseRelease(viewport, Qt.LeftButton, Qt.NoModifier, grab)
    if not moved:
        raise RuntimeError("the drag benchmark did not move its node")
    times = times[5:]  # the first events warm caches up
    figures += [
        Figure("net_editor.drag_move_worst_ms", max(times), 16.0, "<=",
               f"{len(times)} move events with repaint"),
        Figure("net_editor.drag_move_median_ms", statistics.median(times), 16.0, "<=",
               f"whole-canvas repaint per move: median {statistics.median(full):.1f} ms"),
    ]
    module.close()
    module.deleteLater()
    return figures


if __name__ == "__main__":
    for figure in run():
        print(figure.line())
