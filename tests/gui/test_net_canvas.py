"""Canvas gestures: attached in-place layers, rubber band, zoom/fit, history, phases."""

from __future__ import annotations

from pathlib import Path

import pytest
from PyQt5.QtCore import QPointF, Qt
from PyQt5.QtTest import QTest

from dlp.gui.net.layout import ATTACH_GAP
from tests.gui.net_support import drag_mouse, make_module

pytestmark = pytest.mark.gui

NET = """
name: "small"
layer { name: "train_data" type: "Input" top: "data" include { phase: TRAIN }
        input_param { shape { dim: 2 dim: 1 dim: 32 dim: 32 } } }
layer { name: "test_data" type: "Input" top: "data" include { phase: TEST }
        input_param { shape { dim: 1 dim: 1 dim: 32 dim: 32 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
"""


@pytest.fixture
def module(qtbot, project_dir: Path, tmp_path: Path):
    module = make_module(qtbot, project_dir)
    path = tmp_path / "small.prototxt"
    path.write_text(NET)
    assert module.import_file(path)
    module.view.resetTransform()
    module.view.centerOn(module.scene.node_item(module.doc.find("conv1")))
    return module


def ids(module, *names: str) -> list[int]:
    return [module.doc.find(name) for name in names]


def test_in_place_layer_hangs_under_its_host_and_follows_it(module) -> None:
    conv, relu = ids(module, "conv1", "relu1")
    conv_item, relu_item = module.scene.node_item(conv), module.scene.node_item(relu)
    assert relu_item.look.in_place
    assert relu_item.pos().x() == pytest.approx(conv_item.pos().x())
    assert relu_item.pos().y() == pytest.approx(
        conv_item.pos().y() + conv_item.body_rect().height() + ATTACH_GAP)
    before = {n: module.doc.position(n) for n in (conv, relu)}
    module.scene.select_nodes([conv])
    grab = conv_item.mapToScene(conv_item.body_rect().center())
    drag_mouse(module.view, grab, grab + QPointF(120, 0))
    assert module.doc.position(conv)[0] == pytest.approx(before[conv][0] + 120, abs=2)
    assert module.doc.position(relu)[0] == pytest.approx(before[relu][0] + 120, abs=2)
    module.undo_stack.undo()  # one step puts both back
    assert {n: module.doc.position(n) for n in (conv, relu)} == before


def test_rubber_band_selects_the_layers_it_touches(module) -> None:
    conv, pool = ids(module, "conv1", "pool1")
    rect = module.scene.node_item(conv).sceneBoundingRect().united(
        module.scene.node_item(pool).sceneBoundingRect())
    start = rect.topLeft() + QPointF(-250, -15)  # empty canvas to the left of the nodes
    assert module.scene.node_at(start) is None
    drag_mouse(module.view, start, rect.bottomRight() + QPointF(5, 5), steps=8)
    assert set(module.scene.selected_node_ids()) >= {conv, pool}


def test_dragging_onto_a_node_body_uses_its_first_free_port(module) -> None:
    pool = module.doc.find("pool1")
    module.editor.drop_layer_type("Eltwise", QPointF(600, 0))
    eltwise = module.doc.find("sum1")
    target = module.scene.node_item(eltwise)
    start = module.scene.node_item(pool).port("top", 0).scenePos()
    module.view.centerOn((start + target.scenePos()) / 2)
    drag_mouse(module.view, start, target.mapToScene(target.body_rect().center()))
    assert list(module.doc.layer_view(eltwise).bottom) == ["pool1"]
    assert len(module.scene.node_item(eltwise).bottom_ports) == 2  # still one free port


def test_zoom_and_fit(module) -> None:
    view = module.view
    view.resetTransform()
    view.zoom_in()
    assert view.transform().m11() == pytest.approx(1.25)
    view.zoom_out()
    assert view.transform().m11() == pytest.approx(1.0)
    view.fit_all()
    visible = view.mapToScene(view.viewport().rect()).boundingRect()
    for item in module.scene.node_items():
        assert visible.contains(item.sceneBoundingRect())


def test_history_lists_every_step_and_jumps_back(qtbot, module) -> None:
    module.editor.drop_layer_type("Dropout", QPointF(500, 500))
    module.editor.auto_layout()
    model = module.history.model()
    assert model.rowCount() == module.undo_stack.count() + 1 == 4  # "Opened net" row too
    assert model.index(2, 0).data() == "Add Dropout 'drop1'"
    module.history.setCurrentIndex(model.index(1, 0))  # click the import step
    assert module.undo_stack.index() == 1
    assert module.doc.find("drop1") is None


def test_double_click_on_empty_canvas_opens_quick_add(qtbot, module) -> None:
    module.scene.clearSelection()
    spot = module.scene.node_item(module.doc.find("pool1")).sceneBoundingRect().topRight() + \
        QPointF(200, 0)
    QTest.mouseDClick(module.view.viewport(), Qt.LeftButton, Qt.NoModifier,
                      module.view.mapFromScene(spot))
    popup = module.quick_add_popup
    assert popup.isVisible()
    qtbot.keyClicks(popup.search, "softmaxwith")
    qtbot.keyClick(popup.search, Qt.Key_Return)
    loss = module.doc.find("loss1")
    assert loss is not None
    assert module.doc.position(loss) == pytest.approx((spot.x(), spot.y()), abs=1)


def test_phase_switch_fades_layers_of_the_other_phase(module) -> None:
    train, test = ids(module, "train_data", "test_data")
    module.editor.run_analysis()
    assert module.scene.node_item(train).look.active
    assert not module.scene.node_item(test).look.active
    module.phase_combo.setCurrentText("TEST")
    assert module.scene.node_item(test).look.active
    assert not module.scene.node_item(train).look.active
    conv = module.scene.node_item(module.doc.find("conv1"))
    assert conv.look.shape_text.startswith("1×")  # noqa: RUF001 — the TEST batch of 1


def test_links_are_removed_by_delete_or_by_pulling_them_off(module) -> None:
    conv, pool = ids(module, "conv1", "pool1")
    relu = module.doc.find("relu1")
    edge = next(e for e in module.scene.edge_items() if e.link.sink == pool)
    edge.setSelected(True)
    module.actions_by_name["delete"].trigger()
    assert list(module.doc.layer_view(pool).bottom) == []
    assert module.undo_stack.undoText() == "Disconnect conv1"
    module.undo_stack.undo()
    assert list(module.doc.layer_view(pool).bottom) == ["conv1"]
    port = module.scene.node_item(pool).port("bottom", 0)
    module.view.centerOn(port.scenePos())
    drag_mouse(module.view, port.scenePos(), port.scenePos() + QPointF(-150, 40))
    assert list(module.doc.layer_view(pool).bottom) == []
    assert any(link.sink == relu for link in module.doc.links())  # the rest stays wired
    assert conv in module.doc


def test_middle_button_pans_and_palette_double_click_adds_in_view(module) -> None:
    view = module.view
    before = view.mapToScene(view.viewport().rect().center())
    centre = view.viewport().rect().center()
    QTest.mousePress(view.viewport(), Qt.MiddleButton, Qt.NoModifier, centre)
    from PyQt5.QtGui import QMouseEvent
    from PyQt5.QtWidgets import QApplication

    QApplication.sendEvent(view.viewport(), QMouseEvent(
        QMouseEvent.MouseMove, QPointF(centre.x() - 80, centre.y() - 50), Qt.NoButton,
        Qt.MiddleButton, Qt.NoModifier))
    QTest.mouseRelease(view.viewport(), Qt.MiddleButton, Qt.NoModifier,
                       centre - type(centre)(80, 50))
    after = view.mapToScene(view.viewport().rect().center())
    assert (after.x() - before.x(), after.y() - before.y()) == pytest.approx((80, 50), abs=2)
    module.palette.type_activated.emit("Softmax")
    prob = module.doc.find("prob1")
    assert prob is not None
    assert view.mapToScene(view.viewport().rect()).boundingRect().contains(
        module.scene.node_item(prob).sceneBoundingRect().center())


def test_context_menus_offer_what_is_under_the_cursor(module) -> None:
    pool = module.doc.find("pool1")
    item = module.scene.node_item(pool)
    menu = module.context_menu(item.mapToScene(item.body_rect().center()))
    actions = {a.text(): a for a in menu.actions() if a.text()}
    assert "Properties of 'pool1'" in actions and module.scene.selected_node_ids() == [pool]
    actions["Disconnect inputs"].trigger()
    assert list(module.doc.layer_view(pool).bottom) == []
    far = item.sceneBoundingRect().topRight() + QPointF(400, 0)
    canvas = {a.text() for a in module.context_menu(far).actions() if a.text()}
    assert {"Add layer…", "Paste", "Auto layout", "Fit"} <= canvas


def test_arrow_keys_nudge_the_selection_with_its_attached_layers(qtbot, module) -> None:
    conv, relu = ids(module, "conv1", "relu1")
    before = {n: module.doc.position(n) for n in (conv, relu)}
    module.scene.select_nodes([conv])
    module.view.setFocus()
    qtbot.keyClick(module.view, Qt.Key_Right, Qt.ShiftModifier)
    qtbot.keyClick(module.view, Qt.Key_Down)
    for node_id in (conv, relu):
        x, y = before[node_id]
        assert module.doc.position(node_id) == pytest.approx((x + 20, y + 2))
    assert module.undo_stack.undoText().startswith("Move 2 layers")
