"""Training log in Caffe's exact format, plus a JSON-lines side file for the GUI.

Lines carry glog's prefix (``I1123 10:00:00.123456  1234 solver.cpp:243] msg``) so
Caffe's ``parse_log.py`` and third-party parsers read our logs like a ``caffe train``
log.  Every line is flushed at once (the GUI tails the file while training runs).
The side file ``<log>.jsonl`` holds one JSON object per event with
``{"event": "train"|"test"|"lr"|"snapshot"|"done"|"error"|..., "iter": N, ...}``;
multi-element outputs (per-class Dice) are named ``NAME[i]`` there.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import socket
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

#: Caffe source locations printed in the glog prefix, so the log looks like Caffe's.
WHERE = {
    "solve": "solver.cpp:310",
    "train": "solver.cpp:243",
    "train_output": "solver.cpp:259",
    "lr": "sgd_solver.cpp:138",
    "test": "solver.cpp:362",
    "test_output": "solver.cpp:429",
    "snapshot": "sgd_solver.cpp:273",
    "snapshot_state": "sgd_solver.cpp:290",
    "done": "solver.cpp:347",
    "note": "solver.cpp:48",
    "clip": "sgd_solver.cpp:86",
}


@dataclass(frozen=True)
class OutputValues:
    """One output blob's values (flattened) and its loss weight (0 for metrics)."""

    name: str
    values: tuple[float, ...]
    loss_weight: float = 0.0


def format_number(value: float) -> str:
    """Format like C++ ``ostream << float`` (6 significant digits, ``%g`` style)."""
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return f"{value:.6g}"


def output_lines(kind: str, outputs: Sequence[OutputValues]) -> list[str]:
    """Caffe's ``    Train net output #k: NAME = V (* W = L loss)`` lines."""
    lines, index = [], 0
    for output in outputs:
        for value in output.values:
            suffix = ""
            if output.loss_weight:
                weighted = format_number(output.loss_weight * value)
                suffix = f" (* {format_number(output.loss_weight)} = {weighted} loss)"
            lines.append(
                f"    {kind} net output #{index}: {output.name} = {format_number(value)}{suffix}"
            )
            index += 1
    return lines


def output_dict(outputs: Sequence[OutputValues]) -> dict[str, float | None]:
    """``{NAME: v}`` for scalars and ``{NAME[i]: v}`` for multi-element outputs."""
    result: dict[str, float | None] = {}
    for output in outputs:
        if len(output.values) == 1:
            result[output.name] = _json_number(output.values[0])
        else:
            for i, value in enumerate(output.values):
                result[f"{output.name}[{i}]"] = _json_number(value)
    return result


def _json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


class LogWriter:
    """Writes Caffe-format lines to ``stream`` and optionally a file.

    ``stream`` defaults to the current ``sys.stderr`` (where Caffe's glog writes);
    ``None`` writes to the file only.

    With ``path`` the same lines go to ``path`` and events to ``path + ".jsonl"``.
    ``enabled=False`` (non-root ranks in distributed training) writes nothing.
    """

    def __init__(
        self,
        stream: IO[str] | str | None = "stderr",
        path: str | os.PathLike[str] | None = None,
        *,
        enabled: bool = True,
    ) -> None:
        self._stream = stream
        self._enabled = enabled
        self._file: IO[str] | None = None
        self._jsonl: IO[str] | None = None
        self._tid = threading.get_native_id()
        self.path = Path(path) if path is not None else None
        if enabled and self.path is not None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # append: a resumed run continues the same log (the parser sees the restart)
            self._file = open(self.path, "a", encoding="utf-8", buffering=1)  # noqa: SIM115
            self._jsonl = open(  # noqa: SIM115
                f"{self.path}.jsonl", "a", encoding="utf-8", buffering=1
            )
            if self._file.tell() == 0:
                self._write_glog_header()

    # -- plumbing -----------------------------------------------------------------
    def _write_glog_header(self) -> None:
        assert self._file is not None
        now = _dt.datetime.now()
        self._file.write(
            f"Log file created at: {now:%Y/%m/%d %H:%M:%S}\n"
            f"Running on machine: {socket.gethostname()}\n"
            "Log line format: [IWEF]mmdd hh:mm:ss.uuuuuu threadid file:line] msg\n"
        )
        self._file.flush()

    def line(
        self, message: str, where: str = WHERE["note"], level: str = "I", *,
        to_stream: bool = True,
    ) -> None:
        """Write one glog-prefixed line to the stream and the log file, flushed."""
        if not self._enabled:
            return
        now = _dt.datetime.now()
        text = f"{level}{now:%m%d %H:%M:%S.%f} {self._tid:5d} {where}] {message}\n"
        stream = sys.stderr if self._stream == "stderr" else self._stream
        for target in (stream if to_stream else None, self._file):
            if target is not None:
                target.write(text)
                target.flush()

    def event(self, kind: str, iteration: int, **fields: Any) -> None:
        """Append one JSON event to the side file (no-op without ``--log``)."""
        if not self._enabled or self._jsonl is None:
            return
        stamp = round(_dt.datetime.now().timestamp(), 3)
        record = {"event": kind, "iter": iteration, "time": stamp}
        record.update(fields)
        self._jsonl.write(json.dumps(record, allow_nan=False) + "\n")
        self._jsonl.flush()

    def close(self) -> None:
        for handle in (self._file, self._jsonl):
            if handle is not None:
                handle.close()
        self._file = self._jsonl = None

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- Caffe's messages ---------------------------------------------------------
    def info(self, message: str) -> None:
        self.line(message)

    def warning(self, message: str) -> None:
        self.line(message, level="W")

    def start(self, net_name: str, lr_policy: str, max_iter: int, **fields: Any) -> None:
        self.line(f"Solving {net_name}", WHERE["solve"])
        self.line(f"Learning Rate Policy: {lr_policy}", WHERE["solve"])
        self.event("start", int(fields.pop("iteration", 0)), net=net_name, max_iter=max_iter,
                   **fields)

    def train(self, iteration: int, loss: float, outputs: Sequence[OutputValues]) -> None:
        self.line(f"Iteration {iteration}, loss = {format_number(loss)}", WHERE["train"])
        for text in output_lines("Train", outputs):
            self.line(text, WHERE["train_output"])
        self.event("train", iteration, loss=_json_number(loss), outputs=output_dict(outputs))

    def lr(self, iteration: int, rate: float) -> None:
        self.line(f"Iteration {iteration}, lr = {format_number(rate)}", WHERE["lr"])
        self.event("lr", iteration, lr=_json_number(rate))

    def clipped(self, norm: float, threshold: float) -> None:
        self.line(
            f"Gradient clipping: scaling down gradients (L2 norm {format_number(norm)} > "
            f"{format_number(threshold)}) by scale factor {format_number(threshold / norm)}",
            WHERE["clip"],
        )

    def test_start(self, iteration: int, net_id: int) -> None:
        self.line(f"Iteration {iteration}, Testing net (#{net_id})", WHERE["test"])

    def test(
        self,
        iteration: int,
        net_id: int,
        outputs: Sequence[OutputValues],
        loss: float | None = None,
    ) -> None:
        if loss is not None:
            self.line(f"Test loss: {format_number(loss)}", WHERE["test_output"])
        for text in output_lines("Test", outputs):
            self.line(text, WHERE["test_output"])
        fields: dict[str, Any] = {"net": net_id, "outputs": output_dict(outputs)}
        if loss is not None:
            fields["loss"] = _json_number(loss)
        self.event("test", iteration, **fields)

    def snapshot(self, iteration: int, caffemodel: Path, solverstate: Path) -> None:
        self.event("snapshot", iteration, caffemodel=str(caffemodel), solverstate=str(solverstate))

    def snapshot_model(self, path: Path) -> None:
        self.line(f"Snapshotting to binary proto file {path}", WHERE["snapshot"])

    def snapshot_state(self, path: Path) -> None:
        self.line(f"Snapshotting solver state to binary proto file {path}", WHERE["snapshot_state"])

    def best(self, iteration: int, metric: str, value: float, caffemodel: Path | None) -> None:
        self.line(
            f"Best {metric} = {format_number(value)} at iteration {iteration}", WHERE["test_output"]
        )
        self.event("best", iteration, metric=metric, value=_json_number(value),
                   caffemodel=str(caffemodel) if caffemodel else None)

    def done(self, iteration: int, reason: str = "max_iter") -> None:
        if reason == "max_iter":
            self.line("Optimization Done.", WHERE["done"])
        else:
            self.line(f"Optimization stopped early ({reason}).", WHERE["done"])
        self.event("done", iteration, reason=reason)

    def failure(self, iteration: int, message: str, *, to_stream: bool = True) -> None:
        """An ``E`` line and an ``error`` event; ``to_stream=False`` keeps it out of
        stderr when the CLI prints the error there itself."""
        self.line(message, WHERE["train"], level="E", to_stream=to_stream)
        self.event("error", iteration, message=message)
