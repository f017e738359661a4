"""Training curves that grow while a log streams in, smoothing, and CSV export.

:class:`LiveCurves` is the incremental twin of :func:`dlp.train.log.curves`: fed the
same records it ends with the same named curves (``loss``, ``lr``, ``train/NAME``,
``test/NAME``, ``test/NAME[i]``), but it keeps each curve in preallocated numpy
arrays that double when full, so a plot can show ``x[:n]`` views without copying
(pyqtgraph's scrollingPlots habit).
"""

from __future__ import annotations

import csv
import math
import os
from collections.abc import Iterable, Mapping
from pathlib import Path

import numpy as np

from dlp.fsutil import atomic_path
from dlp.train.log import (
    LearningRate,
    LogRecord,
    Restart,
    TestLoss,
    TestOutput,
    TrainLoss,
    TrainOutput,
    element_names,
)

_INITIAL_CAPACITY = 256


class GrowingSeries:
    """``(iteration, value)`` points in arrays that double when full."""

    def __init__(self, capacity: int = _INITIAL_CAPACITY) -> None:
        self._x = np.empty(capacity, dtype=np.float64)
        self._y = np.empty(capacity, dtype=np.float64)
        self.count = 0
        self.generation = 0  # bumped when points are dropped (caches of y start over)

    def append(self, iteration: float, value: float) -> None:
        if self.count == len(self._x):
            self._x = np.concatenate([self._x, np.empty_like(self._x)])
            self._y = np.concatenate([self._y, np.empty_like(self._y)])
        self._x[self.count] = iteration
        self._y[self.count] = value
        self.count += 1

    def extend(self, iterations: np.ndarray, values: np.ndarray) -> None:
        for it, value in zip(iterations, values, strict=False):
            self.append(float(it), float(value))

    def truncate_from(self, iteration: float) -> None:
        """Drop points at ``iteration`` and later (a resumed run supersedes them)."""
        count = int(np.searchsorted(self._x[: self.count], iteration, side="left"))
        if count != self.count:
            self.count = count
            self.generation += 1

    @property
    def x(self) -> np.ndarray:
        """Iterations, a view (no copy) of the filled part."""
        return self._x[: self.count]

    @property
    def y(self) -> np.ndarray:
        return self._y[: self.count]

    def __len__(self) -> int:
        return self.count


def _prefix(kind: str, test_net: int) -> str:
    if kind == "train":
        return "train"
    return "test" if test_net == 0 else f"test{test_net}"


class LiveCurves:
    """Named curves built incrementally from :class:`dlp.train.log.LogParser` records.

    Output lines of one block (one test round) are held until the block ends —
    a per-class output's element index is only known once the block is complete —
    that is, until a record of another kind arrives or :meth:`flush` is called.
    ``changed`` collects the names touched since :meth:`take_changed`.
    """

    def __init__(self) -> None:
        self.series: dict[str, GrowingSeries] = {}
        self._block_key: tuple[str, int] | None = None
        self._block: list[tuple[int, str, float]] = []
        self.changed: set[str] = set()
        self.last_iteration = 0

    def _add(self, name: str, iteration: int, value: float) -> None:
        series = self.series.get(name)
        if series is None:
            series = self.series[name] = GrowingSeries()
        series.append(iteration, value)
        self.changed.add(name)

    def flush(self) -> None:
        """Emit the pending output block (call when the stream pauses or ends)."""
        if self._block_key is not None:
            prefix, iteration = self._block_key
            for name, value in element_names(self._block):
                self._add(f"{prefix}/{name}", iteration, value)
        self._block_key, self._block = None, []

    def feed(self, records: Iterable[LogRecord]) -> None:
        for record in records:
            if isinstance(record, (TrainOutput, TestOutput)):
                if isinstance(record, TrainOutput):
                    key = ("train", record.iteration)
                else:
                    key = (_prefix("test", record.test_net), record.iteration)
                if key != self._block_key:
                    self.flush()
                    self._block_key = key
                self._block.append((record.index, record.name, record.value))
                continue
            self.flush()
            if isinstance(record, Restart):
                for name, series in self.series.items():
                    series.truncate_from(record.iteration)
                    self.changed.add(name)
            elif isinstance(record, TrainLoss):
                self._add("loss", record.iteration, record.loss)
                self.last_iteration = max(self.last_iteration, record.iteration)
            elif isinstance(record, LearningRate):
                self._add("lr", record.iteration, record.lr)
            elif isinstance(record, TestLoss):
                self._add(f"{_prefix('test', record.test_net)}/loss_total", record.iteration,
                          record.loss)

    def take_changed(self) -> set[str]:
        changed, self.changed = self.changed, set()
        return changed

    def as_dict(self) -> dict[str, tuple[list[int], list[float]]]:
        """The same shape as :func:`dlp.train.log.curves` returns (non-empty curves)."""
        return {name: ([int(i) for i in s.x], [float(v) for v in s.y])
                for name, s in self.series.items() if len(s)}

    def value_at(self, name: str, iteration: int) -> float | None:
        series = self.series.get(name)
        if series is None or not len(series):
            return None
        index = int(np.searchsorted(series.x, iteration))
        if index < len(series) and series.x[index] == iteration:
            return float(series.y[index])
        return None


class Smoother:
    """TensorBoard's debiased exponential moving average, extended point by point.

    A live curve only smooths the points added since the last call, so a growing
    100,000-point curve costs as much per update as the new points.  NaN/Inf points
    are skipped (they stay NaN) so one diverged iteration does not blank the curve.
    """

    def __init__(self, weight: float) -> None:
        if not 0 <= weight < 1:
            raise ValueError(f"smoothing weight must be in [0, 1); got {weight}")
        self.weight = weight
        self._out = np.empty(0, dtype=np.float64)
        self._done = 0
        self._ema = 0.0
        self._finite = 0
        self._generation = 0

    def update(self, values: np.ndarray, generation: int = 0) -> np.ndarray:
        """The smoothed ``values``: they extend the values seen before unless
        ``generation`` changed (points were dropped: a resumed run) — then start over."""
        count = len(values)
        if count < self._done or generation != self._generation:
            self._done, self._ema, self._finite = 0, 0.0, 0
            self._generation = generation
        if len(self._out) < count:
            grown = np.empty(max(count, 2 * len(self._out)), dtype=np.float64)
            grown[: self._done] = self._out[: self._done]
            self._out = grown
        weight, ema, finite = self.weight, self._ema, self._finite
        new = values[self._done: count].tolist()
        out = self._out
        for offset, value in enumerate(new):
            if math.isfinite(value):
                ema = weight * ema + (1.0 - weight) * value
                finite += 1
                out[self._done + offset] = ema / (1.0 - weight ** finite)
            else:
                out[self._done + offset] = math.nan
        self._ema, self._finite, self._done = ema, finite, count
        return out[:count]


def smooth(values: np.ndarray, weight: float) -> np.ndarray:
    """Debiased exponential moving average of ``values``; ``weight`` in [0, 1)."""
    values = np.asarray(values, dtype=np.float64)
    if weight <= 0 or values.size == 0:
        return values.copy()
    return Smoother(weight).update(values).copy()


def best_point(series: GrowingSeries | tuple[np.ndarray, np.ndarray],
               mode: str = "max") -> tuple[int, float] | None:
    """The (iteration, value) of the best finite point of a curve, or None."""
    x, y = (series.x, series.y) if isinstance(series, GrowingSeries) else series
    y = np.asarray(y, dtype=np.float64)
    finite = np.isfinite(y)
    if not finite.any():
        return None
    masked = np.where(finite, y, -np.inf if mode == "max" else np.inf)
    index = int(np.argmax(masked) if mode == "max" else np.argmin(masked))
    return int(x[index]), float(y[index])


def write_curves_csv(curves: Mapping[str, tuple[Iterable[float], Iterable[float]]],
                     path: str | os.PathLike[str]) -> Path:
    """One row per iteration, one column per curve (empty where a curve has no point).

    Written atomically; returns the path.
    """
    columns = sorted(curves)
    table: dict[int, dict[str, float]] = {}
    for name in columns:
        iters, values = curves[name]
        for it, value in zip(iters, values, strict=False):
            table.setdefault(int(it), {})[name] = float(value)
    path = Path(path)
    with atomic_path(path) as tmp, open(tmp, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["iteration", *columns])
        for it in sorted(table):
            row = table[it]
            writer.writerow([it, *(_csv_number(row.get(name)) for name in columns)])
    return path


def _csv_number(value: float | None) -> str:
    if value is None:
        return ""
    if math.isnan(value):
        return "nan"
    return repr(value)


def read_curves_csv(path: str | os.PathLike[str]) -> dict[str, tuple[list[int], list[float]]]:
    """Read back what :func:`write_curves_csv` wrote."""
    with open(path, newline="", encoding="utf-8") as handle:
        reader = csv.reader(handle)
        header = next(reader)
        result: dict[str, tuple[list[int], list[float]]] = {n: ([], []) for n in header[1:]}
        for row in reader:
            it = int(row[0])
            for name, cell in zip(header[1:], row[1:], strict=False):
                if cell != "":
                    result[name][0].append(it)
                    result[name][1].append(float(cell))
    return result
