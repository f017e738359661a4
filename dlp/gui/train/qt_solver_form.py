"""The solver form: SolverParameter fields, Data layer sources, pretrained weights, best metric.

Fields a chosen ``lr_policy`` or solver ``type`` does not use are hidden; a small
plot previews the learning-rate schedule computed with the solver's own policy
table.  The form edits a copy of the solver; :meth:`QtSolverForm.solver` returns
the message the form shows.
"""

from __future__ import annotations

import math
from typing import Any

import pyqtgraph as pg
from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtGui import QDoubleValidator, QFont
from PyQt5.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFileDialog,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from dlp.errors import DLPError
from dlp.train.runs import lr_schedule
from dlp.train.setup import (
    LR_POLICY_FIELDS,
    SOLVER_TYPE_FIELDS,
    SOLVER_TYPES,
    DataLayerInfo,
    DbChoice,
    apply_data_settings,
    best_metric_choices,
    data_layers,
    dataset_summary,
    db_choices,
    default_choice,
)

_INT_MAX = 2**31 - 1
# SolverParameter fields behind the form's rows where the row name is not the field
_CAFFE_FIELDS = {"test_iter": "test_iter (repeated; the first test net's)",
                 "device": "solver_mode, device_id"}
_POLICY_HELP = {
    "fixed": "The same rate throughout (lr_policy: fixed)",
    "step": "Multiply by the factor every N iterations (lr_policy: step)",
    "exp": "Multiply by the factor after every iteration (lr_policy: exp)",
    "inv": "base_lr * (1 + gamma * iter)^(-power) (lr_policy: inv)",
    "multistep": "Multiply by the factor at chosen iterations (lr_policy: multistep)",
    "poly": "Fall to 0 at the last iteration along a power curve (lr_policy: poly)",
    "sigmoid": "A smooth drop around the step iteration (lr_policy: sigmoid)",
}


def _tip(text: str, field: str) -> str:
    """A tooltip in plain words with the Caffe field name for those who know Caffe."""
    return f"<p>{text}</p><p><i>Caffe solver field:</i> <code>{field}</code></p>"


def _rate_ticks(top: float) -> list[tuple[float, str]]:
    """Three ticks 0, top/2, top labelled in plain decimals (0.01 rather than 1e-2)."""
    values = [0.0, top / 2, top]
    return [(v, f"{v:.3g}" if v >= 1e-3 or v == 0 else f"{v:.1e}") for v in values]
_KEEP_SOURCE = "__keep__"


class _FloatEdit(QLineEdit):
    """A float field that accepts scientific notation (``1e-4``), as prototxt does."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        validator = QDoubleValidator(self)
        validator.setNotation(QDoubleValidator.ScientificNotation)
        self.setValidator(validator)
        self.setMaximumWidth(140)

    def value(self) -> float:
        try:
            return float(self.text())
        except ValueError:
            return math.nan

    def set_value(self, value: float) -> None:
        self.setText(f"{value:.6g}")


def _spin(minimum: int = 0, maximum: int = _INT_MAX, parent: QWidget | None = None) -> QSpinBox:
    spin = QSpinBox(parent)
    spin.setRange(minimum, maximum)
    spin.setMaximumWidth(140)
    spin.setKeyboardTracking(False)
    return spin


class QtSolverForm(QWidget):
    """Emits ``changed()`` on every edit and ``weights_changed(list)`` for the weights."""

    changed = pyqtSignal()
    weights_changed = pyqtSignal(list)
    check_weights_requested = pyqtSignal()

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        from dlp.proto import caffe_pb2

        self._solver = caffe_pb2.SolverParameter()
        self._net: Any = None
        self._layers: list[DataLayerInfo] = []
        self._choices: list[DbChoice] = []
        self._source_combos: dict[int, QComboBox] = {}
        self._loading = False

        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._build_solver_group())
        layout.addWidget(self._build_data_group())
        layout.addWidget(self._build_weights_group())
        layout.addWidget(self._build_best_group())
        layout.addStretch(1)

    # ------------------------------------------------------------------ building

    def _build_solver_group(self) -> QGroupBox:
        group = QGroupBox("Solver", self)
        # Rows of their own rather than a QFormLayout: a hidden QFormLayout row keeps its
        # spacing in Qt 5, leaving gaps where the fields of other schedules were.
        column = QVBoxLayout(group)
        column.setSpacing(0)
        self._row_labels: dict[str, QLabel] = {}
        self._row_widgets: dict[str, QWidget] = {}
        self.type_combo = QComboBox(group)
        self.type_combo.addItems(SOLVER_TYPES)
        self.base_lr = _FloatEdit(group)
        self.lr_policy = QComboBox(group)
        self.lr_policy.addItems(list(LR_POLICY_FIELDS))
        self.gamma = _FloatEdit(group)
        self.power = _FloatEdit(group)
        self.stepsize = _spin(1, parent=group)
        self.stepvalue = QLineEdit(group)
        self.stepvalue.setPlaceholderText("e.g. 1000, 2000")
        self.stepvalue.setMaximumWidth(140)
        self.momentum = _FloatEdit(group)
        self.momentum2 = _FloatEdit(group)
        self.rms_decay = _FloatEdit(group)
        self.delta = _FloatEdit(group)
        self.weight_decay = _FloatEdit(group)
        self.max_iter = _spin(1, parent=group)
        self.test_interval = _spin(0, parent=group)
        self.test_iter = _spin(0, parent=group)
        self.snapshot = _spin(0, parent=group)
        self.display = _spin(0, parent=group)
        self.random_seed = _spin(0, parent=group)
        self.random_seed.setMaximumWidth(110)
        self.fixed_seed = QCheckBox("fixed:", group)
        self.fixed_seed.setToolTip(_tip("Off: every run starts from different random weights "
                                        "and data order. On: runs with the same seed repeat "
                                        "exactly.", "random_seed (-1 = random)"))
        self.fixed_seed.toggled.connect(self.random_seed.setEnabled)
        seed_row = QWidget(group)
        seed_layout = QHBoxLayout(seed_row)
        seed_layout.setContentsMargins(0, 0, 0, 0)
        seed_layout.addWidget(self.fixed_seed)
        seed_layout.addWidget(self.random_seed)
        seed_layout.addStretch(1)
        seed_row.setToolTip(self.fixed_seed.toolTip())
        self.device = QComboBox(group)
        self.device.addItems(["cpu"])

        self._rows: dict[str, QWidget] = {}
        for label, name, widget, tip in [
            ("Optimizer", "type", self.type_combo,
             "The rule that updates the weights after each batch; SGD with momentum is "
             "Caffe's classic choice, Adam adapts the step per weight."),
            ("Learning rate", "base_lr", self.base_lr,
             "How big each update step is at the start of training."),
            ("Rate schedule", "lr_policy", self.lr_policy,
             "How the learning rate changes during training (plotted below)."),
            ("Rate factor", "gamma", self.gamma,
             "The rate is multiplied by this at each drop (step, multistep), or shapes the "
             "exp/inv/sigmoid curves."),
            ("Power", "power", self.power, "Exponent of the inv and poly schedules."),
            ("Drop every", "stepsize", self.stepsize,
             "Iterations between two drops of the rate (step; the midpoint for sigmoid)."),
            ("Drop at iterations", "stepvalue", self.stepvalue,
             "The iterations at which the rate drops (multistep), comma-separated."),
            ("Momentum", "momentum", self.momentum,
             "How much of the previous update is kept (0.9 is usual)."),
            ("Momentum 2 (β2)", "momentum2", self.momentum2,
             "Adam's decay of the squared-gradient average (0.999 is usual)."),
            ("RMS decay", "rms_decay", self.rms_decay,
             "RMSProp's decay of the squared-gradient average."),
            ("Epsilon", "delta", self.delta, "A tiny number that keeps the update finite."),
            ("Weight decay", "weight_decay", self.weight_decay,
             "L2 penalty on the weights against overfitting (0.0005 is usual)."),
            ("Training iterations", "max_iter", self.max_iter,
             "How many batches training runs for: one iteration = one weight update."),
            ("Validate every", "test_interval", self.test_interval,
             "Measure loss, accuracy and Dice on the validation data every N iterations "
             "(0 = never)."),
            ("Validation batches", "test_iter", self.test_iter,
             "Batches per validation round; times the validation batch size, they should "
             "cover the validation split."),
            ("Snapshot every", "snapshot", self.snapshot,
             "Save the weights every N iterations (0 = only at the end)."),
            ("Log every", "display", self.display,
             "Iterations between two training-loss points in the log and the curves."),
            ("Random seed", "random_seed", seed_row, ""),
            ("Device", "device", self.device,
             "Where training runs: CPU or a CUDA GPU (Tools → Settings sets the project's "
             "default)."),
        ]:
            if tip:
                widget.setToolTip(_tip(tip, _CAFFE_FIELDS.get(name, name)))
            row = QWidget(group)
            row_layout = QHBoxLayout(row)
            row_layout.setContentsMargins(0, 3, 0, 3)
            caption = QLabel(label, row)
            caption.setToolTip(widget.toolTip())
            caption.setBuddy(widget)
            row_layout.addWidget(caption)
            row_layout.addWidget(widget)
            row_layout.addStretch(1)
            column.addWidget(row)
            self._rows[name] = widget
            self._row_labels[name] = caption
            self._row_widgets[name] = row
        label_width = max(c.sizeHint().width() for c in self._row_labels.values()) + 8
        for caption in self._row_labels.values():
            caption.setFixedWidth(label_width)
        self.random_seed.setToolTip(self.fixed_seed.toolTip())
        for row, policy in enumerate(LR_POLICY_FIELDS):
            self.lr_policy.setItemData(row, _POLICY_HELP.get(policy, ""), Qt.ToolTipRole)

        self.lr_plot = pg.PlotWidget(group, background="w")
        self.lr_plot.setFixedHeight(130)
        self.lr_plot.setMouseEnabled(False, False)
        self.lr_plot.setMenuEnabled(False)
        self.lr_plot.hideButtons()
        plot = self.lr_plot.getPlotItem()
        plot.setTitle("Learning rate over the iterations", size="8pt")
        plot.showGrid(x=True, y=True, alpha=0.2)
        small = QFont()
        small.setPointSizeF(7.5)
        for side in ("left", "bottom"):
            axis = plot.getAxis(side)
            axis.enableAutoSIPrefix(False)
            # the default font leaves no room for three labels in a 120-px plot: pyqtgraph
            # then drops them all, which is how a rate of 0.01 came to read as 0
            axis.setStyle(tickFont=small, tickTextOffset=3)
        plot.getAxis("left").setWidth(44)
        self.lr_curve = self.lr_plot.plot(pen=pg.mkPen((31, 119, 180), width=2))
        self.lr_plot.setToolTip("The learning rate the chosen schedule gives at each "
                                "iteration (computed with the solver's own formulas)")
        self.lr_problem = QLabel(group)
        self.lr_problem.setStyleSheet("color: #b00020;")
        self.lr_problem.setWordWrap(True)
        column.addSpacing(6)
        column.addWidget(self.lr_plot)
        column.addWidget(self.lr_problem)

        for combo in (self.type_combo, self.lr_policy, self.device):
            combo.currentIndexChanged.connect(self._on_field_change)
        for edit in (self.base_lr, self.gamma, self.power, self.momentum, self.momentum2,
                     self.rms_decay, self.delta, self.weight_decay, self.stepvalue):
            edit.editingFinished.connect(self._on_field_change)
        for spin in (self.stepsize, self.max_iter, self.test_interval, self.test_iter,
                     self.snapshot, self.display, self.random_seed):
            spin.valueChanged.connect(self._on_field_change)
        self.fixed_seed.toggled.connect(self._on_field_change)
        return group

    def _build_data_group(self) -> QGroupBox:
        group = QGroupBox("Data", self)
        self.data_form = QFormLayout(group)
        self.data_form.setRowWrapPolicy(QFormLayout.WrapAllRows)
        self.datasets_label = QLabel(group)
        self.datasets_label.setWordWrap(True)
        self.datasets_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.train_batch = _spin(1, 65536, group)
        self.train_batch.setToolTip(_tip("Images per training step.",
                                         "data_param.batch_size of the TRAIN Data layers"))
        self.test_batch = _spin(1, 65536, group)
        self.test_batch.setToolTip(_tip("Images per validation batch.",
                                        "data_param.batch_size of the TEST Data layers"))
        for placeholder in (self.datasets_label, self.train_batch, self.test_batch):
            placeholder.hide()  # replaced by set_net()
        return group

    def _build_weights_group(self) -> QGroupBox:
        group = QGroupBox("Pretrained weights (fine-tuning)", self)
        layout = QVBoxLayout(group)
        row = QHBoxLayout()
        self.weights_edit = QLineEdit(group)
        self.weights_edit.setPlaceholderText("none (from scratch)")
        self.weights_edit.setToolTip(".caffemodel file(s), comma-separated; layers are copied "
                                     "by name")
        self.weights_edit.editingFinished.connect(self._on_weights_change)
        browse = QPushButton("Browse…", group)
        browse.clicked.connect(self._browse_weights)
        self.check_weights_button = QPushButton("Check", group)
        self.check_weights_button.setToolTip("Show which layers the weights fill")
        self.check_weights_button.clicked.connect(self.check_weights_requested)
        row.addWidget(self.weights_edit, 1)
        row.addWidget(browse)
        row.addWidget(self.check_weights_button)
        layout.addLayout(row)
        self.weights_report = QLabel(group)
        self.weights_report.setWordWrap(True)
        self.weights_report.setTextInteractionFlags(Qt.TextSelectableByMouse)
        layout.addWidget(self.weights_report)
        return group

    def _build_best_group(self) -> QGroupBox:
        group = QGroupBox("Best snapshot and early stop", self)
        form = QFormLayout(group)
        form.setFieldGrowthPolicy(QFormLayout.FieldsStayAtSizeHint)
        self.best_metric = QComboBox(group)
        self.best_metric.setEditable(True)
        self.best_metric.setMinimumWidth(160)
        self.best_metric.setToolTip(_tip(
            "The validation measure that decides which snapshot is the best, e.g. dice, or "
            "dice_per_class[1] for the Dice of class 1 alone.", "best_metric (DLP extension)"))
        self.best_mode = QComboBox(group)
        self.best_mode.addItem("higher", "max")
        self.best_mode.addItem("lower", "min")
        self.best_mode.setToolTip(_tip("Higher for Dice and accuracy, lower for a loss.",
                                       "best_mode: max | min (DLP extension)"))
        self.keep_last = _spin(0, parent=group)
        self.keep_last.setSpecialValueText("all")
        self.keep_last.setToolTip(_tip("Keep only the last N snapshots on disk; the best one "
                                       "is always kept.", "keep_last_snapshots (DLP extension)"))
        self.early_stop = _spin(0, parent=group)
        self.early_stop.setSpecialValueText("off")
        self.early_stop.setToolTip(_tip("Stop training after this many validation rounds "
                                        "without a better best metric.",
                                        "early_stop_rounds (DLP extension)"))
        form.addRow("Best snapshot by", self.best_metric)
        form.addRow("Better when", self.best_mode)
        form.addRow("Snapshots kept", self.keep_last)
        form.addRow("Early stop after", self.early_stop)
        self.best_metric.currentTextChanged.connect(self._on_field_change)
        self.best_mode.currentIndexChanged.connect(self._on_field_change)
        self.keep_last.valueChanged.connect(self._on_field_change)
        self.early_stop.valueChanged.connect(self._on_field_change)
        return group

    # ------------------------------------------------------------------ solver in/out

    def set_devices(self, devices: list[str], current: str) -> None:
        self._loading = True
        self.device.clear()
        self.device.addItems(devices)
        self.device.setCurrentText(current if current in devices else devices[0])
        self._loading = False

    def set_solver(self, solver: Any) -> None:
        """Show ``solver`` (a SolverParameter; copied)."""
        from dlp.proto import caffe_pb2

        self._solver = caffe_pb2.SolverParameter()
        self._solver.CopyFrom(solver)
        s = self._solver
        self._loading = True
        try:
            name = s.type if s.HasField("type") or not s.HasField("solver_type") else \
                SOLVER_TYPES[min(int(s.solver_type), len(SOLVER_TYPES) - 1)]
            self.type_combo.setCurrentText(name if name in SOLVER_TYPES else "SGD")
            self.base_lr.set_value(s.base_lr)
            self.lr_policy.setCurrentText(s.lr_policy or "fixed")
            self.gamma.set_value(s.gamma)
            self.power.set_value(s.power)
            self.stepsize.setValue(max(1, s.stepsize))
            self.stepvalue.setText(", ".join(str(v) for v in s.stepvalue))
            self.momentum.set_value(s.momentum)
            self.momentum2.set_value(s.momentum2)
            self.rms_decay.set_value(s.rms_decay)
            self.delta.set_value(s.delta)
            self.weight_decay.set_value(s.weight_decay)
            self.max_iter.setValue(max(1, s.max_iter))
            self.test_interval.setValue(s.test_interval)
            self.test_iter.setValue(s.test_iter[0] if s.test_iter else 0)
            self.snapshot.setValue(s.snapshot)
            self.display.setValue(s.display)
            self.fixed_seed.setChecked(s.random_seed >= 0)
            self.random_seed.setEnabled(s.random_seed >= 0)
            self.random_seed.setValue(max(0, min(s.random_seed, _INT_MAX)))
            self.best_metric.setCurrentText(s.best_metric)
            self.best_mode.setCurrentIndex(max(0, self.best_mode.findData(s.best_mode or "max")))
            self.keep_last.setValue(s.keep_last_snapshots)
            self.early_stop.setValue(s.early_stop_rounds)
        finally:
            self._loading = False
        self._update_visibility()
        self._update_lr_preview()

    def solver(self) -> Any:
        """The SolverParameter the form shows (a new message)."""
        from dlp.proto import caffe_pb2

        s = caffe_pb2.SolverParameter()
        s.CopyFrom(self._solver)
        s.ClearField("solver_type")
        s.type = self.type_combo.currentText()
        policy = self.lr_policy.currentText()
        s.lr_policy = policy
        for name in ("base_lr", "weight_decay"):
            setattr(s, name, self._float(name))
        for name in ("gamma", "power"):
            if name in LR_POLICY_FIELDS[policy]:
                setattr(s, name, self._float(name))
        if "stepsize" in LR_POLICY_FIELDS[policy]:
            s.stepsize = self.stepsize.value()
        if policy == "multistep":
            s.ClearField("stepvalue")
            s.stepvalue.extend(self._stepvalues())
        for name in SOLVER_TYPE_FIELDS[s.type]:
            setattr(s, name, self._float(name))
        s.max_iter = self.max_iter.value()
        s.test_interval = self.test_interval.value()
        s.ClearField("test_iter")
        if self.test_iter.value() > 0:
            s.test_iter.append(self.test_iter.value())
        s.snapshot = self.snapshot.value()
        s.display = self.display.value()
        s.random_seed = self.random_seed.value() if self.fixed_seed.isChecked() else -1
        device = self.device.currentText()
        if device.startswith("cuda"):
            s.solver_mode = caffe_pb2.SolverParameter.GPU
            s.device_id = int(device.partition(":")[2] or 0)
        else:
            s.solver_mode = caffe_pb2.SolverParameter.CPU
        metric = self.best_metric.currentText().strip()
        if metric:
            s.best_metric = metric
            s.best_mode = self.best_mode.currentData()
        else:
            s.ClearField("best_metric")
        s.keep_last_snapshots = self.keep_last.value()
        s.early_stop_rounds = self.early_stop.value() if metric else 0
        return s

    def _float(self, name: str) -> float:
        edit: _FloatEdit = getattr(self, name)
        value = edit.value()
        if not math.isfinite(value):
            raise DLPError(f"solver field {name}: {edit.text()!r} is not a number")
        return value

    def _stepvalues(self) -> list[int]:
        text = self.stepvalue.text().replace(";", ",")
        try:
            return [int(part) for part in text.split(",") if part.strip()]
        except ValueError:
            raise DLPError(f"solver field stepvalue: {text!r}; expected iterations like "
                           "1000, 2000") from None

    def device_name(self) -> str:
        return self.device.currentText()

    # ------------------------------------------------------------------ visibility and preview

    def _set_row_visible(self, name: str, visible: bool) -> None:
        self._rows[name].setVisible(visible)
        self._row_widgets[name].setVisible(visible)

    def _update_visibility(self) -> None:
        policy_fields = LR_POLICY_FIELDS.get(self.lr_policy.currentText(), ())
        type_fields = SOLVER_TYPE_FIELDS.get(self.type_combo.currentText(), ())
        for name in ("gamma", "power", "stepsize", "stepvalue"):
            self._set_row_visible(name, name in policy_fields)
        for name in ("momentum", "momentum2", "rms_decay", "delta"):
            self._set_row_visible(name, name in type_fields)

    def visible_fields(self) -> list[str]:
        return [name for name, widget in self._rows.items() if not widget.isHidden()]

    def _update_lr_preview(self) -> None:
        try:
            iters, rates = lr_schedule(self.solver())
        except DLPError as exc:
            self.lr_curve.setData([], [])
            self.lr_problem.setText(str(exc))
            return
        self.lr_problem.setText("")
        self.lr_curve.setData(iters, rates)
        # pyqtgraph pads a flat line to ±0.5 around it: the rate 0.01 would read as 0.
        # The rate is never negative; show 0…max (a little headroom) and 0…max_iter.
        top = max((r for r in rates if math.isfinite(r)), default=0.0)
        plot = self.lr_plot.getPlotItem()
        plot.setYRange(0.0, top * 1.1 if top > 0 else 1.0, padding=0)
        plot.setXRange(0, max(iters) if iters else 1, padding=0.02)
        plot.getAxis("left").setTicks([_rate_ticks(top)] if top > 0 else None)

    def lr_preview_data(self) -> tuple[Any, Any]:
        return self.lr_curve.getData()

    def _on_field_change(self, *_: object) -> None:
        if self._loading:
            return
        self._update_visibility()
        self._update_lr_preview()
        self.changed.emit()

    # ------------------------------------------------------------------ data layers

    def set_net(self, net: Any, datasets: list[Any], sources: dict[int, str] | None = None
                ) -> None:
        """Show the Data layers of ``net`` with the project's ``datasets`` to pick from.

        ``sources`` (layer index → DB path) restores earlier picks.
        """
        self._net = net
        self._layers = data_layers(net) if net is not None else []
        self._choices = db_choices(datasets)
        while self.data_form.rowCount():
            self.data_form.removeRow(0)
        self._source_combos = {}
        summaries = [dataset_summary(entry) for entry in datasets]
        self.datasets_label = QLabel("<br>".join(summaries) if summaries else
                                     "<i>No dataset in this project yet: build one in the Data "
                                     "tab.</i>")
        self.datasets_label.setWordWrap(True)
        self.datasets_label.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.data_form.addRow(self.datasets_label)
        if net is None:
            self.data_form.addRow(QLabel("<i>No net: create one in the Net tab.</i>"))
            return
        if not self._layers:
            self.data_form.addRow(QLabel("<i>The net has no Data layer.</i>"))
        self._loading = True
        try:
            for layer in self._layers:
                combo = QComboBox()
                # DB paths are long: size by a short label; the popup and tooltip show all
                combo.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
                combo.setMinimumContentsLength(12)
                combo.addItem(f"as in the net: {layer.source or '(none)'}", _KEEP_SOURCE)
                for choice in self._choices:
                    combo.addItem(choice.label, choice.path)
                wanted = (sources or {}).get(layer.index)
                if wanted is None:
                    picked = default_choice(layer, self._choices)
                    wanted = picked.path if picked is not None else None
                index = combo.findData(wanted) if wanted else -1
                combo.setCurrentIndex(max(0, index))
                combo.setToolTip(f"The database (LMDB) layer {layer.name!r} reads its "
                                 "images or labels from (data_param.source)")
                combo.currentIndexChanged.connect(self._on_field_change)
                combo.currentIndexChanged.connect(
                    lambda _i, c=combo: c.setToolTip(str(c.currentData() or c.currentText())))
                self._source_combos[layer.index] = combo
                self.data_form.addRow(layer.title, combo)
            trains = [la.batch_size for la in self._layers if la.phase != "TEST"]
            tests = [la.batch_size for la in self._layers if la.phase == "TEST"]
            self.train_batch = _spin(1, 65536)
            self.train_batch.setValue(max(trains) if trains else 1)
            self.test_batch = _spin(1, 65536)
            self.test_batch.setValue(max(tests) if tests else 1)
            self.train_batch.setToolTip(_tip("Images per training step.",
                                             "data_param.batch_size of the TRAIN Data layers"))
            self.test_batch.setToolTip(_tip("Images per validation batch.",
                                            "data_param.batch_size of the TEST Data layers"))
            self.train_batch.valueChanged.connect(self._on_field_change)
            self.test_batch.valueChanged.connect(self._on_field_change)
            if trains:
                self.data_form.addRow("Train batch size", self.train_batch)
            if tests:
                self.data_form.addRow("Validation batch size", self.test_batch)
        finally:
            self._loading = False
        self._update_metrics()

    def _update_metrics(self) -> None:
        current = self.best_metric.currentText()
        self._loading = True
        try:
            self.best_metric.clear()
            self.best_metric.addItem("")
            if self._net is not None:
                self.best_metric.addItems(best_metric_choices(self.net_for_training()))
            self.best_metric.setCurrentText(current)
        finally:
            self._loading = False

    def source_picks(self) -> dict[int, str]:
        """Layer index → chosen DB path (layers kept as in the net are left out)."""
        picks = {}
        for index, combo in self._source_combos.items():
            data = combo.currentData()
            if data and data != _KEEP_SOURCE:
                picks[index] = data
        return picks

    def set_source(self, layer_index: int, path: str) -> None:
        """Pick ``path`` for a Data layer (a DB of a project dataset or any other LMDB)."""
        combo = self._source_combos[layer_index]
        index = combo.findData(path)
        if index < 0:
            combo.addItem(path, path)
            index = combo.count() - 1
        combo.setCurrentIndex(index)

    def net_for_training(self) -> Any:
        """The net with the chosen sources and batch sizes (a copy)."""
        if self._net is None:
            raise DLPError("no net to train: create or open one in the Net tab")
        has_train = any(la.phase != "TEST" for la in self._layers)
        has_test = any(la.phase == "TEST" for la in self._layers)
        return apply_data_settings(
            self._net, self.source_picks(),
            train_batch=self.train_batch.value() if has_train else None,
            test_batch=self.test_batch.value() if has_test else None)

    # ------------------------------------------------------------------ weights

    def weights(self) -> list[str]:
        return [w.strip() for w in self.weights_edit.text().split(",") if w.strip()]

    def set_weights(self, paths: list[str]) -> None:
        self.weights_edit.setText(", ".join(paths))
        self._on_weights_change()

    def _browse_weights(self) -> None:
        paths, _ = QFileDialog.getOpenFileNames(self, "Pretrained weights", "",
                                                "Caffe weights (*.caffemodel);;All files (*)")
        if paths:
            self.set_weights(paths)

    def _on_weights_change(self) -> None:
        self.weights_report.setText("")
        self.weights_changed.emit(self.weights())
        self.changed.emit()

    def show_weight_report(self, html: str, ok: bool = True) -> None:
        color = "#1b5e20" if ok else "#b00020"
        self.weights_report.setText(f"<span style='color:{color}'>{html}</span>")
