"""What a user sees on opening the Net tab: the net fitted and centred (or its top at a
readable zoom when it is tall), a compact Issues strip, and a readable comparison."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from PyQt5.QtCore import QCoreApplication

from dlp.gui.net.qt_net_module import COMPARE_HEIGHT
from dlp.gui.net.view import BAND_SCALE
from dlp.project import Project

pytestmark = pytest.mark.gui

SMALL_NET = """
name: "small"
layer { name: "data" type: "Input" top: "data"
        input_param { shape { dim: 1 dim: 1 dim: 32 dim: 32 } } }
layer { name: "conv1" type: "Convolution" bottom: "data" top: "conv1"
        convolution_param { num_output: 4 kernel_size: 3 pad: 1 } }
layer { name: "relu1" type: "ReLU" bottom: "conv1" top: "conv1" }
layer { name: "pool1" type: "Pooling" bottom: "conv1" top: "pool1"
        pooling_param { pool: MAX kernel_size: 2 stride: 2 } }
"""

VALID_NET = SMALL_NET + """
layer { name: "label" type: "Input" top: "label"
        input_param { shape { dim: 1 dim: 1 dim: 16 dim: 16 } } }
layer { name: "loss" type: "SoftmaxWithLoss" bottom: "pool1" bottom: "label" top: "loss" }
"""


def tall_net(depth: int = 40) -> str:
    layers = ['layer { name: "data" type: "Input" top: "data" '
              'input_param { shape { dim: 1 dim: 1 dim: 16 dim: 16 } } }']
    bottom = "data"
    for i in range(depth):
        layers.append(f'layer {{ name: "conv{i}" type: "Convolution" bottom: "{bottom}" '
                      f'top: "conv{i}" convolution_param {{ num_output: 2 kernel_size: 3 '
                      f'pad: 1 }} }}')
        bottom = f"conv{i}"
    return 'name: "tall"\n' + "\n".join(layers)


def settle(qtbot) -> None:
    qtbot.wait(20)  # the deferred dock sizing and fit run from the event loop
    QCoreApplication.processEvents()


def visible_rect(view):
    return view.mapToScene(view.viewport().rect()).boundingRect()


@pytest.fixture
def net_window(make_main_window, project_dir: Path, qtbot):
    """A 1280x820 main window on a project whose net is written before it opens."""

    def open_with(text: str):
        project = Project.open_or_create(project_dir)
        project.net_path.parent.mkdir(parents=True, exist_ok=True)
        project.net_path.write_text(text)
        window = make_main_window(project, modules=("Net",), show=False)
        window.resize(1280, 820)
        window.show()
        qtbot.waitExposed(window)
        settle(qtbot)
        return window, window.modules["Net"]

    return open_with


def test_opening_a_net_fits_all_of_it_centred(net_window, qtbot) -> None:
    _window, module = net_window(SMALL_NET)
    view, items = module.view, module.scene.itemsBoundingRect()
    shown = visible_rect(view)
    assert shown.contains(items)  # nothing cut off at an edge
    assert abs(shown.center().x() - items.center().x()) < 5
    assert abs(shown.center().y() - items.center().y()) < 5
    assert view.transform().m11() <= 1.0  # a small net is not blown up


def test_the_opening_fit_follows_the_window_until_the_user_zooms(net_window, qtbot) -> None:
    window, module = net_window(SMALL_NET)
    before = module.view.transform().m11()
    window.resize(1100, 960)
    settle(qtbot)
    assert visible_rect(module.view).contains(module.scene.itemsBoundingRect())
    assert module.view.transform().m11() != pytest.approx(before)  # fitted again
    module.view.zoom_in()
    scale = module.view.transform().m11()
    window.resize(1200, 800)
    settle(qtbot)
    assert module.view.transform().m11() == pytest.approx(scale)  # the user's zoom stays
    assert not module.view.start_pending


def test_a_tall_net_opens_on_its_top_as_wide_as_it_is(net_window, qtbot) -> None:
    _window, module = net_window(tall_net())
    view, items = module.view, module.scene.itemsBoundingRect()
    shown = visible_rect(view)
    assert view.transform().m11() >= BAND_SCALE  # readable, not a thumbnail of 41 layers
    assert shown.top() <= items.top() < shown.bottom()  # the input is in view
    assert shown.left() <= items.left() and items.right() <= shown.right()
    data = module.scene.node_item(module.doc.find("data")).sceneBoundingRect()
    assert shown.contains(data)


def test_issues_strip_is_small_and_says_when_all_is_well(net_window, qtbot) -> None:
    window, module = net_window(VALID_NET)
    issues = module.docks["Issues"]
    assert issues.height() < window.height() / 6  # the canvas gets the room
    assert module.view.height() > 2 * issues.height()
    texts = [module.issues.item(i).text() for i in range(module.issues.count())]
    assert texts == ["✔ No problems found in the TRAIN phase."]
    status = module.status.text()
    assert "6 layers" in status and " FLOPs" in status and "TRAIN phase" in status
    assert not re.search(r"\d[KMG]?FLOPs", status)  # "1.0 GFLOPs", never "1.0GFLOPs"


def test_an_invalid_net_lists_its_issue_instead_of_the_all_clear(net_window, qtbot) -> None:
    _window, module = net_window(SMALL_NET.replace('bottom: "conv1" top: "pool1"',
                                                   'bottom: "nowhere" top: "pool1"'))
    texts = [module.issues.item(i).text() for i in range(module.issues.count())]
    assert any("pool1" in text for text in texts)
    assert not any("No problems" in text for text in texts)


def test_a_comparison_gets_room_and_shows_the_first_change(net_window, qtbot) -> None:
    from dlp.net.prototxt import parse_net_text

    _window, module = net_window(SMALL_NET)
    strip = module.docks["Compare"].height()
    older = parse_net_text(SMALL_NET.replace("num_output: 4", "num_output: 8"), "older")
    diff = module.compare_with(older, "older.prototxt")
    settle(qtbot)
    assert list(diff.changed) == ["conv1"]
    assert module.docks["Compare"].height() >= max(2 * strip, COMPARE_HEIGHT * 0.8)
    compare = module.compare_view
    assert "1 changed" in compare.summary.text()
    conv = compare.scene.node_item(compare.doc.find("conv1")).sceneBoundingRect()
    assert visible_rect(compare.view).intersects(conv)  # the change is in view, not a speck
    assert "num_output" in compare.list.item(0).text()


def test_long_edges_do_not_push_the_layout_wide(qapp) -> None:
    """The canvas draws each edge as one curve, so the room the layout reserves for a long
    edge (label Data layer → loss at the bottom) must not spread the nodes apart."""
    from dlp.gui.net import style
    from dlp.gui.net.scene import layout_positions
    from dlp.net.document import NetDocument
    from dlp.net.prototxt import read_net
    from tests.gui.net_support import ROOT

    doc = NetDocument()
    doc.set_net(read_net(ROOT / "netlib" / "sunnybrook-fcn" / "train_val.prototxt"))
    xs = [x for x, _y in layout_positions(doc).values()]
    column = style.NODE_WIDTH + style.COLUMN_SPACING
    # its four Data layers (train/val images and labels) side by side, and no more
    assert max(xs) - min(xs) <= 3 * column + style.NODE_WIDTH
