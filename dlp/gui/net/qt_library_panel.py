"""The Net Library panel: built-in architectures and the user's own nets, each with a
thumbnail of its canvas and a description; drag one onto the canvas or open it."""

from __future__ import annotations

from pathlib import Path

from PyQt5.QtCore import QMimeData, QRectF, QSize, Qt, pyqtSignal
from PyQt5.QtGui import QColor, QDrag, QIcon, QPainter, QPixmap
from PyQt5.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListView,
    QListWidget,
    QListWidgetItem,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from dlp.errors import DLPError
from dlp.gui.net import style
from dlp.gui.net.library_glue import library_paths, load_library_net
from dlp.gui.net.scene import NetScene, layout_positions
from dlp.gui.net.view import LIBRARY_MIME
from dlp.net.document import NetDocument
from dlp.net.library import LibraryEntry

KEY_ROLE = Qt.UserRole + 1  # the entry name
DESCRIPTION_ROLE = Qt.UserRole + 2
# Thumbnails by (net file, modification time): rendering one means laying the net out,
# so every panel of the process shares them.
_THUMBNAILS: dict[tuple[str, float], QPixmap] = {}
THUMBNAIL = QSize(96, 120)
LIST_ICON = QSize(48, 60)


def library_items(paths: list[Path]) -> tuple[list[LibraryEntry], list[str]]:
    """The entries found under ``paths`` and the problems of any broken ones."""
    from dlp.net.library import LibraryError, list_entries

    errors: list[LibraryError] = []
    entries = list_entries(paths, errors=errors)
    return entries, [str(e) for e in errors]


def render_thumbnail(net, size: QSize = THUMBNAIL) -> QPixmap:
    """The net's canvas rendered into a small pixmap."""
    doc = NetDocument(net)
    doc.set_positions(layout_positions(doc))
    scene = NetScene()
    scene.show_shapes = False
    scene.set_document(doc)
    scene.set_item_caching(False)
    pixmap = QPixmap(size)
    pixmap.fill(style.CANVAS_BACKGROUND)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.Antialiasing)
    source = scene.itemsBoundingRect().adjusted(-20, -20, 20, 20)
    scene.render(painter, QRectF(2, 2, size.width() - 4, size.height() - 4), source,
                 Qt.KeepAspectRatio)
    painter.setPen(QColor("#C9CED6"))
    painter.drawRect(0, 0, size.width() - 1, size.height() - 1)
    painter.end()
    scene.deleteLater()
    return pixmap


class _LibraryList(QListWidget):
    def startDrag(self, actions) -> None:
        item = self.currentItem()
        if item is None:
            return
        mime = QMimeData()
        mime.setData(LIBRARY_MIME, item.data(KEY_ROLE).encode("utf-8"))
        drag = QDrag(self)
        drag.setMimeData(mime)
        drag.setPixmap(item.icon().pixmap(THUMBNAIL / 2))
        drag.exec_(Qt.CopyAction)


class QtLibraryPanel(QWidget):
    """Signals ``open_requested(name)``, ``save_requested()`` ("save to my library")."""

    open_requested = pyqtSignal(str)
    save_requested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.user_dir: Path | None = None
        self.list = _LibraryList(self)
        # A list (thumbnail left, title and task right) reads better in a narrow dock
        # than an icon grid, whose captions get cut to "AlexNet …".
        self.list.setViewMode(QListView.ListMode)
        self.list.setIconSize(LIST_ICON)
        self.list.setSpacing(2)
        self.list.setResizeMode(QListView.Adjust)
        self.list.setMovement(QListView.Static)
        self.list.setDragEnabled(True)
        self.list.setWordWrap(True)
        self.details = QLabel("Drag an entry onto the canvas, or double-click to open it.", self)
        self.details.setWordWrap(True)
        self.details.setMinimumHeight(60)
        self.details.setAlignment(Qt.AlignTop | Qt.AlignLeft)
        self.list.currentItemChanged.connect(self._on_current_change)
        self.list.itemDoubleClicked.connect(lambda item: self.open_requested.emit(
            item.data(KEY_ROLE)))
        open_button = QPushButton("Open", self)
        open_button.setToolTip("Replace the current net with the selected entry (undoable)")
        open_button.clicked.connect(self._on_open_clicked)
        save_button = QPushButton("Save current…", self)
        save_button.setToolTip("Keep the net on the canvas as an entry of my library "
                               "(this project's nets/library)")
        save_button.clicked.connect(self.save_requested.emit)
        buttons = QHBoxLayout()
        buttons.addWidget(open_button)
        buttons.addWidget(save_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.list, 1)
        layout.addWidget(self.details)
        layout.addLayout(buttons)

    def set_user_dir(self, user_dir: Path | None) -> None:
        self.user_dir = user_dir
        self.reload()

    def paths(self) -> list[Path]:
        return library_paths(self.user_dir)

    def reload(self) -> None:
        self.list.clear()
        try:
            entries, problems = library_items(self.paths())
        except DLPError as exc:
            entries, problems = [], [str(exc)]
        user_root = Path(self.user_dir).resolve() if self.user_dir else None
        for entry in entries:
            mine = user_root is not None and Path(entry.path).resolve().parent == user_root
            title = f"{entry.title} (mine)" if mine else entry.title
            item = QListWidgetItem(f"{title}\n{entry.task}" if entry.task else title)
            item.setData(KEY_ROLE, entry.name)
            item.setData(DESCRIPTION_ROLE, f"<b>{title}</b><br>{entry.description}")
            item.setToolTip(f"<b>{title}</b><br>{entry.description}<br>"
                            "<i>Drag onto the canvas to add its layers, double-click to open</i>")
            item.setIcon(QIcon(self._thumbnail(entry)))
            self.list.addItem(item)
        for problem in problems:
            item = QListWidgetItem(f"⚠ {problem}")
            item.setFlags(Qt.ItemIsEnabled)
            self.list.addItem(item)

    def entry_names(self) -> list[str]:
        return [key for i in range(self.list.count())
                if (key := self.list.item(i).data(KEY_ROLE))]

    def _thumbnail(self, entry: LibraryEntry) -> QPixmap:
        net_path = Path(entry.net_path)
        try:
            key = (str(net_path), net_path.stat().st_mtime)
        except OSError:
            key = (str(net_path), 0.0)
        if key not in _THUMBNAILS:
            try:
                net, _, _ = load_library_net(entry.name, self.paths())
                _THUMBNAILS[key] = render_thumbnail(net)
            except DLPError:
                pixmap = QPixmap(THUMBNAIL)
                pixmap.fill(QColor("#EEE"))
                _THUMBNAILS[key] = pixmap
        return _THUMBNAILS[key]

    def _on_current_change(self, item: QListWidgetItem | None) -> None:
        if item is not None and item.data(DESCRIPTION_ROLE):
            self.details.setText(item.data(DESCRIPTION_ROLE))

    def _on_open_clicked(self) -> None:
        item = self.list.currentItem()
        if item is not None:
            self.open_requested.emit(item.data(KEY_ROLE))
