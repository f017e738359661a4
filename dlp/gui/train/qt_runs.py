"""The runs of the project and the snapshots of the selected run.

Ticking runs overlays their curves on the plot for comparison; the snapshots list
shows each snapshot's iteration and test metrics (the best one starred) and sends
the chosen one to Deploy.
"""

from __future__ import annotations

import datetime as _dt

from PyQt5.QtCore import Qt, pyqtSignal
from PyQt5.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QSplitter,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
)

from dlp.train.runs import Run, SnapshotInfo

_STATUS_TEXT = {
    "created": "not started", "running": "running", "stopping": "stopping",
    "stopped": "stopped", "done": "done", "failed": "failed", "interrupted": "interrupted",
}


class QtRuns(QWidget):
    """Signals: ``run_selected(str)``, ``compare_changed(list)``, ``delete_requested(str)``,
    ``export_csv_requested()``, ``export_png_requested()``,
    ``deploy_requested(int)`` (a snapshot iteration of the selected run)."""

    run_selected = pyqtSignal(str)
    compare_changed = pyqtSignal(list)
    delete_requested = pyqtSignal(str)
    export_csv_requested = pyqtSignal()
    export_png_requested = pyqtSignal()
    deploy_requested = pyqtSignal(int)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self._filling = False
        self.runs_tree = QTreeWidget(self)
        self.runs_tree.setHeaderLabels(["Run", "Status", "Iteration", "Best"])
        self.runs_tree.setRootIsDecorated(False)
        self.runs_tree.setSelectionMode(QAbstractItemView.SingleSelection)
        self.runs_tree.setToolTip("Select a run to show it; tick runs to overlay their curves")
        self.runs_tree.itemSelectionChanged.connect(self._on_selection_change)
        self.runs_tree.itemChanged.connect(self._on_check_change)
        self.delete_button = QPushButton("Delete run", self)
        self.delete_button.clicked.connect(self._on_delete)
        self.csv_button = QPushButton("Export CSV…", self)
        self.csv_button.setToolTip("The shown run's curves (and ticked runs') as CSV")
        self.csv_button.clicked.connect(self.export_csv_requested)
        self.png_button = QPushButton("Export PNG…", self)
        self.png_button.setToolTip("The plot as shown, as a PNG image")
        self.png_button.clicked.connect(self.export_png_requested)

        self.snapshots_tree = QTreeWidget(self)
        self.snapshots_tree.setRootIsDecorated(False)
        self.snapshots_tree.setHeaderLabels(["Iteration"])
        self.snapshots_tree.itemDoubleClicked.connect(lambda *_: self._on_deploy())
        self.deploy_button = QPushButton("Send to Deploy", self)
        self.deploy_button.setToolTip("Open Deploy with this run's deploy net and the selected "
                                      "snapshot's weights")
        self.deploy_button.clicked.connect(self._on_deploy)
        self.snapshots_label = QLabel("Snapshots", self)

        runs_box = QWidget(self)
        runs_layout = QVBoxLayout(runs_box)
        runs_layout.setContentsMargins(0, 0, 0, 0)
        runs_layout.addWidget(QLabel("Runs (tick runs to overlay their curves)", runs_box))
        runs_layout.addWidget(self.runs_tree, 1)
        buttons = QHBoxLayout()
        for button in (self.delete_button, self.csv_button, self.png_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        runs_layout.addLayout(buttons)

        snaps_box = QWidget(self)
        snaps_layout = QVBoxLayout(snaps_box)
        snaps_layout.setContentsMargins(0, 0, 0, 0)
        snaps_layout.addWidget(self.snapshots_label)
        snaps_layout.addWidget(self.snapshots_tree, 1)
        deploy_row = QHBoxLayout()
        deploy_row.addStretch(1)
        deploy_row.addWidget(self.deploy_button)
        snaps_layout.addLayout(deploy_row)

        splitter = QSplitter(Qt.Horizontal, self)
        splitter.addWidget(runs_box)
        splitter.addWidget(snaps_box)
        splitter.setSizes([500, 500])  # snapshots have a column per test metric
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(splitter)
        self._update_buttons()

    # ---- runs

    def set_runs(self, runs: list[Run], selected: str | None = None,
                 compared: list[str] | None = None,
                 progress: dict[str, tuple[int, str]] | None = None) -> None:
        """List ``runs`` (newest first); ``progress`` gives name → (iteration, best text)."""
        compared = compared or []
        progress = progress or {}
        self._filling = True
        try:
            self.runs_tree.clear()
            for run in reversed(runs):
                iteration, best = progress.get(run.name, (None, ""))
                item = QTreeWidgetItem([
                    run.name, _STATUS_TEXT.get(run.status, run.status),
                    "" if iteration is None else f"{iteration} / {run.max_iter}", best])
                item.setData(0, Qt.UserRole, run.name)
                item.setFlags(item.flags() | Qt.ItemIsUserCheckable)
                item.setCheckState(0, Qt.Checked if run.name in compared else Qt.Unchecked)
                created = run.info.get("created")
                if created:
                    stamp = _dt.datetime.fromtimestamp(float(created)).strftime("%Y-%m-%d %H:%M")
                    item.setToolTip(0, f"{run.path}\nstarted {stamp}")
                if run.info.get("error"):
                    item.setToolTip(1, str(run.info["error"]))
                self.runs_tree.addTopLevelItem(item)
                if run.name == selected:
                    item.setSelected(True)
                    self.runs_tree.setCurrentItem(item)
            for column in range(4):
                self.runs_tree.resizeColumnToContents(column)
        finally:
            self._filling = False
        self._update_buttons()

    def update_progress(self, name: str, status: str, iteration: str, best: str) -> None:
        """Refresh one run's row in place (no rebuild: keeps selection and ticks)."""
        for i in range(self.runs_tree.topLevelItemCount()):
            item = self.runs_tree.topLevelItem(i)
            if item.data(0, Qt.UserRole) == name:
                self._filling = True
                item.setText(1, _STATUS_TEXT.get(status, status))
                item.setText(2, iteration)
                item.setText(3, best)
                self._filling = False
                for column in (1, 2, 3):  # the texts grow during a run: keep them whole
                    if self.runs_tree.columnWidth(column) < \
                            self.runs_tree.sizeHintForColumn(column):
                        self.runs_tree.resizeColumnToContents(column)
                return

    def selected_run(self) -> str | None:
        items = self.runs_tree.selectedItems()
        return items[0].data(0, Qt.UserRole) if items else None

    def select_run(self, name: str) -> None:
        for i in range(self.runs_tree.topLevelItemCount()):
            item = self.runs_tree.topLevelItem(i)
            if item.data(0, Qt.UserRole) == name:
                self.runs_tree.setCurrentItem(item)
                item.setSelected(True)
                return

    def compared_runs(self) -> list[str]:
        names = []
        for i in range(self.runs_tree.topLevelItemCount()):
            item = self.runs_tree.topLevelItem(i)
            if item.checkState(0) == Qt.Checked:
                names.append(item.data(0, Qt.UserRole))
        return names

    def set_compared(self, names: list[str]) -> None:
        for i in range(self.runs_tree.topLevelItemCount()):
            item = self.runs_tree.topLevelItem(i)
            item.setCheckState(0, Qt.Checked if item.data(0, Qt.UserRole) in names
                               else Qt.Unchecked)

    def _on_selection_change(self) -> None:
        self._update_buttons()
        if not self._filling and self.selected_run():
            self.run_selected.emit(self.selected_run())

    def _on_check_change(self, _item: QTreeWidgetItem, column: int) -> None:
        if not self._filling and column == 0:
            self.compare_changed.emit(self.compared_runs())

    def _on_delete(self) -> None:
        name = self.selected_run()
        if name:
            self.delete_requested.emit(name)

    # ---- snapshots

    def set_snapshots(self, snapshots: list[SnapshotInfo], best_iteration: int | None) -> None:
        metrics = sorted({name for snap in snapshots for name in snap.metrics})
        self.snapshots_tree.clear()
        self.snapshots_tree.setHeaderLabels(["Iteration", *metrics])
        for snap in reversed(snapshots):
            star = " ★" if snap.iteration == best_iteration else ""
            values = [f"{snap.metrics[m]:.4g}" if m in snap.metrics else "" for m in metrics]
            item = QTreeWidgetItem([f"{snap.iteration}{star}", *values])
            item.setData(0, Qt.UserRole, snap.iteration)
            item.setToolTip(0, str(snap.caffemodel))
            self.snapshots_tree.addTopLevelItem(item)
        if self.snapshots_tree.topLevelItemCount():
            best = self._snapshot_item(best_iteration) or self.snapshots_tree.topLevelItem(0)
            self.snapshots_tree.setCurrentItem(best)
        for column in range(len(metrics) + 1):
            self.snapshots_tree.resizeColumnToContents(column)
        self.snapshots_label.setText(f"Snapshots ({len(snapshots)})" if snapshots else
                                     "Snapshots (none yet)")
        self._update_buttons()

    def _snapshot_item(self, iteration: int | None) -> QTreeWidgetItem | None:
        if iteration is None:
            return None
        for i in range(self.snapshots_tree.topLevelItemCount()):
            item = self.snapshots_tree.topLevelItem(i)
            if item.data(0, Qt.UserRole) == iteration:
                return item
        return None

    def select_snapshot(self, iteration: int) -> None:
        item = self._snapshot_item(iteration)
        if item is not None:
            self.snapshots_tree.setCurrentItem(item)

    def selected_snapshot(self) -> int | None:
        item = self.snapshots_tree.currentItem()
        return None if item is None else int(item.data(0, Qt.UserRole))

    def _on_deploy(self) -> None:
        iteration = self.selected_snapshot()
        if iteration is not None:
            self.deploy_requested.emit(iteration)

    def _update_buttons(self) -> None:
        has_run = self.selected_run() is not None
        self.delete_button.setEnabled(has_run)
        self.csv_button.setEnabled(has_run)
        self.png_button.setEnabled(has_run)
        self.deploy_button.setEnabled(self.snapshots_tree.topLevelItemCount() > 0)
