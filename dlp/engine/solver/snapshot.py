"""Snapshots: ``PREFIX_iter_N.caffemodel`` + ``.solverstate`` (Caffe's) + ``.dlpstate``.

The ``.solverstate`` is Caffe's ``SolverState`` (iter, learned_net, history blobs,
current_step), readable by BVLC Caffe.  What Caffe does not keep but an exact
resume needs — the random generators, the data layers' read positions, the
smoothed-loss window, best-metric bookkeeping — goes to a side file
``PREFIX_iter_N.dlpstate`` (a ``torch.save`` dict).  A ``.solverstate`` without its
``.dlpstate`` (e.g. from a real Caffe) still resumes, just not bit-for-bit.
All three files are written atomically.
"""

from __future__ import annotations

import contextlib
import os
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlp.errors import InputError
from dlp.fsutil import atomic_path, atomic_write_bytes


class SnapshotError(InputError):
    """A snapshot file is unreadable or does not fit the net being trained."""


@dataclass(frozen=True)
class SnapshotFiles:
    caffemodel: Path
    solverstate: Path

    @property
    def dlpstate(self) -> Path:
        return self.solverstate.with_suffix(".dlpstate")

    def all(self) -> list[Path]:
        return [self.caffemodel, self.solverstate, self.dlpstate]


def snapshot_files(prefix: Path, iteration: int) -> SnapshotFiles:
    """Caffe's file names: ``PREFIX_iter_N.caffemodel`` and ``PREFIX_iter_N.solverstate``."""
    base = f"{prefix}_iter_{iteration}"
    return SnapshotFiles(Path(base + ".caffemodel"), Path(base + ".solverstate"))


def write_solverstate(
    path: Path, iteration: int, learned_net: Path, history: Sequence[torch.Tensor],
    current_step: int,
) -> None:
    from dlp.engine.weights import tensor_to_blob
    from dlp.proto import caffe_pb2

    state = caffe_pb2.SolverState()
    state.iter = iteration
    state.learned_net = str(learned_net)
    state.current_step = current_step
    for tensor in history:
        state.history.append(tensor_to_blob(tensor))
    atomic_write_bytes(path, state.SerializeToString())


def read_solverstate(path: str | os.PathLike[str]) -> Any:
    from google.protobuf.message import DecodeError

    from dlp.proto import caffe_pb2

    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise SnapshotError(f"{path}: cannot read solver state ({exc.strerror or exc})") from None
    state = caffe_pb2.SolverState()
    try:
        state.ParseFromString(data)
    except DecodeError:
        raise SnapshotError(f"{path}: not a Caffe SolverState (binary proto)") from None
    if not state.HasField("iter"):
        raise SnapshotError(f"{path}: field iter missing; not a Caffe .solverstate file")
    return state


def learned_net_path(state: Any, solverstate_path: Path) -> Path:
    """Where ``state.learned_net`` is: as written, else next to the ``.solverstate``."""
    if not state.learned_net:
        raise SnapshotError(f"{solverstate_path}: field learned_net is empty")
    written = Path(state.learned_net)
    if written.exists():
        return written
    beside = solverstate_path.parent / written.name
    if beside.exists():
        return beside
    raise SnapshotError(
        f"{solverstate_path}: field learned_net: {state.learned_net!r} not found "
        f"(also looked in {solverstate_path.parent})"
    )


def rng_state() -> dict[str, Any]:
    """Every random generator training touches (torch CPU/CUDA, numpy, Python)."""
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": np.random.get_state(),
        "python": random.getstate(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    np.random.set_state(state["numpy"])
    random.setstate(state["python"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def write_dlpstate(path: Path, state: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def read_dlpstate(path: Path) -> dict[str, Any] | None:
    """The side file's dict, or None when there is none (a snapshot from Caffe)."""
    if not path.exists():
        return None
    try:
        return torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # a damaged side file must not hide the real snapshot
        raise SnapshotError(f"{path}: unreadable DLP resume state ({exc})") from None


def remove_snapshot(files: SnapshotFiles) -> None:
    for path in files.all():
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
