"""Helpers for the Net module's GUI tests: a module on a real project, and user
gestures (palette drops, port drags) sent to the canvas as Qt events."""

from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import QMimeData, QPoint, QPointF, Qt
from PyQt5.QtGui import QDragEnterEvent, QDragMoveEvent, QDropEvent
from PyQt5.QtTest import QTest
from PyQt5.QtWidgets import QApplication

from dlp.gui.net.items import PortItem

ROOT = Path(__file__).resolve().parents[2]
FCN8S = ROOT / "netlib" / "fcn8s" / "train_val.prototxt"


def make_module(qtbot, project_dir: Path):
    """A shown QtNetModule on a fresh project in ``project_dir``."""
    from dlp.gui.net import QtNetModule
    from dlp.gui.qt_project import QtProject
    from dlp.project import Project

    qt_project = QtProject(Project.open_or_create(project_dir))
    module = QtNetModule(qt_project)
    module.resize(1300, 850)
    qtbot.addWidget(module)
    module.show()
    qtbot.waitExposed(module)
    return module


def drop(view, mime: QMimeData, scene_pos: QPointF) -> None:
    """Drag ``mime`` over the canvas and drop it at ``scene_pos``."""
    pos = view.mapFromScene(scene_pos)
    target = view.viewport()
    for event_type in (QDragEnterEvent, QDragMoveEvent):
        event = event_type(pos, Qt.CopyAction, mime, Qt.LeftButton, Qt.NoModifier)
        QApplication.sendEvent(target, event)
        assert event.isAccepted(), f"the canvas refused the {event_type.__name__}"
    QApplication.sendEvent(target, QDropEvent(QPointF(pos), Qt.CopyAction, mime, Qt.LeftButton,
                                              Qt.NoModifier))


def viewport_point(view, scene_pos: QPointF) -> QPoint:
    return view.mapFromScene(scene_pos)


def drag_mouse(view, start: QPointF, end: QPointF, steps: int = 4) -> None:
    """Press at ``start``, move to ``end`` in steps, release (scene coordinates)."""
    viewport = view.viewport()
    a, b = viewport_point(view, start), viewport_point(view, end)
    QTest.mousePress(viewport, Qt.LeftButton, Qt.NoModifier, a)
    for i in range(1, steps + 1):
        p = a + (b - a) * i / steps
        _move(viewport, p)
    QTest.mouseRelease(viewport, Qt.LeftButton, Qt.NoModifier, b)


def _move(widget, pos: QPoint) -> None:
    # QTest.mouseMove sends no button state; a real drag holds the left button.
    from PyQt5.QtGui import QMouseEvent

    event = QMouseEvent(QMouseEvent.MouseMove, QPointF(pos), Qt.NoButton, Qt.LeftButton,
                        Qt.NoModifier)
    QApplication.sendEvent(widget, event)


def connect_by_drag(module, source: int, top: int, sink: int, bottom: int) -> None:
    """Drag from a node's top port onto another node's bottom port."""
    scene = module.scene
    start: PortItem = scene.node_item(source).port("top", top)
    end: PortItem = scene.node_item(sink).port("bottom", bottom)
    module.view.centerOn((start.scenePos() + end.scenePos()) / 2)
    drag_mouse(module.view, start.scenePos(), end.scenePos())
