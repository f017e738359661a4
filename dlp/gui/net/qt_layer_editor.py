"""The property panel: a form generated from the protobuf descriptors of a layer.

Every field of LayerParameter and of the layer's ``*_param`` messages gets the widget
its type calls for (enum → combo, bool → check, numbers → spin boxes showing the proto
default, repeated → list, nested messages → groups). An edit is validated on a copy
and handed out as one finished edit (``layer_edited``); the editor turns it into one
undo command. Nothing here changes the document directly.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from google.protobuf.descriptor import FieldDescriptor
from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QValidator
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QScrollArea,
    QSpinBox,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from dlp.errors import DLPError
from dlp.proto import caffe_pb2

Path = tuple[tuple[str, int | None], ...]  # steps from the LayerParameter to a message
F = FieldDescriptor
INT_TYPES = {F.CPPTYPE_INT32, F.CPPTYPE_UINT32, F.CPPTYPE_INT64, F.CPPTYPE_UINT64}
FLOAT_TYPES = {F.CPPTYPE_FLOAT, F.CPPTYPE_DOUBLE}
NET_FIELDS = ("name", "force_backward", "debug_info", "state")
COMMON_FIELDS = ("name", "type", "bottom", "top", "phase", "loss_weight", "param",
                 "propagate_down", "include", "exclude")
# The identity of a layer comes first, then its own settings (num_output, kernel_size: what
# is edited most), then the rarer per-layer fields (learning-rate multipliers, phase rules).
IDENTITY_FIELDS = COMMON_FIELDS[:4]
ADVANCED_FIELDS = COMMON_FIELDS[4:]
POSITIVE_FIELDS = {"num_output", "kernel_size", "kernel_h", "kernel_w", "stride", "stride_h",
                   "stride_w", "group", "batch_size", "dilation", "local_size"}
INT_LIMITS = {F.CPPTYPE_INT32: (-(2**31), 2**31 - 1), F.CPPTYPE_UINT32: (0, 2**31 - 1)}


class EditRefused(DLPError):
    """A value the panel will not put into the layer; the message says why."""


class FloatSpinBox(QDoubleSpinBox):
    """A spin box that shows floats the way Caffe files write them (1e-04, 0.5, -116)."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setDecimals(12)
        self.setRange(-1e30, 1e30)
        self.setKeyboardTracking(False)

    def textFromValue(self, value: float) -> str:
        return f"{value:g}"

    def valueFromText(self, text: str) -> float:
        try:
            return float(text)
        except ValueError:
            return self.value()

    def validate(self, text: str, pos: int):
        stripped = text.strip()
        if stripped in ("", "-", "+", ".", "-.", "e", "-e") or stripped.lower().endswith(
                ("e", "e-", "e+")):
            return QValidator.Intermediate, text, pos
        try:
            value = float(stripped)
        except ValueError:
            return QValidator.Invalid, text, pos
        return (QValidator.Acceptable if math.isfinite(value) else QValidator.Invalid), text, pos


def _navigate(root: Any, path: Path) -> Any:
    message = root
    for name, index in path:
        message = getattr(message, name)
        if index is not None:
            message = message[index]
    return message


def _format_scalar(field: FieldDescriptor, value: Any) -> str:
    if field.cpp_type == F.CPPTYPE_ENUM:
        enum_value = field.enum_type.values_by_number.get(value)
        return enum_value.name if enum_value else str(value)
    if field.cpp_type in FLOAT_TYPES:
        return f"{value:g}"
    if field.cpp_type == F.CPPTYPE_BOOL:
        return "true" if value else "false"
    return str(value)


def _parse_scalar(field: FieldDescriptor, text: str) -> Any:
    text = text.strip()
    if field.cpp_type == F.CPPTYPE_ENUM:
        value = field.enum_type.values_by_name.get(text.upper())
        if value is None:
            names = ", ".join(v.name for v in field.enum_type.values)
            raise EditRefused(f"{field.name}: {text!r} is not one of {names}")
        return value.number
    if field.cpp_type in INT_TYPES:
        try:
            value = int(text)
        except ValueError:
            raise EditRefused(f"{field.name}: {text!r} is not a whole number") from None
        if field.cpp_type in (F.CPPTYPE_UINT32, F.CPPTYPE_UINT64) and value < 0:
            raise EditRefused(f"{field.name}: must not be negative (got {value})")
        return value
    if field.cpp_type in FLOAT_TYPES:
        try:
            value = float(text)
        except ValueError:
            raise EditRefused(f"{field.name}: {text!r} is not a number") from None
        if not math.isfinite(value):
            raise EditRefused(f"{field.name}: must be a finite number")
        return value
    if field.cpp_type == F.CPPTYPE_BOOL:
        if text.lower() not in ("true", "false", "1", "0"):
            raise EditRefused(f"{field.name}: expected true or false, got {text!r}")
        return text.lower() in ("true", "1")
    return text


def check_layer(layer: Any, taken_names: set[str]) -> None:
    """Raise EditRefused when ``layer`` holds a value the panel refuses."""
    from dlp.net.specs import get_spec

    if not layer.name.strip():
        raise EditRefused("name: a layer needs a name")
    if layer.name in taken_names:
        raise EditRefused(f"name: another layer is already called {layer.name!r}")
    get_spec(layer.type)  # UnknownLayerTypeError (a DLPError) names the closest types
    for kind in ("bottom", "top"):
        for blob in getattr(layer, kind):
            if not blob or any(ch.isspace() for ch in blob):
                raise EditRefused(f"{kind}: blob names are non-empty and have no spaces "
                                  f"(got {blob!r})")
    _check_message(layer, layer.name)


def _check_message(message: Any, where: str) -> None:
    for field, value in message.ListFields():
        label = f"{where}.{field.name}"
        values = list(value) if field.is_repeated else [value]
        if field.cpp_type == F.CPPTYPE_MESSAGE:
            for item in values:
                _check_message(item, label)
            continue
        if field.name in POSITIVE_FIELDS and any(v < 1 for v in values):
            raise EditRefused(f"{label}: must be at least 1")
        if field.name == "dropout_ratio" and any(not 0 <= v < 1 for v in values):
            raise EditRefused(f"{label}: must be in [0, 1)")
        if field.cpp_type in FLOAT_TYPES and any(not math.isfinite(v) for v in values):
            raise EditRefused(f"{label}: must be a finite number")


def _form(parent: QWidget) -> QFormLayout:
    """A compact form that fits a narrow dock: fields grow, nested groups go full width."""
    form = QFormLayout(parent)
    form.setContentsMargins(6, 4, 4, 4)
    form.setFieldGrowthPolicy(QFormLayout.AllNonFixedFieldsGrow)
    return form


class QtLayerEditor(QWidget):
    """Signals ``layer_edited(node_id, LayerParameter, description)`` on a finished edit of
    the selected layer, ``net_edited(NetParameter header, description)`` on a finished edit
    of the net-level fields (shown when no layer is selected)."""

    layer_edited = pyqtSignal(int, object, str)
    net_edited = pyqtSignal(object, str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.node_id: int | None = None
        self.layer: Any = None
        self.taken_names: Callable[[], set[str]] = set
        self.title = QLabel("Select a layer to edit its settings.", self)
        self.title.setWordWrap(True)
        self.message = QLabel(self)
        self.message.setWordWrap(True)
        self.message.setStyleSheet("color: #B00020; font-weight: bold;")
        self.message.hide()
        self.scroll = QScrollArea(self)
        self.scroll.setWidgetResizable(True)
        self.scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarAlwaysOff)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.title)
        layout.addWidget(self.message)
        layout.addWidget(self.scroll, 1)
        self.fields: dict[str, QWidget] = {}  # "convolution_param.num_output" → widget

    # -- public --------------------------------------------------------------------
    def set_layer(self, node_id: int | None, layer: Any) -> None:
        """Show ``layer`` (a LayerParameter copy) or nothing."""
        self.node_id = node_id
        self.layer = layer
        self.message.hide()
        self._rebuild()

    def set_net_header(self, header: Any) -> None:
        """Show the net-level fields of ``header`` (a NetParameter without layers)."""
        self.node_id = None
        self.layer = header
        self.message.hide()
        self._rebuild()

    @property
    def showing_net(self) -> bool:
        return isinstance(self.layer, caffe_pb2.NetParameter)

    def show_refusal(self, text: str) -> None:
        self.message.setText(text)
        self.message.show()

    # -- building ------------------------------------------------------------------
    def _rebuild(self) -> None:
        scroll_value = self.scroll.verticalScrollBar().value()
        # The edit that triggered this may still be inside one of the old widgets' event
        # handlers: hand the old form to deleteLater instead of deleting it now.
        old = self.scroll.takeWidget()
        if old is not None:
            old.hide()
            old.deleteLater()
        self.fields = {}
        body = QWidget()
        column = QVBoxLayout(body)
        column.setContentsMargins(2, 2, 2, 2)
        if self.layer is None:
            self.title.setText("Select a layer to edit its settings.")
            column.addStretch(1)
            self.scroll.setWidget(body)
            return
        if self.showing_net:
            self.title.setText("<b>Net</b> — select a layer to edit it")
            group = QGroupBox("Net", body)
            form = _form(group)
            for name in NET_FIELDS:
                self._add_field(form, (), caffe_pb2.NetParameter.DESCRIPTOR.fields_by_name[name],
                                "")
            column.addWidget(group)
            column.addStretch(1)
            self.scroll.setWidget(body)
            return
        self.title.setText(f"<b>{self.layer.name}</b> — {self.layer.type}")
        descriptor = caffe_pb2.LayerParameter.DESCRIPTOR
        for title, names in (("Layer", IDENTITY_FIELDS), (None, ()),
                             ("Phase, loss weight and learning rates", ADVANCED_FIELDS)):
            if title is None:
                for name in self._param_fields():
                    field = descriptor.fields_by_name[name]
                    column.addWidget(self._message_group(body, (), field, ""))
                continue
            group = QGroupBox(title, body)
            form = _form(group)
            for name in names:
                self._add_field(form, (), descriptor.fields_by_name[name], "")
            column.addWidget(group)
        column.addStretch(1)
        self.scroll.setWidget(body)
        self.scroll.verticalScrollBar().setValue(scroll_value)

    def _param_fields(self) -> list[str]:
        from dlp.net.specs import get_spec

        names: list[str] = []
        try:
            spec = get_spec(self.layer.type)
            names += [spec.param_field] if spec.param_field else []
            names += list(getattr(spec, "extra_param_fields", ()))
            if spec.category == "Data":
                names.append("transform_param")
            if spec.is_loss:
                names.append("loss_param")
        except DLPError:
            pass
        names += [f.name for f, _ in self.layer.ListFields()
                  if f.name.endswith("_param") and f.cpp_type == F.CPPTYPE_MESSAGE]
        fields = caffe_pb2.LayerParameter.DESCRIPTOR.fields_by_name
        return [n for n in dict.fromkeys(names) if n in fields]

    def _message_group(self, parent: QWidget, path: Path, field: FieldDescriptor,
                       prefix: str) -> QGroupBox:
        """An optional nested message: a checkable group (checked = the field is set)."""
        owner = _navigate(self.layer, path)
        key = f"{prefix}{field.name}"
        group = QGroupBox(field.name, parent)
        group.setCheckable(True)
        group.setChecked(owner.HasField(field.name))
        group.setToolTip(f"{field.message_type.name}; uncheck to remove it from the layer")
        form = _form(group)
        sub_path = (*path, (field.name, None))
        for sub in field.message_type.fields:
            self._add_field(form, sub_path, sub, f"{key}.")
        group.toggled.connect(lambda on, p=path, f=field: self._on_group_toggle(p, f, on))
        self.fields[key] = group
        return group

    def _add_field(self, form: QFormLayout, path: Path, field: FieldDescriptor,
                   prefix: str) -> None:
        owner = _navigate(self.layer, path)
        key = f"{prefix}{field.name}"
        if field.cpp_type == F.CPPTYPE_MESSAGE:
            if field.is_repeated:
                form.addRow(self._repeated_messages(path, field, key))
            elif field.message_type.name != "BlobProto":
                form.addRow(self._message_group(form.parentWidget(), path, field, prefix))
            return
        if field.is_repeated:
            widget = self._repeated_scalar(path, field, owner)
        else:
            widget = self._scalar(path, field, owner)
        widget.setMinimumWidth(48)  # let the dock stay narrow; fields share what is left
        if isinstance(widget, QComboBox):
            widget.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
            widget.setMinimumContentsLength(5)
        self.fields[key] = widget
        label = QLabel(field.name)
        is_set = (field.is_repeated and len(getattr(owner, field.name))) or (
            not field.is_repeated and owner.HasField(field.name))
        default = "" if field.is_repeated else \
            f"default: {_format_scalar(field, field.default_value)}"
        label.setToolTip(default or "a list; separate values with commas")
        label.setStyleSheet("font-weight: bold;" if is_set else "color: #555;")
        row = QWidget()
        line = QHBoxLayout(row)
        line.setContentsMargins(0, 0, 0, 0)
        line.addWidget(widget, 1)
        reset = QToolButton(row)
        reset.setText("↺")
        reset.setToolTip(f"reset to the default ({default})" if default else "clear")
        reset.setEnabled(bool(is_set))
        reset.clicked.connect(lambda _=False, p=path, f=field: self._commit(
            p, lambda msg: msg.ClearField(f.name), f"Reset {f.name}"))
        line.addWidget(reset)
        form.addRow(label, row)

    def _scalar(self, path: Path, field: FieldDescriptor, owner: Any) -> QWidget:
        value = getattr(owner, field.name)
        name = field.name

        def setter(v: Any) -> Callable[[Any], None]:
            return lambda msg: setattr(msg, name, v)

        if path == () and name == "type":
            from dlp.net.specs import all_specs

            combo = QComboBox()
            combo.setEditable(True)
            combo.addItems(sorted(spec.type for spec in all_specs()))
            combo.setCurrentText(value)
            combo.lineEdit().editingFinished.connect(
                lambda: self._commit(path, setter(combo.currentText().strip()), "Change type"))
            combo.activated.connect(lambda _i: self._commit(
                path, setter(combo.currentText().strip()), "Change type"))
            return combo
        if field.cpp_type == F.CPPTYPE_ENUM:
            combo = QComboBox()
            numbers = [v.number for v in field.enum_type.values]
            combo.addItems([v.name for v in field.enum_type.values])
            if value in numbers:
                combo.setCurrentIndex(numbers.index(value))
            combo.activated.connect(lambda i: self._commit(path, setter(numbers[i]),
                                                           f"Set {name}"))
            return combo
        if field.cpp_type == F.CPPTYPE_BOOL:
            check = QCheckBox()
            check.setChecked(bool(value))
            check.toggled.connect(lambda on: self._commit(path, setter(on), f"Set {name}"))
            return check
        if field.cpp_type in INT_LIMITS:
            spin = QSpinBox()
            spin.setRange(*INT_LIMITS[field.cpp_type])
            spin.setValue(int(value))
            spin.setKeyboardTracking(False)
            spin.editingFinished.connect(
                lambda: self._commit_if_changed(path, field, spin.value(), f"Set {name}"))
            return spin
        if field.cpp_type in FLOAT_TYPES:
            spin = FloatSpinBox()
            spin.setValue(float(value))
            spin.editingFinished.connect(
                lambda: self._commit_if_changed(path, field, spin.value(), f"Set {name}"))
            return spin
        edit = QLineEdit(_format_scalar(field, value) if field.cpp_type != F.CPPTYPE_STRING
                         else value)
        edit.editingFinished.connect(lambda: self._commit_text(path, field, edit.text()))
        return edit

    def _repeated_scalar(self, path: Path, field: FieldDescriptor, owner: Any) -> QWidget:
        edit = QLineEdit(", ".join(_format_scalar(field, v) for v in getattr(owner, field.name)))
        edit.setPlaceholderText("comma-separated list")
        edit.editingFinished.connect(lambda: self._commit_list(path, field, edit.text()))
        return edit

    def _repeated_messages(self, path: Path, field: FieldDescriptor, key: str) -> QWidget:
        owner = _navigate(self.layer, path)
        box = QGroupBox(f"{field.name} ({field.message_type.name})")
        column = QVBoxLayout(box)
        for index in range(len(getattr(owner, field.name))):
            item = QGroupBox(f"{field.name}[{index}]", box)
            form = _form(item)
            item_path = (*path, (field.name, index))
            for sub in field.message_type.fields:
                self._add_field(form, item_path, sub, f"{key}[{index}].")
            remove = QPushButton(f"Remove {field.name}[{index}]", item)
            remove.clicked.connect(lambda _=False, i=index: self._commit(
                path, lambda msg: getattr(msg, field.name).__delitem__(i),
                f"Remove {field.name}[{i}]"))
            form.addRow(remove)
            column.addWidget(item)
        add = QPushButton(f"Add {field.name}", box)
        add.clicked.connect(lambda: self._commit(
            path, lambda msg: getattr(msg, field.name).add(), f"Add {field.name}"))
        column.addWidget(add)
        self.fields[key] = box
        return box

    # -- committing ----------------------------------------------------------------
    def _on_group_toggle(self, path: Path, field: FieldDescriptor, on: bool) -> None:
        if on:
            self._commit(path, lambda msg: getattr(msg, field.name).SetInParent(),
                         f"Add {field.name}")
        else:
            self._commit(path, lambda msg: msg.ClearField(field.name), f"Remove {field.name}")

    def _commit_if_changed(self, path: Path, field: FieldDescriptor, value: Any,
                           text: str) -> None:
        owner = _navigate(self.layer, path)
        # An untouched field stays unset (its default is shown); any new value is stored.
        if getattr(owner, field.name) != value:
            self._commit(path, lambda msg: setattr(msg, field.name, value), text)

    def _commit_text(self, path: Path, field: FieldDescriptor, text: str) -> None:
        try:
            value = _parse_scalar(field, text)
        except EditRefused as exc:
            self._refuse(str(exc))
            return
        owner = _navigate(self.layer, path)
        if getattr(owner, field.name) == value and (owner.HasField(field.name) or not value):
            return
        self._commit(path, lambda msg: setattr(msg, field.name, value), f"Set {field.name}")

    def _commit_list(self, path: Path, field: FieldDescriptor, text: str) -> None:
        try:
            values = [_parse_scalar(field, part) for part in text.split(",") if part.strip()]
        except EditRefused as exc:
            self._refuse(str(exc))
            return
        if list(getattr(_navigate(self.layer, path), field.name)) == values:
            return

        def apply(msg: Any) -> None:
            del getattr(msg, field.name)[:]
            getattr(msg, field.name).extend(values)

        self._commit(path, apply, f"Set {field.name}")

    def _commit(self, path: Path, change: Callable[[Any], None], text: str) -> bool:
        """Apply ``change`` to a copy, check it, and hand it out as one finished edit."""
        if self.layer is None or (self.node_id is None and not self.showing_net):
            return False
        candidate = type(self.layer)()
        candidate.CopyFrom(self.layer)
        try:
            target = candidate
            for name, index in path:  # creates unset sub-messages on the way
                target = getattr(target, name)
                if index is not None:
                    target = target[index]
            change(target)
            if not self.showing_net:
                check_layer(candidate, self.taken_names())
        except (DLPError, ValueError, TypeError, IndexError) as exc:
            self._refuse(str(exc))
            return False
        if candidate == self.layer:
            return False
        self.message.hide()
        if self.showing_net:
            self.net_edited.emit(candidate, f"{text} of the net")
        else:
            self.layer_edited.emit(self.node_id, candidate, f"{text} of '{self.layer.name}'")
        return True

    def _refuse(self, text: str) -> None:
        """Show why, and put the widgets back to the layer's real values."""
        self._rebuild()
        self.show_refusal(text)
