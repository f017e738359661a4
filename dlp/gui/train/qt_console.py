"""The raw training log: read-only, searchable, copyable, bounded in memory."""

from __future__ import annotations

from PyQt5.QtCore import Qt
from PyQt5.QtGui import QFont, QFontDatabase, QKeySequence, QTextCursor, QTextDocument
from PyQt5.QtWidgets import (
    QApplication,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QShortcut,
    QVBoxLayout,
    QWidget,
)

#: lines kept; older ones scroll away (the full log stays in the run folder)
MAX_LINES = 20000


class QtConsole(QWidget):
    """Appends log lines; Ctrl+F finds text, Enter finds the next match."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.text = QPlainTextEdit(self)
        self.text.setReadOnly(True)
        self.text.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.text.setMaximumBlockCount(MAX_LINES)
        self.text.setUndoRedoEnabled(False)
        self.text.setTextInteractionFlags(Qt.TextSelectableByMouse | Qt.TextSelectableByKeyboard)
        font = QFontDatabase.systemFont(QFontDatabase.FixedFont)
        font.setStyleHint(QFont.Monospace)
        self.text.setFont(font)
        self.search = QLineEdit(self)
        self.search.setPlaceholderText("Find in log (Enter = next, Shift+Enter = previous)")
        self.search.setClearButtonEnabled(True)
        self.search.returnPressed.connect(self.find_next)
        self.status = QLabel(self)
        self.copy_button = QPushButton("Copy all", self)
        self.copy_button.setToolTip("Copy the whole log to the clipboard")
        self.copy_button.clicked.connect(self.copy_all)
        bar = QHBoxLayout()
        bar.setContentsMargins(0, 0, 0, 0)
        bar.addWidget(self.search, 1)
        bar.addWidget(self.status)
        bar.addWidget(self.copy_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addLayout(bar)
        layout.addWidget(self.text, 1)
        QShortcut(QKeySequence.Find, self, self._focus_search)
        QShortcut(QKeySequence("Shift+Return"), self.search, lambda: self.find_next(True))

    def append_lines(self, lines: list[str]) -> None:
        """Add lines at the end; keeps the view at the bottom only if it was there."""
        if not lines:
            return
        bar = self.text.verticalScrollBar()
        at_bottom = bar.value() >= bar.maximum() - 2
        cursor = QTextCursor(self.text.document())
        cursor.movePosition(QTextCursor.End)
        prefix = "\n" if not self.text.document().isEmpty() else ""
        cursor.insertText(prefix + "\n".join(lines))
        if at_bottom:
            bar.setValue(bar.maximum())

    def clear(self) -> None:
        self.text.clear()
        self.status.clear()

    def plain_text(self) -> str:
        return self.text.toPlainText()

    def copy_all(self) -> None:
        QApplication.clipboard().setText(self.plain_text())

    def _focus_search(self) -> None:
        self.search.setFocus()
        self.search.selectAll()

    def find_next(self, backward: bool = False) -> bool:
        """Select the next occurrence of the search text (wrapping); False if none."""
        needle = self.search.text()
        if not needle:
            return False
        flags = QTextDocument.FindBackward if backward else QTextDocument.FindFlags()
        found = self.text.find(needle, flags)
        if not found:
            cursor = self.text.textCursor()
            cursor.movePosition(QTextCursor.End if backward else QTextCursor.Start)
            self.text.setTextCursor(cursor)
            found = self.text.find(needle, flags)
        self.status.setText("" if found else "not found")
        return found
