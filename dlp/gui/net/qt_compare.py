"""Compare two nets: a list of layers added, removed and changed (which parameters),
with the newer net drawn beside it and the differences highlighted."""

from __future__ import annotations

from typing import Any

from PyQt5.QtCore import QSize, Qt, pyqtSignal
from PyQt5.QtGui import QBrush
from PyQt5.QtWidgets import (
    QFileDialog,
    QGraphicsView,
    QHBoxLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from dlp.errors import DLPError
from dlp.gui.net import style
from dlp.gui.net.net_diff import NetDiff, diff_nets
from dlp.gui.net.scene import NetScene, layout_positions
from dlp.net.document import NetDocument

NAME_ROLE = Qt.UserRole + 1
FOCUS_SCALE = 0.6  # the drawing beside the list is a strip: show one layer readably
INTRO = ("Find what changed between two nets: added layers turn green, changed ones amber; "
         "every difference is listed here.")


def diff_marks(doc: NetDocument, diff: NetDiff) -> dict[int, str]:
    """Node id → "added"/"changed" for the layers of ``doc`` (the newer net)."""
    marks = {}
    for node_id in doc.node_ids():
        name = doc.layer_view(node_id).name
        if name in diff.added:
            marks[node_id] = "added"
        elif name in diff.changed:
            marks[node_id] = "changed"
    return marks


class QtCompareView(QWidget):
    """Signals: ``compare_current_requested(str path)`` (current net vs a file),
    ``layer_clicked(str name)``, ``clear_requested()``."""

    compare_current_requested = pyqtSignal(str)
    layer_clicked = pyqtSignal(str)
    clear_requested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.diff: NetDiff | None = None
        self.doc = NetDocument()
        self.scene = NetScene(self)
        self.scene.set_document(self.doc)
        self.view = QGraphicsView(self.scene, self)
        self.view.setBackgroundBrush(QBrush(style.CANVAS_BACKGROUND))
        self.view.setDragMode(QGraphicsView.ScrollHandDrag)
        self.summary = QLabel(INTRO, self)
        self.summary.setWordWrap(True)
        self.summary.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self.list = QListWidget(self)
        current = QPushButton("Current net vs file…", self)
        current.setToolTip("Compare the net on the canvas with a saved .prototxt")
        two = QPushButton("Two files…", self)
        two.setToolTip("Compare two saved .prototxt files (older first, then newer)")
        current.clicked.connect(self._on_current_clicked)
        two.clicked.connect(self._on_two_clicked)
        clear = QPushButton("Clear highlights", self)
        clear.setToolTip("Remove the comparison colours from the canvas")
        clear.clicked.connect(self.clear_requested.emit)
        self.list.setWordWrap(True)
        self.list.itemClicked.connect(self._on_item_clicked)
        # The dock shares the window with the canvas: everything here may shrink to a
        # strip (the net module enlarges the dock when a comparison is shown).
        for widget in (self.list, self.view):
            widget.setMinimumHeight(28)
        buttons = QHBoxLayout()
        buttons.addWidget(current)
        buttons.addWidget(two)
        buttons.addWidget(clear)
        buttons.addWidget(self.summary, 1)
        splitter = QSplitter(Qt.Horizontal, self)
        splitter.addWidget(self.list)
        splitter.addWidget(self.view)
        splitter.setSizes([640, 360])
        splitter.hide()  # nothing to list or draw until a comparison is made
        self.results = splitter
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.setSpacing(4)
        layout.addLayout(buttons)
        layout.addWidget(splitter, 1)
        layout.addStretch(0)  # keeps the buttons at the top while the results are hidden

    def sizeHint(self) -> QSize:
        return QSize(600, 90)

    def compare(self, old: Any, new: Any, old_label: str = "old",
                new_label: str = "new") -> NetDiff:
        """Show what changed from ``old`` to ``new``; returns the diff."""
        self.diff = diff_nets(old, new)
        self.doc.set_net(new)
        self.doc.set_positions(layout_positions(self.doc))
        self.scene.set_diff_marks(diff_marks(self.doc, self.diff))
        self.results.show()
        diff = self.diff
        marked = [name for name in (*diff.added, *diff.changed) if self.doc.find(name) is not None]
        if marked:
            self.focus(marked[0])
        else:
            self.view.fitInView(self.scene.itemsBoundingRect(), Qt.KeepAspectRatio)
        self.summary.setText(
            f"<b>{old_label}</b> → <b>{new_label}</b>: {len(diff.added)} added, "
            f"{len(diff.removed)} removed, {len(diff.changed)} changed"
            + ("" if not diff.is_empty else " — the nets are the same"))
        self.list.clear()
        colors = {"+": style.DIFF_ADDED, "-": style.ERROR, "~": style.DIFF_CHANGED}
        rows = [("+", name, f"+ {name}  added") for name in diff.added]
        rows += [("-", name, f"- {name}  removed") for name in diff.removed]
        rows += [("~", name, f"~ {name}: " + "; ".join(str(c) for c in changes))
                 for name, changes in diff.changed.items()]
        rows += [("↕", name, f"↕ {name}  moved in the layer order") for name in diff.moved]
        for sign, name, text in rows:
            item = QListWidgetItem(text)
            item.setData(NAME_ROLE, name)
            item.setToolTip(text)
            if sign in colors:
                item.setForeground(QBrush(colors[sign].darker(140)))
            self.list.addItem(item)
        return diff

    def focus(self, name: str) -> bool:
        """Centre the drawing on layer ``name`` at a readable zoom; False if it is absent."""
        node_id = self.doc.find(name)
        if node_id is None:
            return False
        self.view.resetTransform()
        self.view.scale(FOCUS_SCALE, FOCUS_SCALE)
        self.view.centerOn(self.scene.node_item(node_id))
        return True

    def _on_item_clicked(self, item: QListWidgetItem) -> None:
        name = item.data(NAME_ROLE) or ""
        self.focus(name)
        self.layer_clicked.emit(name)

    def _on_current_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Compare the current net with…", "",
                                              "Caffe nets (*.prototxt);;All files (*)")
        if path:
            self.compare_current_requested.emit(path)

    def _on_two_clicked(self) -> None:
        from dlp.net.prototxt import read_net

        first, _ = QFileDialog.getOpenFileName(self, "Older net", "", "Caffe nets (*.prototxt)")
        if not first:
            return
        second, _ = QFileDialog.getOpenFileName(self, "Newer net", "", "Caffe nets (*.prototxt)")
        if not second:
            return
        try:
            self.compare(read_net(first), read_net(second), first, second)
        except DLPError as exc:
            self.summary.setText(f"<span style='color:#B00020'>{exc}</span>")
