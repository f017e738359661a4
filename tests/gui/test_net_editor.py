"""The Net module driven as a user would: palette drops, port drags, the property
panel, undo/redo, quick add, moves, delete, copy/paste, insert-into-edge."""

from __future__ import annotations

import pytest
from PyQt5.QtCore import QPointF, Qt

from dlp.gui.net.qt_palette import TYPE_ROLE, type_mime
from dlp.net.specs.base import format_shape
from tests.gui.net_support import connect_by_drag, drag_mouse, drop, make_module

pytestmark = pytest.mark.gui


@pytest.fixture
def module(qtbot, project_dir):
    return make_module(qtbot, project_dir)


def palette_drop(module, type_name: str, x: float, y: float) -> int:
    """Drag ``type_name`` out of the palette and drop it on the canvas at (x, y)."""
    item = module.palette.item(type_name)
    assert not item.isHidden()
    module.view.centerOn(QPointF(x, y))
    before = set(module.doc.node_ids())
    drop(module.view, type_mime(item.data(0, TYPE_ROLE)), QPointF(x, y))
    (new,) = set(module.doc.node_ids()) - before
    return new


def type_into(qtbot, widget, text: str) -> None:
    widget.setFocus()
    line = widget.lineEdit() if hasattr(widget, "lineEdit") else widget
    line.selectAll()
    qtbot.keyClicks(line, text)
    qtbot.keyClick(line, Qt.Key_Return)


def test_build_a_net_edit_it_and_undo_redo_to_identical_nets(qtbot, module) -> None:
    nets = [module.doc.to_net()]
    data = palette_drop(module, "Input", 0, 0)
    nets.append(module.doc.to_net())
    conv = palette_drop(module, "Convolution", 0, 220)
    nets.append(module.doc.to_net())
    pool = palette_drop(module, "Pooling", 0, 440)
    nets.append(module.doc.to_net())
    assert [module.doc.layer_view(n).name for n in (data, conv, pool)] == \
        ["data", "conv1", "pool1"]

    connect_by_drag(module, data, 0, conv, 0)
    connect_by_drag(module, conv, 0, pool, 0)
    nets.append(module.doc.to_net())
    assert list(module.doc.layer_view(conv).bottom) == ["data"]
    assert list(module.doc.layer_view(pool).bottom) == ["conv1"]

    module.editor.run_analysis()
    edge = next(e for e in module.scene.edge_items() if e.link.sink == pool)
    assert edge.label == format_shape((1, 64, 256, 256))

    module.scene.select_nodes([conv])
    spin = module.layer_editor.fields["convolution_param.num_output"]
    type_into(qtbot, spin, "16")
    assert module.doc.layer_view(conv).convolution_param.num_output == 16
    nets.append(module.doc.to_net())
    qtbot.waitUntil(lambda: edge.label == format_shape((1, 16, 256, 256)), timeout=3000)
    assert format_shape((1, 16, 256, 256)) in module.scene.node_item(conv).look.shape_text

    steps = module.undo_stack.count()
    for _ in range(steps):
        module.undo_stack.undo()
    assert module.doc.to_net() == nets[0]
    for _ in range(steps):
        module.undo_stack.redo()
    assert module.doc.to_net() == nets[-1]
    module.scene.select_nodes([conv])
    module.undo_stack.undo()  # the num_output edit alone
    assert module.doc.layer_view(conv).convolution_param.num_output == 64
    assert module.layer_editor.fields["convolution_param.num_output"].value() == 64


def test_palette_search_filters_and_explains(module) -> None:
    module.palette.search.setText("pool")
    visible = module.palette.visible_types()
    assert "Pooling" in visible and "Convolution" not in visible
    assert module.palette.item("Pooling").toolTip(0)  # the spec's summary
    module.palette.search.setText("")
    assert len(module.palette.visible_types()) == len(module.palette.types()) > 30


def test_panel_refuses_invalid_values_with_a_message(qtbot, module) -> None:
    conv = palette_drop(module, "Convolution", 0, 0)
    palette_drop(module, "Pooling", 0, 200)
    module.scene.select_nodes([conv])
    before = module.doc.to_net()
    type_into(qtbot, module.layer_editor.fields["convolution_param.num_output"], "0")
    assert module.doc.to_net() == before
    assert "at least 1" in module.layer_editor.message.text()
    type_into(qtbot, module.layer_editor.fields["name"], "pool1")
    assert "already called 'pool1'" in module.layer_editor.message.text()
    type_into(qtbot, module.layer_editor.fields["type"], "Convolutoin")
    assert "Convolution" in module.layer_editor.message.text()  # the closest known type
    assert module.doc.to_net() == before
    assert module.undo_stack.count() == 2  # only the two drops


def test_panel_edits_nested_and_repeated_fields(qtbot, module) -> None:
    conv = palette_drop(module, "Convolution", 0, 0)
    module.scene.select_nodes([conv])
    fields = module.layer_editor.fields
    type_into(qtbot, fields["convolution_param.weight_filler.std"], "0.01")
    type_into(qtbot, fields["convolution_param.stride"], "2, 2")
    fields["param"].findChild(type(fields["param"].findChildren(
        __import__("PyQt5.QtWidgets").QtWidgets.QPushButton)[0])).click()  # "Add param"
    fields = module.layer_editor.fields
    type_into(qtbot, fields["param[0].lr_mult"], "0")
    layer = module.doc.layer_view(conv)
    assert layer.convolution_param.weight_filler.std == pytest.approx(0.01)
    assert list(layer.convolution_param.stride) == [2, 2]
    assert len(layer.param) == 1 and layer.param[0].lr_mult == 0
    module.layer_editor.fields["phase"].setCurrentIndex(1)
    module.layer_editor.fields["phase"].activated.emit(1)
    assert module.doc.layer_view(conv).phase == 1  # TEST
    assert module.undo_stack.count() == 6


def test_invalid_net_is_marked_red_and_explained(module) -> None:
    data = palette_drop(module, "Input", 0, 0)
    pool = palette_drop(module, "Pooling", 0, 220)
    connect_by_drag(module, data, 0, pool, 0)
    layer = module.doc.layer(pool)
    layer.pooling_param.kernel_size = 999  # larger than the 256 x 256 input
    module.scene.select_nodes([pool])
    module.layer_editor._commit((), lambda msg: msg.CopyFrom(layer), "Set kernel_size")
    module.editor.run_analysis()
    item = module.scene.node_item(pool)
    assert item.look.errors, "the pooling layer should be invalid"
    assert item.look.errors[0] in item.toolTip()
    issues = [module.issues.item(i).text() for i in range(module.issues.count())]
    assert any("pool1" in text and "✖" in text for text in issues)
    module.issues.itemClicked.emit(next(module.issues.item(i) for i in range(module.issues.count())
                                        if "pool1" in module.issues.item(i).text()))
    assert module.scene.selected_node_ids() == [pool]


def test_quick_add_wires_to_the_selected_layer(qtbot, module) -> None:
    conv = palette_drop(module, "Convolution", 0, 0)
    module.scene.select_nodes([conv])
    module.view.setFocus()
    qtbot.keyClick(module.view, Qt.Key_Tab)
    popup = module.quick_add_popup
    assert popup.isVisible()
    qtbot.keyClicks(popup.search, "relu")
    assert popup.visible_types()[0] == "ReLU"
    qtbot.keyClick(popup.search, Qt.Key_Return)
    relu = module.doc.find("relu1")
    assert relu is not None
    layer = module.doc.layer_view(relu)
    assert list(layer.bottom) == ["conv1"] and list(layer.top) == ["conv1"]  # in place
    module.editor.run_analysis()
    link = next(link for link in module.doc.links() if link.sink == relu)
    assert link.source == conv
    conv_item = module.scene.node_item(conv)
    assert module.scene.node_item(relu).look.in_place  # drawn attached under its host
    assert module.doc.position(relu) == pytest.approx(
        (conv_item.pos().x(), conv_item.pos().y() + conv_item.body_rect().height() + 8))


def test_drag_moves_are_one_undo_step_each(qtbot, module) -> None:
    conv = palette_drop(module, "Convolution", 0, 0)
    item = module.scene.node_item(conv)
    start = item.pos()
    grab = item.mapToScene(item.body_rect().center())
    drag_mouse(module.view, grab, grab + QPointF(150, 60), steps=6)
    assert module.doc.position(conv) == pytest.approx((start.x() + 150, start.y() + 60), abs=2)
    assert module.undo_stack.count() == 2
    assert module.undo_stack.command(1).text().startswith("Move")
    module.undo_stack.undo()
    assert (item.pos().x(), item.pos().y()) == pytest.approx((start.x(), start.y()))


def test_delete_bridges_and_copy_paste_renames(qtbot, module) -> None:
    data = palette_drop(module, "Input", 0, 0)
    pool = palette_drop(module, "Pooling", 0, 220)
    conv = palette_drop(module, "Convolution", 0, 440)
    connect_by_drag(module, data, 0, pool, 0)
    connect_by_drag(module, pool, 0, conv, 0)
    module.scene.select_nodes([pool, conv])
    module.copy_selection()
    pasted = module.paste()
    names = [module.doc.layer_view(n).name for n in pasted]
    assert names == ["pool2", "conv2"]
    pasted_conv = module.doc.layer_view(pasted[1])
    assert list(pasted_conv.bottom) == ["pool2"]  # the copied link stays between the copies
    assert module.scene.selected_node_ids() == pasted
    module.undo_stack.undo()
    module.scene.select_nodes([pool])
    module.actions_by_name["delete"].trigger()
    assert module.doc.find("pool1") is None
    assert list(module.doc.layer_view(conv).bottom) == ["data"]  # bridged over the gap
    module.undo_stack.undo()
    assert list(module.doc.layer_view(conv).bottom) == ["pool1"]


def test_node_dropped_onto_an_edge_is_inserted(qtbot, module) -> None:
    data = palette_drop(module, "Input", 0, 0)
    conv = palette_drop(module, "Convolution", 0, 400)
    connect_by_drag(module, data, 0, conv, 0)
    edge = module.scene.edge_items()[0]
    middle = edge.path().pointAtPercent(0.5)
    relu = palette_drop(module, "ReLU", middle.x(), middle.y())
    assert list(module.doc.layer_view(relu).bottom) == ["data"]
    assert list(module.doc.layer_view(conv).bottom) == [module.doc.layer_view(relu).top[0]]
    order = [module.doc.layer_view(n).name for n in module.doc.node_ids()]
    assert order.index("relu1") < order.index("conv1")
    module.undo_stack.undo()
    assert module.doc.find("relu1") is None
    assert list(module.doc.layer_view(conv).bottom) == ["data"]


def test_moving_a_free_node_onto_an_edge_inserts_it(qtbot, module) -> None:
    data = palette_drop(module, "Input", 0, 0)
    conv = palette_drop(module, "Convolution", 0, 400)
    connect_by_drag(module, data, 0, conv, 0)
    bn = palette_drop(module, "BatchNorm", 400, 200)
    item = module.scene.node_item(bn)
    module.scene.select_nodes([bn])
    middle = module.scene.edge_items()[0].path().pointAtPercent(0.5)
    grab = item.mapToScene(item.body_rect().center())
    module.view.centerOn((grab + middle) / 2)
    drag_mouse(module.view, grab, middle, steps=6)
    assert list(module.doc.layer_view(bn).bottom) == ["data"]
    assert list(module.doc.layer_view(conv).bottom) == ["bn1"]
    assert module.undo_stack.undoText().startswith("Insert 'bn1' into data")
    module.undo_stack.undo()  # the move and the insertion are one step
    assert list(module.doc.layer_view(conv).bottom) == ["data"]
    assert module.doc.position(bn) == pytest.approx((400, 200 - 12), abs=1)


def test_with_nothing_selected_the_panel_edits_the_net(qtbot, module) -> None:
    palette_drop(module, "Input", 0, 0)
    module.scene.clearSelection()
    assert module.layer_editor.showing_net
    type_into(qtbot, module.layer_editor.fields["name"], "my-unet")
    assert module.doc.to_net().name == "my-unet"
    assert module.undo_stack.undoText() == "Set name of the net"
    module.undo_stack.undo()
    assert module.doc.to_net().name == ""
    assert module.layer_editor.fields["name"].text() == ""
