"""The Net module with files: FCN-8s import/export, the library, the text view,
comparing nets, saving images and the project's net with its layout."""

from __future__ import annotations

from pathlib import Path

import pytest
from PyQt5.QtCore import QMimeData, QPointF
from PyQt5.QtGui import QImage

from dlp.gui.net.view import LIBRARY_MIME
from dlp.net.prototxt import read_net, write_net
from dlp.net.specs.base import format_shape
from tests.gui.net_support import FCN8S, drop, make_module

pytestmark = pytest.mark.gui


@pytest.fixture
def module(qtbot, project_dir):
    return make_module(qtbot, project_dir)


def test_fcn8s_import_export_reimport_is_the_same_net(module, tmp_path: Path) -> None:
    assert module.import_file(FCN8S)
    original = read_net(FCN8S)
    assert module.doc.to_net() == original
    # every layer has a place, and the automatic layout goes top to bottom
    ys = {module.doc.layer_view(n).name: module.doc.position(n)[1] for n in module.doc.node_ids()}
    assert ys["conv1_1"] < ys["pool5"] < ys["upscore8"]
    items = module.scene.node_items()
    assert len(items) == len(original.layer)
    module.undo_stack.undo()
    assert len(module.doc) == 0

    module.undo_stack.redo()
    module.data_shape_edit.setText("1,256,256")  # no dataset yet: the user gives C,H,W
    module.data_shape_edit.editingFinished.emit()
    module.editor.run_analysis()
    score = module.scene.node_item(module.doc.find("score"))
    assert score.look.shape_text == format_shape((1, 2, 256, 256)) and not score.look.errors
    out = tmp_path / "export" / "train_val.prototxt"
    deploy = module.editor.export(out)
    assert deploy == out.with_name("deploy.prototxt") and deploy.is_file()
    assert out.with_name("train_val.layout.json").is_file()
    positions = {n: module.doc.position(n) for n in module.doc.node_ids()}

    again = module.editor  # import the export into the same editor: same net, same layout
    assert module.import_file(out)
    assert again.doc.to_net() == original
    assert sorted(positions.values()) == sorted(module.doc.position(n)
                                                for n in module.doc.node_ids())
    deploy_net = read_net(deploy)
    assert not any(layer.type == "Data" for layer in deploy_net.layer)


def test_v1_prototxt_is_upgraded_on_import(module, tmp_path: Path) -> None:
    v1 = tmp_path / "old.prototxt"
    v1.write_text('name: "old"\ninput: "data"\ninput_dim: 1\ninput_dim: 1\ninput_dim: 8\n'
                  'input_dim: 8\nlayers { name: "conv" type: CONVOLUTION bottom: "data" '
                  'top: "conv" convolution_param { num_output: 4 kernel_size: 3 } }\n'
                  'layers { name: "relu" type: RELU bottom: "conv" top: "conv" }\n')
    assert module.import_file(v1)
    types = [module.doc.layer_view(n).type for n in module.doc.node_ids()]
    assert types == ["Input", "Convolution", "ReLU"]
    module.editor.run_analysis()
    assert module.scene.node_item(module.doc.find("conv")).look.shape_text == \
        format_shape((1, 4, 6, 6))


def test_a_broken_file_gets_one_clear_message(module, tmp_path: Path) -> None:
    bad = tmp_path / "bad.prototxt"
    bad.write_text('layer { name: "a" type: "ReLU"\n  bogus_field: 3 }\n')
    assert not module.import_file(bad)
    assert "bad.prototxt:2" in module.status.text()
    assert len(module.doc) == 0


def test_drop_a_library_net_and_open_one(module) -> None:
    keys = module.library.entry_names()
    assert {"fcn8s", "lenet"} <= set(keys)
    item = module.library.list.item(keys.index("lenet"))
    assert not item.icon().isNull()  # a thumbnail of the net's canvas
    mime = QMimeData()
    mime.setData(LIBRARY_MIME, b"lenet")
    drop(module.view, mime, QPointF(300, 100))
    lenet, _solver = __import__("dlp.net.library", fromlist=["load_entry"]).load_entry("lenet")
    assert module.doc.to_net().layer == lenet.layer
    left = min(module.doc.position(n)[0] - 92 for n in module.doc.node_ids())
    assert left == pytest.approx(300 - 92, abs=1)
    # dropped twice: the second copy gets fresh names, the net stays consistent
    drop(module.view, mime, QPointF(900, 100))
    names = module.doc.layer_names()
    assert len(names) == 2 * len(lenet.layer) and len(set(names)) == len(names)
    module.library.open_requested.emit("fcn8s")
    assert module.doc.to_net() == read_net(FCN8S)
    assert module.undo_stack.undoText().startswith("Open 'fcn8s'")


def test_save_to_my_library_lists_the_entry(module) -> None:
    module.library.open_requested.emit("lenet")
    module.editor.run_analysis()
    folder = module.save_to_library("my-lenet", "LeNet with my tweaks")
    assert folder is not None and (folder / "train_val.prototxt").is_file()
    assert folder.parent == Path(module.qt_project.library_dir)
    assert "my-lenet" in module.library.entry_names()
    row = module.library.entry_names().index("my-lenet")
    assert "(mine)" in module.library.list.item(row).text()
    assert read_net(folder / "train_val.prototxt") == module.doc.to_net()


def test_text_view_and_canvas_follow_each_other(qtbot, module) -> None:
    module.library.open_requested.emit("lenet")
    module.docks["Prototxt"].raise_()
    text_view = module.text_view
    qtbot.waitUntil(lambda: 'name: "conv1"' in text_view.editor.toPlainText(), timeout=3000)
    conv1 = module.doc.find("conv1")
    position = module.doc.position(conv1)
    text = text_view.editor.toPlainText()
    text_view.editor.setPlainText(text.replace("num_output: 20", "num_output: 7", 1))
    qtbot.waitUntil(lambda: module.doc.layer_view(conv1).convolution_param.num_output == 7,
                    timeout=3000)
    assert module.doc.position(conv1) == position  # the layer kept its place and id
    assert module.undo_stack.undoText() == "Edit prototxt"

    broken = text_view.editor.toPlainText().replace('name: "conv2"', 'nme: "conv2"')
    text_view.editor.setPlainText(broken)
    qtbot.waitUntil(lambda: text_view.error_line is not None, timeout=3000)
    line = next(i for i, t in enumerate(broken.splitlines(), 1) if 'nme: "conv2"' in t)
    assert text_view.error_line == line
    assert f":{line}:" in text_view.status.text() and "nme" in text_view.status.text()
    assert module.doc.find("conv2") is not None  # nothing changed

    module.undo_stack.undo()  # canvas → text
    assert module.doc.layer_view(conv1).convolution_param.num_output == 20
    qtbot.waitUntil(lambda: "num_output: 20" in text_view.editor.toPlainText(), timeout=3000)


def test_compare_shows_added_and_changed_layers(module, tmp_path: Path) -> None:
    module.library.open_requested.emit("lenet")
    saved = tmp_path / "saved.prototxt"
    write_net(module.doc.to_net(), saved)
    conv1 = module.doc.find("conv1")
    layer = module.doc.layer(conv1)
    layer.convolution_param.num_output = 32
    module.editor.undo_stack.push(__import__(
        "dlp.gui.net.commands", fromlist=["SetLayerCommand"]).SetLayerCommand(
        module.doc, conv1, layer, "edit"))
    module.scene.select_nodes([conv1])
    module.editor.quick_add("Dropout", QPointF(0, 0))
    module.compare_with_file(str(saved))
    diff = module.compare_view.diff
    assert diff.added == ["drop1"] and list(diff.changed) == ["conv1"]
    assert "convolution_param.num_output: 20 → 32" in str(diff.changed["conv1"][0])
    listed = module.compare_view.list
    rows = [listed.item(i).text() for i in range(listed.count())]
    assert any(r.startswith("+ drop1") for r in rows)
    assert any(r.startswith("~ conv1") and "20 → 32" in r for r in rows)
    assert module.scene.node_item(module.doc.find("drop1")).look.diff == "added"
    assert module.scene.node_item(conv1).look.diff == "changed"
    module.clear_diff()
    assert module.scene.node_item(conv1).look.diff is None


def test_save_canvas_as_png_and_svg(module, tmp_path: Path) -> None:
    module.library.open_requested.emit("lenet")
    png = module.save_image(tmp_path / "net.png")
    image = QImage(str(png))
    assert image.width() > 300 and image.height() > 600  # the whole net, tall
    svg = module.save_image(tmp_path / "net.svg").read_text()
    assert svg.startswith("<?xml") and "conv1" in svg


def test_project_save_keeps_net_and_layout(qtbot, module, project_dir: Path) -> None:
    module.library.open_requested.emit("lenet")
    assert module.is_modified()
    conv1 = module.doc.find("conv1")
    module.editor.finish_move({conv1: module.doc.position(conv1)}, {conv1: (777.0, 55.0)})
    assert module.save() and not module.is_modified()
    files = module.autosave_files()
    assert set(files) == {"nets/train_val.prototxt", "nets/train_val.layout.json"}
    reopened = make_module(qtbot, project_dir)
    assert reopened.doc.to_net() == module.doc.to_net()
    assert reopened.doc.position(reopened.doc.find("conv1")) == (777.0, 55.0)
    assert not reopened.is_modified()


def test_follows_the_project_net_written_elsewhere_unless_edited(qtbot, module) -> None:
    net_path = Path(module.qt_project.net_path)
    write_net(read_net(FCN8S), net_path)
    module.qt_project.notify_net_changed()
    assert module.doc.to_net() == read_net(FCN8S) and not module.is_modified()
    module.editor.drop_layer_type("Dropout", QPointF(0, 0))
    lenet, _solver = __import__("dlp.net.library", fromlist=["load_entry"]).load_entry("lenet")
    write_net(lenet, net_path)
    module.qt_project.notify_net_changed()
    assert module.doc.find("drop1") is not None  # the user's unsaved edit is kept


def test_compare_two_files_lists_removed_and_moved_layers(module) -> None:
    lenet, _solver = __import__("dlp.net.library", fromlist=["load_entry"]).load_entry("lenet")
    newer = type(lenet)()
    newer.CopyFrom(lenet)
    names = [layer.name for layer in newer.layer]
    del newer.layer[names.index("pool2")]  # removed (conv2 feeds ip1 directly)
    newer.layer[names.index("ip1") - 1].bottom[0] = "conv2"
    diff = module.compare_view.compare(lenet, newer, "a.prototxt", "b.prototxt")
    assert diff.removed == ["pool2"] and diff.added == []
    assert "bottom: [pool2] → [conv2]" in str(diff.changed["ip1"][0])
    assert "1 removed" in module.compare_view.summary.text()
    assert len(module.compare_view.doc) == len(newer.layer)  # the newer net is drawn


def test_switching_to_a_project_without_a_net_starts_empty(module, tmp_path: Path) -> None:
    from dlp.project import Project

    module.library.open_requested.emit("lenet")
    module.save()
    module.qt_project.set_project(Project.create(tmp_path / "other"))
    assert len(module.doc) == 0 and not module.is_modified()
    assert module.scene.node_items() == []
