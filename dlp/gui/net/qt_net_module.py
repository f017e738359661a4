"""QtNetModule: the Net tab — palette, canvas, property panel, text view, library,
issues, history and compare, around one NetEditor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PyQt5.QtCore import QMimeData, QPointF, QRectF, QSize, Qt, QTimer
from PyQt5.QtGui import QImage, QKeySequence, QPainter
from PyQt5.QtSvg import QSvgGenerator
from PyQt5.QtWidgets import (
    QAction,
    QApplication,
    QComboBox,
    QDockWidget,
    QFileDialog,
    QHBoxLayout,
    QInputDialog,
    QLabel,
    QLineEdit,
    QListWidget,
    QListWidgetItem,
    QMainWindow,
    QMenu,
    QSizePolicy,
    QToolBar,
    QUndoView,
    QVBoxLayout,
    QWidget,
)

from dlp.errors import DLPError
from dlp.fsutil import atomic_path, atomic_write_text
from dlp.gui.net import style
from dlp.gui.net.analysis import NetAnalysis, human
from dlp.gui.net.commands import SetHeaderCommand, SetLayerCommand
from dlp.gui.net.editor import LAYERS_MIME, NetEditor
from dlp.gui.net.library_glue import save_user_library_entry
from dlp.gui.net.placement import read_layout
from dlp.gui.net.qt_compare import QtCompareView, diff_marks
from dlp.gui.net.qt_layer_editor import QtLayerEditor
from dlp.gui.net.qt_library_panel import QtLibraryPanel
from dlp.gui.net.qt_palette import QtPalette
from dlp.gui.net.qt_quick_add import QtQuickAdd
from dlp.gui.net.qt_text_view import QtTextView
from dlp.gui.net.view import NetView
from dlp.proto import caffe_pb2

ISSUE_NODE_ROLE = Qt.UserRole + 1
COMPARE_HEIGHT = 260  # the bottom dock's height while a comparison is shown


class _CompactList(QListWidget):
    """The issues list: asks for little height, the canvas gets the rest."""

    def sizeHint(self) -> QSize:
        return QSize(400, 56)


class QtNetModule(QWidget):
    """The visual network editor. ``undo_stack`` feeds the main window's Edit menu."""

    def __init__(self, qt_project: Any = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.qt_project = qt_project
        self.editor = NetEditor(self)
        self.undo_stack = self.editor.undo_stack
        self.doc = self.editor.doc
        self.scene = self.editor.scene
        self.view = NetView(self.editor)
        self.window = QMainWindow(self)
        self.window.setWindowFlags(Qt.Widget)
        self.window.setDockNestingEnabled(True)
        self.window.setCentralWidget(self.view)
        self.palette = QtPalette()
        self.library = QtLibraryPanel()
        self.layer_editor = QtLayerEditor()
        self.layer_editor.taken_names = self._taken_names
        self.text_view = QtTextView(self.doc)
        self.history = QUndoView(self.undo_stack)
        self.history.setEmptyLabel("Opened net")
        self.issues = _CompactList()
        self.compare_view = QtCompareView()
        self.quick_add_popup = QtQuickAdd(self)
        self.status = QLabel()
        self.status.setContentsMargins(6, 2, 6, 2)
        # a long error must not widen the window: the full text is in the tooltip
        self.status.setSizePolicy(QSizePolicy.Ignored, QSizePolicy.Preferred)
        self._quick_add_at = QPointF()
        self.docks: dict[str, QDockWidget] = {}
        left = [self._dock("Layers", self.palette, Qt.LeftDockWidgetArea),
                self._dock("Net Library", self.library, Qt.LeftDockWidgetArea)]
        right = [self._dock("Properties", self.layer_editor, Qt.RightDockWidgetArea),
                 self._dock("Prototxt", self.text_view, Qt.RightDockWidgetArea),
                 self._dock("History", self.history, Qt.RightDockWidgetArea)]
        bottom = [self._dock("Issues", self.issues, Qt.BottomDockWidgetArea),
                  self._dock("Compare", self.compare_view, Qt.BottomDockWidgetArea)]
        for group in (left, right, bottom):
            for dock in group[1:]:
                self.window.tabifyDockWidget(group[0], dock)
            group[0].raise_()
        self._dock_groups = (left, right, bottom)
        self.actions_by_name: dict[str, QAction] = {}
        self.toolbar = self._build_toolbar()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(0)
        layout.addWidget(self.toolbar)
        layout.addWidget(self.window, 1)
        strip = QHBoxLayout()
        strip.setContentsMargins(0, 0, 6, 0)
        strip.addWidget(self.status, 1)
        strip.addWidget(QLabel("Phase"))
        strip.addWidget(self.phase_combo)
        strip.addSpacing(8)
        strip.addWidget(QLabel("Data C,H,W"))
        strip.addWidget(self.data_shape_edit)
        layout.addLayout(strip)
        self._connect()
        self.current_path: Path | None = None
        self.load_project_net()

    def resizeEvent(self, event) -> None:
        super().resizeEvent(event)
        # QMainWindow shares a resize between the canvas and the docks; until the user
        # has seen the window, keep the side panels and the issues strip at their sizes
        # (they only take once the window is laid out, hence the deferred call).
        if self._dock_groups is not None:
            QTimer.singleShot(0, self._size_docks)

    def _size_docks(self) -> None:
        if self._dock_groups is None:
            return
        left, right, bottom = self._dock_groups
        self.window.resizeDocks([left[0], right[0]], [230, 400], Qt.Horizontal)
        self.window.resizeDocks([bottom[0]], [80], Qt.Vertical)
        if self.isVisible() and self.window.isVisible():
            QTimer.singleShot(1500, self._stop_sizing_docks)

    def _stop_sizing_docks(self) -> None:
        self._dock_groups = None

    # -- construction --------------------------------------------------------------
    def _dock(self, title: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self.window)
        dock.setObjectName(f"net-{title.lower().replace(' ', '-')}")
        dock.setWidget(widget)
        dock.setFeatures(QDockWidget.DockWidgetMovable | QDockWidget.DockWidgetFloatable)
        self.window.addDockWidget(area, dock)
        self.docks[title] = dock
        return dock

    def _action(self, name: str, text: str, slot, shortcut: Any = None,
                tip: str = "") -> QAction:
        action = QAction(text, self)
        action.triggered.connect(lambda _=False: slot())
        if shortcut is not None:
            action.setShortcut(QKeySequence(shortcut))
            action.setShortcutContext(Qt.WidgetWithChildrenShortcut)
            self.addAction(action)
        action.setToolTip(tip or text)
        self.actions_by_name[name] = action
        return action

    def _build_toolbar(self) -> QToolBar:
        bar = QToolBar("Net", self)
        bar.setIconSize(QSize(16, 16))
        bar.setToolButtonStyle(Qt.ToolButtonTextOnly)
        undo = self.undo_stack.createUndoAction(self, "Undo")
        redo = self.undo_stack.createRedoAction(self, "Redo")
        self.actions_by_name.update(undo=undo, redo=redo)
        for item in (
            self._action("import", "Import…", self._on_import_clicked, QKeySequence.Open,
                         "Open any .prototxt (V1 or V2) with an automatic layout"),
            self._action("save", "Save", self.save, QKeySequence.Save,
                         "Save the net into the project (nets/train_val.prototxt)"),
            self._action("export", "Export…", self._on_export_clicked, None,
                         "Write train_val.prototxt and the derived deploy.prototxt"),
            self._action("image", "Save image…", self._on_image_clicked, None,
                         "Save the canvas as PNG or SVG"),
            None,
            self._action("delete", "Delete", self.editor.delete_selected, QKeySequence.Delete),
            self._action("copy", "Copy", self.copy_selection, QKeySequence.Copy),
            self._action("paste", "Paste", self.paste, QKeySequence.Paste),
            self._action("duplicate", "Duplicate", self.editor.duplicate_selected, "Ctrl+D"),
            None,
            self._action("zoom_in", "Zoom +", self.view.zoom_in, QKeySequence.ZoomIn),
            self._action("zoom_out", "Zoom -", self.view.zoom_out, QKeySequence.ZoomOut),
            self._action("fit", "Fit", self.view.fit_all, "Ctrl+0", "Show the whole net"),
            self._action("layout", "Auto layout", self.editor.auto_layout, "Ctrl+L",
                         "Lay the net out top to bottom again (undoable)"),
        ):
            if item is None:
                bar.addSeparator()
            else:
                bar.addAction(item)
        # The phase and data-shape controls steer the analysis: they sit in the bottom
        # strip next to its summary (and keep the toolbar within a 1280-px window).
        self.phase_combo = QComboBox(self)
        self.phase_combo.addItems(["TRAIN", "TEST"])
        self.phase_combo.setToolTip("Shapes, parameters and checks are shown for this phase "
                                    "(Caffe's include/exclude phase rules)")
        self.phase_combo.currentTextChanged.connect(self.editor.set_phase)
        self.data_shape_edit = QLineEdit(self)
        self.data_shape_edit.setPlaceholderText("from dataset")
        self.data_shape_edit.setMaximumWidth(130)
        self.data_shape_edit.setToolTip(
            "One sample's channels, height, width for Data layers whose database is not\n"
            "built yet (e.g. 1,256,256). Empty: read from the dataset.")
        self.data_shape_edit.editingFinished.connect(self._on_data_shape_change)
        return bar

    def _connect(self) -> None:
        self.scene.selectionChanged.connect(self._on_selection_change)
        self.doc.layer_changed.connect(self._on_layer_change)
        self.doc.layer_removed.connect(self._on_layer_removed)
        self.doc.net_reset.connect(self._on_selection_change)
        self.layer_editor.layer_edited.connect(self._on_layer_edited)
        self.layer_editor.net_edited.connect(self._on_net_edited)
        self.doc.changed.connect(self._on_doc_change)
        self.text_view.net_parsed.connect(self._on_text_parsed)
        self.docks["Prototxt"].visibilityChanged.connect(
            lambda shown: shown and self.text_view.refresh_if_stale())
        self.editor.analysis_ready.connect(self._on_analysis_ready)
        self.editor.message.connect(self.show_message)
        self.editor.data_shape_changed.connect(self._on_editor_data_shape_change)
        self.editor.quick_add_requested.connect(self._on_quick_add_requested)
        self.quick_add_popup.chosen.connect(self._on_quick_add_chosen)
        self.palette.type_activated.connect(self._on_palette_activated)
        self.library.open_requested.connect(self._on_library_open)
        self.library.save_requested.connect(self._on_save_to_library_clicked)
        self.issues.itemActivated.connect(self._on_issue_activated)
        self.issues.itemClicked.connect(self._on_issue_activated)
        self.compare_view.compare_current_requested.connect(self.compare_with_file)
        self.compare_view.layer_clicked.connect(self._on_compare_layer_clicked)
        self.compare_view.clear_requested.connect(self.clear_diff)
        self.view.setContextMenuPolicy(Qt.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._on_context_menu_requested)
        if self.qt_project is not None and hasattr(self.qt_project, "project_changed"):
            self.qt_project.project_changed.connect(self.load_project_net)
            self.qt_project.datasets_changed.connect(self._on_datasets_change)
            self.qt_project.net_changed.connect(self._on_project_net_change)

    # -- project -------------------------------------------------------------------
    def load_project_net(self) -> None:
        """Open the project's nets/train_val.prototxt (with its layout), if it has one."""
        from dlp.net.prototxt import read_net

        library_dir = getattr(self.qt_project, "library_dir", None)
        self.library.set_user_dir(Path(library_dir) if library_dir else None)
        self.editor.library_paths = self.library.paths()
        self._on_datasets_change()
        net_path = getattr(self.qt_project, "net_path", None)
        if net_path is None or not Path(net_path).is_file():
            self.undo_stack.clear()
            if len(self.doc) or self.doc.header() != caffe_pb2.NetParameter():
                self.doc.set_net(caffe_pb2.NetParameter())  # a new project starts empty
            self.current_path = None
            return
        try:
            net = read_net(net_path)
            positions = read_layout(Path(self.qt_project.layout_path))
        except DLPError as exc:
            self.show_message(str(exc))
            return
        self.current_path = Path(net_path)
        self.editor.replace_net(net, positions, "Open")
        self.undo_stack.clear()
        self.undo_stack.setClean()
        self.view.show_start()

    def _on_project_net_change(self) -> None:
        """Someone else wrote the project's net (the demo set-up, a run): follow it unless
        the user has unsaved edits here."""
        from dlp.net.prototxt import read_net

        net_path = Path(self.qt_project.net_path)
        if self.is_modified() or not net_path.is_file():
            return
        try:
            if read_net(net_path) == self.doc.to_net():
                return
        except DLPError:
            return
        self.load_project_net()

    def _on_datasets_change(self) -> None:
        """Data layer sources are relative to a dataset folder (as DIGITS writes them):
        shapes are read from the project's first dataset, else from the project root."""
        base = getattr(self.qt_project, "root", None)
        try:
            datasets = self.qt_project.datasets() if self.qt_project is not None else []
        except (DLPError, OSError):
            datasets = []
        usable = [entry for entry in datasets if entry.manifest is not None]
        if usable:
            base = usable[0].path
        self.editor.base_dir = Path(base) if base else None
        if len(self.doc):
            self.editor.run_analysis()

    def is_modified(self) -> bool:
        return not self.undo_stack.isClean()

    def autosave_files(self) -> dict[str, str]:
        """What ``save()`` would write, keyed by project-relative path (crash recovery)."""
        from dlp.net.prototxt import net_to_text

        project = self.qt_project.project
        return {project.relative(project.net_path): net_to_text(self.doc.to_net()),
                project.relative(project.layout_path): self.doc.layout_json()}

    def save(self) -> bool:
        """Write the net and its layout into the project; False when there is none."""
        from dlp.net.prototxt import write_net

        net_path = getattr(self.qt_project, "net_path", None)
        if net_path is None:
            self.show_message("no project is open: use Export… to write the net somewhere")
            return False
        try:
            write_net(self.doc.to_net(), net_path)
            atomic_write_text(self.qt_project.layout_path, self.doc.layout_json())
        except OSError as exc:
            raise DLPError(f"{net_path}: cannot write the net: {exc.strerror or exc}") from exc
        self.undo_stack.setClean()
        if hasattr(self.qt_project, "notify_net_changed"):
            self.qt_project.notify_net_changed()
        self.show_message(f"Saved {net_path}")
        return True

    # -- images --------------------------------------------------------------------
    def save_image(self, path: str | Path) -> Path:
        """The whole canvas as PNG (twice the resolution) or SVG, chosen by the suffix."""
        path = Path(path)
        source = self.scene.itemsBoundingRect().adjusted(-24, -24, 24, 24)
        if source.isEmpty():
            source = QRectF(0, 0, 200, 120)
        selected = self.scene.selectedItems()
        self.scene.clearSelection()
        self.scene.set_item_caching(False)
        try:
            with atomic_path(path) as tmp:
                if path.suffix.lower() == ".svg":
                    generator = QSvgGenerator()
                    generator.setFileName(str(tmp))
                    generator.setSize(source.size().toSize())
                    generator.setViewBox(QRectF(0, 0, source.width(), source.height()))
                    generator.setTitle(self.doc.header().name or "net")
                    painter = QPainter(generator)
                    self.scene.render(painter, QRectF(0, 0, source.width(), source.height()),
                                      source)
                    painter.end()
                else:
                    image = QImage((source.size() * 2).toSize(), QImage.Format_ARGB32)
                    image.fill(style.CANVAS_BACKGROUND)
                    painter = QPainter(image)
                    painter.setRenderHints(QPainter.Antialiasing | QPainter.TextAntialiasing)
                    self.scene.render(painter, QRectF(image.rect()), source)
                    painter.end()
                    if not image.save(str(tmp), "PNG"):
                        raise DLPError(f"{path}: the image could not be written")
        finally:
            self.scene.set_item_caching(True)
            for item in selected:
                item.setSelected(True)
        return path

    # -- clipboard -----------------------------------------------------------------
    def copy_selection(self) -> None:
        selected = self.scene.selected_node_ids()
        if not selected:
            return
        payload = self.editor.copy_text(selected)
        mime = QMimeData()
        mime.setData(LAYERS_MIME, payload.encode("utf-8"))
        from google.protobuf import text_format

        net = self.doc.to_net()
        del net.layer[:]
        for node_id in selected:
            net.layer.add().CopyFrom(self.doc.layer_view(node_id))
        mime.setText(text_format.MessageToString(net))
        QApplication.clipboard().setMimeData(mime)

    def paste(self) -> list[int]:
        mime = QApplication.clipboard().mimeData()
        if mime is None or not mime.hasFormat(LAYERS_MIME):
            return []
        return self.editor.paste_text(bytes(mime.data(LAYERS_MIME)).decode("utf-8"))

    # -- context menu --------------------------------------------------------------
    def context_menu(self, scene_pos: QPointF) -> QMenu:
        """The right-click menu for what is under ``scene_pos`` (a layer, a link, the canvas)."""
        menu = QMenu(self)
        node = self.scene.node_at(scene_pos)
        edge = self.scene.edge_at(scene_pos) if node is None else None
        if node is not None:
            if not node.isSelected():
                self.scene.select_nodes([node.node_id])
            name = self.doc.layer_view(node.node_id).name
            menu.addAction(f"Properties of '{name}'",
                           lambda: self.docks["Properties"].raise_())
            menu.addAction("Duplicate", self.editor.duplicate_selected)
            menu.addAction("Copy", self.copy_selection)
            inputs = [link for link in self.doc.links() if link.sink == node.node_id]
            unplug = menu.addAction("Disconnect inputs",
                                    lambda: self.editor.disconnect_links(inputs))
            unplug.setEnabled(bool(inputs))
            menu.addSeparator()
            menu.addAction("Delete", self.editor.delete_selected)
        elif edge is not None:
            link = edge.link
            menu.addAction(f"Disconnect {link.blob}", lambda: self.editor.disconnect_links([link]))
        else:
            menu.addAction("Add layer…", lambda: self.editor.request_quick_add(scene_pos))
            paste = menu.addAction("Paste", self.paste)
            clipboard = QApplication.clipboard().mimeData()
            paste.setEnabled(clipboard is not None and clipboard.hasFormat(LAYERS_MIME))
            menu.addSeparator()
            menu.addAction("Auto layout", self.editor.auto_layout)
            menu.addAction("Fit", self.view.fit_all)
        return menu

    def _on_context_menu_requested(self, pos) -> None:
        menu = self.context_menu(self.view.mapToScene(pos))
        menu.exec_(self.view.viewport().mapToGlobal(pos))
        menu.deleteLater()

    # -- comparing -----------------------------------------------------------------
    def compare_with_file(self, path: str) -> None:
        """Diff the current net against a saved one; highlight on the canvas too."""
        from dlp.net.prototxt import read_net

        try:
            other = read_net(path)
        except DLPError as exc:
            self.show_message(str(exc))
            return
        self.compare_with(other, Path(path).name)

    def compare_with(self, other: Any, label: str = "saved") -> Any:
        diff = self.compare_view.compare(other, self.doc.to_net(), label, "current net")
        self.scene.set_diff_marks(diff_marks(self.doc, diff))
        self.docks["Compare"].raise_()
        if self.docks["Compare"].height() < COMPARE_HEIGHT:  # the strip is too small to read
            self.window.resizeDocks([self.docks["Compare"]], [COMPARE_HEIGHT], Qt.Vertical)
        return diff

    def clear_diff(self) -> None:
        self.scene.set_diff_marks({})

    # -- handlers ------------------------------------------------------------------
    def show_message(self, text: str) -> None:
        self.status.setText(text)
        self.status.setToolTip(text)

    def _taken_names(self) -> set[str]:
        names = set(self.doc.layer_names())
        if self.layer_editor.layer is not None:
            names.discard(self.layer_editor.layer.name)
        return names

    def _on_selection_change(self) -> None:
        selected = self.scene.selected_node_ids()
        if len(selected) == 1:
            if self.layer_editor.node_id == selected[0] and \
                    self.layer_editor.layer == self.doc.layer_view(selected[0]):
                return  # Qt repeats selectionChanged during drags; the form is current
            self.layer_editor.set_layer(selected[0], self.doc.layer(selected[0]))
        elif not self.layer_editor.showing_net or self.layer_editor.layer != self.doc.header():
            self.layer_editor.set_net_header(self.doc.header())

    def _on_layer_change(self, node_id: int) -> None:
        if node_id == self.layer_editor.node_id:
            self.layer_editor.set_layer(node_id, self.doc.layer(node_id))

    def _on_layer_removed(self, node_id: int) -> None:
        if node_id == self.layer_editor.node_id:
            self.layer_editor.set_net_header(self.doc.header())

    def _on_doc_change(self) -> None:
        if self.layer_editor.showing_net and self.layer_editor.layer != self.doc.header():
            self.layer_editor.set_net_header(self.doc.header())

    def _on_net_edited(self, header: Any, text: str) -> None:
        self.undo_stack.push(SetHeaderCommand(self.doc, header, text))

    def _on_layer_edited(self, node_id: int, layer: Any, text: str) -> None:
        self.undo_stack.push(SetLayerCommand(self.doc, node_id, layer, text))

    def _on_text_parsed(self, net: Any) -> None:
        self.editor.replace_net(net, self.doc.positions_by_name(), "Edit prototxt")

    def _on_analysis_ready(self, analysis: NetAnalysis) -> None:
        self.issues.clear()
        for issue in analysis.issues:
            mark = "✖" if issue.severity == "error" else "⚠"
            where = f"{issue.layer}: " if issue.layer else ""
            item = QListWidgetItem(f"{mark} {where}{issue.message}")
            item.setData(ISSUE_NODE_ROLE, issue.node_id)
            item.setForeground(style.ERROR if issue.severity == "error" else style.DIFF_CHANGED)
            self.issues.addItem(item)
        errors = sum(1 for i in analysis.issues if i.severity == "error")
        self.docks["Issues"].setWindowTitle(f"Issues ({len(analysis.issues)})"
                                            if analysis.issues else "Issues")
        if not analysis.issues and len(self.doc):
            item = QListWidgetItem(f"✔ No problems found in the {analysis.phase} phase.")
            item.setForeground(style.NODE_MUTED)
            item.setFlags(Qt.ItemIsEnabled)
            self.issues.addItem(item)
        self.show_message(f"{len(self.doc)} layers · {human(analysis.total_params)} parameters · "
                          f"{human(analysis.total_flops)} FLOPs per pass "
                          f"({analysis.phase} phase)"
                          + (f" · {errors} error{'s' if errors != 1 else ''}" if errors else ""))

    def _on_data_shape_change(self) -> None:
        text = self.data_shape_edit.text().strip()
        parts = [p for p in text.replace("\u00d7", ",").replace("x", ",").split(",") if p.strip()]
        try:
            shape = tuple(int(p) for p in parts)
            if shape and (len(shape) not in (3, 4) or min(shape) < 1):
                raise ValueError
        except ValueError:
            self.show_message(f"data shape {text!r}: expected C,H,W of positive whole numbers, "
                              "e.g. 1,256,256")
            return
        if shape != (self.editor.data_shape or ()):
            self.editor.set_data_shape(shape or None)

    def _on_editor_data_shape_change(self, shape: Any) -> None:
        self.data_shape_edit.setText(",".join(str(d) for d in shape) if shape else "")

    def _on_issue_activated(self, item: QListWidgetItem) -> None:
        node_id = item.data(ISSUE_NODE_ROLE)
        if node_id is not None and node_id in self.doc:
            self.scene.select_nodes([node_id])
            self.view.centerOn(self.scene.node_item(node_id))

    def _on_compare_layer_clicked(self, name: str) -> None:
        node_id = self.doc.find(name)
        if node_id is not None:
            self.scene.select_nodes([node_id])
            self.view.centerOn(self.scene.node_item(node_id))

    def _on_quick_add_requested(self, scene_pos: QPointF) -> None:
        self._quick_add_at = scene_pos
        global_pos = self.view.viewport().mapToGlobal(self.view.mapFromScene(scene_pos))
        self.quick_add_popup.popup(global_pos)

    def _on_quick_add_chosen(self, type_name: str) -> None:
        self.editor.quick_add(type_name, self._quick_add_at)

    def _on_palette_activated(self, type_name: str) -> None:
        center = self.view.mapToScene(self.view.viewport().rect().center())
        self.editor.drop_layer_type(type_name, center)

    def _on_library_open(self, name: str) -> None:
        self.editor.open_library_entry(name)
        self.view.show_start()

    def _on_import_clicked(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Import a Caffe net", "",
                                              "Caffe nets (*.prototxt *.pt);;All files (*)")
        if path:
            self.import_file(path)

    def import_file(self, path: str | Path) -> bool:
        try:
            self.editor.import_file(path)
        except DLPError as exc:
            self.show_message(str(exc))
            return False
        self.current_path = Path(path)
        self.view.show_start()
        return True

    def _on_export_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Export train_val.prototxt",
                                              "train_val.prototxt", "Caffe nets (*.prototxt)")
        if path:
            try:
                deploy = self.editor.export(path)
            except OSError as exc:
                self.show_message(f"{path}: cannot write: {exc.strerror or exc}")
                return
            except DLPError as exc:
                hint = "" if self.editor.data_shape else \
                    " (or enter the data shape C,H,W in the toolbar)"
                self.show_message(f"{exc}{hint}")
                return
            self.show_message(f"Wrote {path} and {deploy}")

    def _on_image_clicked(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "Save the canvas", "net.png",
                                              "PNG image (*.png);;SVG drawing (*.svg)")
        if path:
            try:
                self.save_image(path)
            except (DLPError, OSError) as exc:
                self.show_message(str(exc))
                return
            self.show_message(f"Saved the canvas to {path}")

    def _on_save_to_library_clicked(self) -> None:
        library_dir = getattr(self.qt_project, "library_dir", None)
        if library_dir is None:
            self.show_message("open a project to keep nets in its library")
            return
        name, ok = QInputDialog.getText(self, "Save to my library", "Name:",
                                        text=self.doc.header().name or "my-net")
        if not ok:
            return
        description, ok = QInputDialog.getText(self, "Save to my library", "Description:")
        if ok:
            self.save_to_library(name, description)

    def save_to_library(self, name: str, description: str) -> Path | None:
        from dlp.net.prototxt import read_solver

        try:
            solver_path = Path(self.qt_project.solver_path)
            solver = read_solver(solver_path) if solver_path.is_file() else None
            folder = save_user_library_entry(Path(self.qt_project.library_dir), name,
                                             description, self.doc, self.editor.analysis,
                                             solver)
        except OSError as exc:
            self.show_message(f"cannot write to the library: {exc.strerror or exc}")
            return None
        except DLPError as exc:
            self.show_message(str(exc))
            return None
        self.library.reload()
        self.show_message(f"Saved to my library: {folder}")
        return folder
