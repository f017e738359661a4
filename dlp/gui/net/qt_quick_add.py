"""Quick add: a searchable popup (Tab or double-click on the canvas) that adds a layer
at the cursor, wired to the selected layer's top."""

from __future__ import annotations

from PyQt5.QtCore import QPoint, Qt, pyqtSignal
from PyQt5.QtGui import QBrush, QKeyEvent
from PyQt5.QtWidgets import QFrame, QLineEdit, QListWidget, QListWidgetItem, QVBoxLayout, QWidget

from dlp.gui.net import style
from dlp.net.specs import all_specs


class QtQuickAdd(QFrame):
    """Signal ``chosen(type_name)``; type to filter, Enter to add, Esc to close."""

    chosen = pyqtSignal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent, Qt.Popup)
        self.setFrameShape(QFrame.StyledPanel)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Add layer…")
        self.list = QListWidget(self)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.search)
        layout.addWidget(self.list)
        self.resize(260, 320)
        for spec in all_specs():
            item = QListWidgetItem(f"{spec.type}   ·  {spec.category}")
            item.setData(Qt.UserRole, spec.type)
            item.setToolTip(spec.summary)
            item.setForeground(QBrush(style.category_color(spec.category).darker(120)))
            self.list.addItem(item)
        self.search.textChanged.connect(self._on_search_change)
        self.search.returnPressed.connect(self._on_return)
        self.list.itemActivated.connect(self._on_item_activated)
        self.search.installEventFilter(self)

    def popup(self, global_pos: QPoint) -> None:
        self.search.clear()
        self._on_search_change("")
        self.move(global_pos)
        self.show()
        self.search.setFocus()

    def visible_types(self) -> list[str]:
        return [self.list.item(i).data(Qt.UserRole) for i in range(self.list.count())
                if not self.list.item(i).isHidden()]

    def _on_search_change(self, text: str) -> None:
        """Show the matching types, those whose name starts with the text first."""
        needle = text.strip().lower()

        def rank(item: QListWidgetItem) -> tuple[int, str]:
            name = item.data(Qt.UserRole).lower()
            return (0 if name.startswith(needle) else 1 if needle in name else 2, name)

        items = [self.list.takeItem(0) for _ in range(self.list.count())]
        for item in sorted(items, key=rank):
            self.list.addItem(item)
            item.setHidden(bool(needle) and needle not in item.text().lower()
                           and needle not in item.toolTip().lower())
        first = next((self.list.item(i) for i in range(self.list.count())
                      if not self.list.item(i).isHidden()), None)
        self.list.setCurrentItem(first)

    def eventFilter(self, watched, event) -> bool:
        if watched is self.search and isinstance(event, QKeyEvent) and \
                event.type() == QKeyEvent.KeyPress and event.key() in (Qt.Key_Down, Qt.Key_Up):
            self.list.keyPressEvent(event)
            return True
        return super().eventFilter(watched, event)

    def _on_return(self) -> None:
        item = self.list.currentItem()
        if item is not None and not item.isHidden():
            self._on_item_activated(item)

    def _on_item_activated(self, item: QListWidgetItem) -> None:
        self.hide()
        self.chosen.emit(item.data(Qt.UserRole))
