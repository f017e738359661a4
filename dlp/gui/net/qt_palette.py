"""The layer palette: every layer type by category, searchable, dragged onto the canvas.

A drag carries only the type name in a private MIME type; the canvas looks the type
up in dlp.net.specs on drop (Orange's habit).
"""

from __future__ import annotations

from PyQt5.QtCore import QMimeData, Qt, pyqtSignal
from PyQt5.QtGui import QBrush, QDrag, QPixmap
from PyQt5.QtWidgets import QLineEdit, QTreeWidget, QTreeWidgetItem, QVBoxLayout, QWidget

from dlp.gui.net import style
from dlp.gui.net.view import PALETTE_MIME
from dlp.net.specs import all_specs

TYPE_ROLE = Qt.UserRole + 1


def type_mime(type_name: str) -> QMimeData:
    mime = QMimeData()
    mime.setData(PALETTE_MIME, type_name.encode("utf-8"))
    return mime


class _PaletteTree(QTreeWidget):
    def startDrag(self, actions) -> None:
        item = self.currentItem()
        type_name = item.data(0, TYPE_ROLE) if item else None
        if not type_name:
            return
        drag = QDrag(self)
        drag.setMimeData(type_mime(type_name))
        chip = QPixmap(12, 12)
        chip.fill(item.foreground(0).color())
        drag.setPixmap(chip)
        drag.exec_(Qt.CopyAction)


class QtPalette(QWidget):
    """Signal ``type_activated(str)`` on double-click/Enter (add at the view's centre)."""

    type_activated = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Search layers…")
        self.search.setClearButtonEnabled(True)
        self.tree = _PaletteTree(self)
        self.tree.setHeaderHidden(True)
        self.tree.setDragEnabled(True)
        self.tree.setRootIsDecorated(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.tree)
        self._items: dict[str, QTreeWidgetItem] = {}
        self._populate()
        self.search.textChanged.connect(self._on_search_change)
        self.tree.itemActivated.connect(self._on_item_activated)

    def _populate(self) -> None:
        groups: dict[str, QTreeWidgetItem] = {}
        for category in style.CATEGORY_ORDER:
            group = QTreeWidgetItem(self.tree, [category])
            group.setFlags(Qt.ItemIsEnabled)
            font = group.font(0)
            font.setBold(True)
            group.setFont(0, font)
            group.setForeground(0, QBrush(style.category_color(category)))
            groups[category] = group
        for spec in all_specs():
            group = groups.get(spec.category)
            if group is None:
                continue
            item = QTreeWidgetItem(group, [spec.type])
            item.setData(0, TYPE_ROLE, spec.type)
            item.setToolTip(0, f"<b>{spec.type}</b> ({spec.category})<br>{spec.summary}")
            item.setForeground(0, QBrush(style.category_color(spec.category).darker(120)))
            item.setFlags(Qt.ItemIsEnabled | Qt.ItemIsSelectable | Qt.ItemIsDragEnabled)
            self._items[spec.type] = item
        for group in groups.values():
            group.setHidden(group.childCount() == 0)
        self.tree.expandAll()

    def types(self) -> list[str]:
        return list(self._items)

    def visible_types(self) -> list[str]:
        return [name for name, item in self._items.items() if not item.isHidden()]

    def item(self, type_name: str) -> QTreeWidgetItem:
        return self._items[type_name]

    def _on_search_change(self, text: str) -> None:
        needle = text.strip().lower()
        for name, item in self._items.items():
            haystack = f"{name} {item.toolTip(0)}".lower()
            item.setHidden(bool(needle) and needle not in haystack)
        root = self.tree.invisibleRootItem()
        for i in range(root.childCount()):
            group = root.child(i)
            group.setHidden(all(group.child(j).isHidden() for j in range(group.childCount())))

    def _on_item_activated(self, item: QTreeWidgetItem) -> None:
        type_name = item.data(0, TYPE_ROLE)
        if type_name:
            self.type_activated.emit(type_name)
