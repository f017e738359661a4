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
        self.summary = QLabel("Compare the current net with a saved one, or two files.", self)
        self.summary.setWordWrap(True)
        self.list = QListWidget(self)
        current = QPushButton("Current net vs file…", self)
        two = QPushButton("Two files…", self)
        current.clicked.connect(self._on_current_clicked)
        two.clicked.connect(self._on_two_clicked)
        clear = QPushButton("Clear highlights", self)
        clear.setToolTip("Remove the comparison colours from the canvas")
        clear.clicked.connect(self.clear_requested.emit)
        self.list.itemClicked.connect(
            lambda item: self.layer_clicked.emit(item.data(NAME_ROLE) or ""))
        buttons = QHBoxLayout()
        buttons.addWidget(current)
        buttons.addWidget(two)
        buttons.addWidget(clear)
        buttons.addStretch(1)
        left = QWidget(self)
        column = QVBoxLayout(left)
        column.setContentsMargins(0, 0, 0, 0)
        column.addLayout(buttons)
        column.addWidget(self.summary)
        column.addWidget(self.list, 1)
        splitter = QSplitter(Qt.Horizontal, self)
        splitter.addWidget(left)
        splitter.addWidget(self.view)
        splitter.setSizes([260, 400])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

    def sizeHint(self) -> QSize:
        return QSize(600, 90)

    def compare(self, old: Any, new: Any, old_label: str = "old",
                new_label: str = "new") -> NetDiff:
        """Show what changed from ``old`` to ``new``; returns the diff."""
        self.diff = diff_nets(old, new)
        self.doc.set_net(new)
        self.doc.set_positions(layout_positions(self.doc))
        self.scene.set_diff_marks(diff_marks(self.doc, self.diff))
        self.view.fitInView(self.scene.itemsBoundingRect(), Qt.KeepAspectRatio)
        diff = self.diff
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
                item.setForeground(QBrush(colors[sign].darker(115)))
            self.list.addItem(item)
        return diff

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
