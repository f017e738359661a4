"""The prototxt text of the net, kept in sync with the canvas both ways.

Canvas → text: the text is regenerated when the document changes (not while the user
is typing in it). Text → canvas: after a short pause in typing the text is parsed; a
parse error is shown at its line and nothing changes; a good parse replaces the net
as one undo step.
"""

from __future__ import annotations

from PyQt5.QtCore import QTimer, pyqtSignal
from PyQt5.QtGui import QColor, QFont, QTextCharFormat, QTextCursor, QTextFormat
from PyQt5.QtWidgets import QLabel, QPlainTextEdit, QTextEdit, QVBoxLayout, QWidget

from dlp.errors import DLPError
from dlp.net.document import NetDocument

DEBOUNCE_MS = 600


class QtTextView(QWidget):
    """Signal ``net_parsed(NetParameter)`` when the user's text parses to a different net."""

    net_parsed = pyqtSignal(object)

    def __init__(self, doc: NetDocument, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.doc = doc
        self.editor = QPlainTextEdit(self)
        mono = QFont("DejaVu Sans Mono")
        mono.setPointSizeF(9)
        self.editor.setFont(mono)
        self.editor.setLineWrapMode(QPlainTextEdit.NoWrap)
        self.status = QLabel(self)
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.editor, 1)
        layout.addWidget(self.status)
        self.error_line: int | None = None
        self._stale = True
        self._setting = False
        self._parse_timer = QTimer(self)
        self._parse_timer.setSingleShot(True)
        self._parse_timer.setInterval(DEBOUNCE_MS)
        self._parse_timer.timeout.connect(self.parse_now)
        self._refresh_timer = QTimer(self)
        self._refresh_timer.setSingleShot(True)
        self._refresh_timer.setInterval(200)
        self._refresh_timer.timeout.connect(self._on_refresh_due)
        self.editor.textChanged.connect(self._on_text_change)
        doc.changed.connect(self._on_doc_change)
        self.refresh()

    def _on_doc_change(self) -> None:
        # Regenerating a big net's text takes a while: batch bursts of edits into one.
        self._stale = True
        if self.is_shown() and not self._parse_timer.isActive() and not self.editor.hasFocus():
            self._refresh_timer.start()

    def is_shown(self) -> bool:
        """Really on screen: a dock tabbed behind another still reports isVisible()."""
        return self.isVisible() and not self.visibleRegion().isEmpty()

    def refresh_if_stale(self) -> None:
        if self._stale and not self._parse_timer.isActive():
            self.refresh()

    def _on_refresh_due(self) -> None:
        if self._stale and not self._parse_timer.isActive() and not self.editor.hasFocus():
            self.refresh()

    def showEvent(self, event) -> None:
        super().showEvent(event)
        if self._stale:
            self.refresh()

    def refresh(self) -> None:
        """Regenerate the text from the document (keeps the scroll position)."""
        from dlp.net.prototxt import net_to_text

        text = net_to_text(self.doc.to_net())
        self._stale = False
        if text == self.editor.toPlainText():
            return
        scroll = self.editor.verticalScrollBar().value()
        self._setting = True
        try:
            self.editor.setPlainText(text)
        finally:
            self._setting = False
        self.editor.verticalScrollBar().setValue(scroll)
        self._show_error(None, "")

    def _on_text_change(self) -> None:
        if not self._setting:
            self._parse_timer.start()

    def parse_now(self) -> bool:
        """Parse the text; True when it is a valid net (sent on if it differs)."""
        from dlp.net.prototxt import PrototxtError, parse_net_text

        self._parse_timer.stop()
        try:
            net = parse_net_text(self.editor.toPlainText(), "prototxt")
        except PrototxtError as exc:
            self._show_error(getattr(exc, "line", None), str(exc))
            return False
        except DLPError as exc:
            self._show_error(None, str(exc))
            return False
        self._show_error(None, "")
        if net != self.doc.to_net():
            self.net_parsed.emit(net)
        return True

    def _show_error(self, line: int | None, message: str) -> None:
        self.error_line = line
        self.status.setText(message)
        self.status.setStyleSheet("color: #B00020;" if message else "")
        selections = []
        if line is not None and line >= 1:
            block = self.editor.document().findBlockByLineNumber(line - 1)
            if block.isValid():
                selection = QTextEdit.ExtraSelection()
                fmt = QTextCharFormat()
                fmt.setBackground(QColor("#FDDDE1"))
                fmt.setProperty(QTextFormat.FullWidthSelection, True)
                selection.format = fmt
                selection.cursor = QTextCursor(block)
                selections.append(selection)
        self.editor.setExtraSelections(selections)
