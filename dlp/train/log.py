"""Incremental parser of Caffe training logs (ours and real ``caffe train`` logs).

Feed lines as they arrive (the GUI tails a growing file) and get records back::

    parser = LogParser()
    for line in stream:
        for record in parser.feed(line):
            ...

Unlike Caffe's ``tools/extra/parse_log.py`` this reads one line at a time, needs no
year guess, and understands several test nets and restarts: when a run is resumed
the iteration goes backwards (or repeats after ``Solving``/``Restoring``), and a
:class:`Restart` record marks the new segment; :func:`curves` then keeps only the
latest segment's points for the iterations it covers again.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass

# glog: "I1123 10:00:00.123456  1234 solver.cpp:243] message"
_GLOG = re.compile(r"^([IWEF])\d{4} \d\d:\d\d:\d\d(?:\.\d+)?\s+\d+ [^\]\s]+:\d+\] ?(.*)$")
_NUMBER = r"([-+]?(?:nan|inf|[\d.]+(?:[eE][-+]?\d+)?))"
_TRAIN_LOSS = re.compile(rf"^Iteration (\d+)(?: \([^)]*\))?, loss = {_NUMBER}")
_LR = re.compile(rf"^Iteration (\d+), lr = {_NUMBER}")
_TESTING = re.compile(r"^Iteration (\d+), Testing net \(#(\d+)\)")
_OUTPUT = re.compile(rf"^\s*(Train|Test) net output #(\d+): (\S+) = {_NUMBER}")
_TEST_LOSS = re.compile(rf"^Test loss: {_NUMBER}")
_SNAPSHOT = re.compile(r"^Snapshotting (?:solver state )?to binary proto file (.+?)\s*$")
_SNAPSHOT_ITER = re.compile(r"_iter_(\d+)\.(?:caffemodel|solverstate)(?:\.h5)?$")
_NEW_SEGMENT = re.compile(r"^(Solving |Restoring previous solver status from )")
_CLI_ERROR = re.compile(r"^dlp \w+: error: (.*)$")


@dataclass(frozen=True)
class TrainLoss:
    iteration: int
    loss: float


@dataclass(frozen=True)
class TrainOutput:
    iteration: int
    index: int
    name: str
    value: float


@dataclass(frozen=True)
class TestOutput:
    __test__ = False  # not a pytest test class despite the name
    iteration: int
    test_net: int
    index: int
    name: str
    value: float


@dataclass(frozen=True)
class TestLoss:
    """``Test loss: X`` (printed only with ``test_compute_loss``)."""

    __test__ = False  # not a pytest test class despite the name

    iteration: int
    test_net: int
    loss: float


@dataclass(frozen=True)
class LearningRate:
    iteration: int
    lr: float


@dataclass(frozen=True)
class Snapshot:
    """One snapshot file written (``.caffemodel`` or ``.solverstate``)."""

    iteration: int
    path: str


@dataclass(frozen=True)
class Restart:
    """A resumed run starts a new segment at ``iteration``."""

    iteration: int


@dataclass(frozen=True)
class Done:
    stopped_early: bool = False


@dataclass(frozen=True)
class Failure:
    message: str


LogRecord = (
    TrainLoss | TrainOutput | TestOutput | TestLoss | LearningRate | Snapshot | Restart | Done
    | Failure
)


def _float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.nan


class LogParser:
    """Turns log lines into records, keeping just enough state between lines."""

    def __init__(self) -> None:
        self._train_iter = 0
        self._test_iter = 0
        self._test_net = 0
        self._last_iter: int | None = None
        self._segment_pending = False

    def _at(self, iteration: int) -> list[LogRecord]:
        """Note an iteration; return a Restart when it starts a new segment."""
        records: list[LogRecord] = []
        last = self._last_iter
        if last is not None and (
            iteration < last or (self._segment_pending and iteration <= last)
        ):
            records.append(Restart(iteration))
        self._segment_pending = False
        self._last_iter = iteration
        return records

    def feed(self, line: str) -> list[LogRecord]:
        """Parse one line (with or without glog prefix) into zero or more records."""
        line = line.rstrip("\r\n")
        level = "I"
        match = _GLOG.match(line)
        if match:
            level, message = match.group(1), match.group(2)
        else:
            message = line
        stripped = message.strip()
        if not stripped:
            return []

        if match := _OUTPUT.match(message):
            kind, index, name, value = match.groups()
            if kind == "Train":
                return [TrainOutput(self._train_iter, int(index), name, _float(value))]
            return [TestOutput(self._test_iter, self._test_net, int(index), name, _float(value))]
        if match := _TRAIN_LOSS.match(stripped):
            iteration = int(match.group(1))
            self._train_iter = iteration
            return [*self._at(iteration), TrainLoss(iteration, _float(match.group(2)))]
        if match := _LR.match(stripped):
            iteration = int(match.group(1))
            return [*self._at(iteration), LearningRate(iteration, _float(match.group(2)))]
        if match := _TESTING.match(stripped):
            iteration = int(match.group(1))
            self._test_iter, self._test_net = iteration, int(match.group(2))
            return self._at(iteration)
        if match := _TEST_LOSS.match(stripped):
            return [TestLoss(self._test_iter, self._test_net, _float(match.group(1)))]
        if match := _SNAPSHOT.match(stripped):
            path = match.group(1)
            found = _SNAPSHOT_ITER.search(path)
            iteration = int(found.group(1)) if found else (self._last_iter or 0)
            return [Snapshot(iteration, path)]
        if stripped.startswith("Optimization Done"):
            return [Done()]
        if stripped.startswith("Optimization stopped early"):
            return [Done(stopped_early=True)]
        if _NEW_SEGMENT.match(stripped):
            self._segment_pending = self._last_iter is not None
            return []
        if match := _CLI_ERROR.match(stripped):
            return [Failure(match.group(1))]
        if level in ("E", "F"):
            return [Failure(stripped)]
        return []

    def feed_lines(self, lines: Iterable[str]) -> list[LogRecord]:
        records: list[LogRecord] = []
        for line in lines:
            records.extend(self.feed(line))
        return records


def parse_log(path: str | os.PathLike[str]) -> list[LogRecord]:
    """Parse a whole log file."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        return LogParser().feed_lines(handle)


def element_names(outputs: list[tuple[int, str, float]]) -> list[tuple[str, float]]:
    """Name the outputs of one block; a name printed k > 1 times becomes ``NAME[i]``.

    Caffe prints each element of a multi-element output blob (per-class Dice) as its
    own ``output #k`` line with the same name; ``NAME[i]`` tells them apart.
    """
    counts: dict[str, int] = {}
    for _, name, _ in outputs:
        counts[name] = counts.get(name, 0) + 1
    seen: dict[str, int] = {}
    named = []
    for _, name, value in sorted(outputs):
        if counts[name] > 1:
            element = seen.get(name, 0)
            seen[name] = element + 1
            named.append((f"{name}[{element}]", value))
        else:
            named.append((name, value))
    return named


def _test_prefix(test_net: int) -> str:
    return "test" if test_net == 0 else f"test{test_net}"


def curves(records: Iterable[LogRecord]) -> dict[str, tuple[list[int], list[float]]]:
    """Group records into named curves: ``loss``, ``lr``, ``train/NAME``, ``test/NAME``.

    Test net #k > 0 curves are ``test{k}/NAME``; ``Test loss`` is ``test/loss_total``.
    Multi-element outputs become ``NAME[i]``.  After a :class:`Restart` at iteration
    k, earlier points at iterations >= k are dropped (the resumed run supersedes them).
    """
    result: dict[str, tuple[list[int], list[float]]] = {}
    blocks: dict[tuple[str, int], list[tuple[int, str, float]]] = {}
    order: list[tuple[str, int]] = []

    def add(name: str, iteration: int, value: float) -> None:
        iters, values = result.setdefault(name, ([], []))
        iters.append(iteration)
        values.append(value)

    def flush_blocks() -> None:
        for key in order:
            prefix, iteration = key
            for name, value in element_names(blocks[key]):
                add(f"{prefix}/{name}", iteration, value)
        blocks.clear()
        order.clear()

    def block(prefix: str, iteration: int) -> list[tuple[int, str, float]]:
        key = (prefix, iteration)
        if key not in blocks:
            blocks[key] = []
            order.append(key)
        return blocks[key]

    for record in records:
        if isinstance(record, Restart):
            flush_blocks()
            for iters, values in result.values():
                keep = [i for i, it in enumerate(iters) if it < record.iteration]
                iters[:] = [iters[i] for i in keep]
                values[:] = [values[i] for i in keep]
        elif isinstance(record, TrainLoss):
            add("loss", record.iteration, record.loss)
        elif isinstance(record, LearningRate):
            add("lr", record.iteration, record.lr)
        elif isinstance(record, TrainOutput):
            block("train", record.iteration).append((record.index, record.name, record.value))
        elif isinstance(record, TestOutput):
            block(_test_prefix(record.test_net), record.iteration).append(
                (record.index, record.name, record.value)
            )
        elif isinstance(record, TestLoss):
            add(f"{_test_prefix(record.test_net)}/loss_total", record.iteration, record.loss)
    flush_blocks()
    return {name: curve for name, curve in result.items() if curve[0]}
