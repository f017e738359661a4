"""A run resumed from a snapshot continues exactly like the uninterrupted run."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
import torch

from dlp.engine.solver.logwriter import LogWriter
from dlp.engine.solver.snapshot import read_solverstate
from dlp.engine.solver.solver import Solver
from dlp.engine.weights import read_caffemodel
from dlp.net.prototxt import read_solver
from dlp.train.log import LogParser, TestOutput, TrainLoss
from tests.engine.solver.conftest import make_task


def run(solver_path: Path, resume: Path | None = None, **overrides) -> tuple[list, Solver]:
    param = read_solver(solver_path)
    for name, value in overrides.items():
        setattr(param, name, value)
    stream = io.StringIO()
    solver = Solver(param, solver_dir=solver_path.parent, solver_path=solver_path,
                    log=LogWriter(stream))
    try:
        solver.solve(resume_from=resume)
    finally:
        solver.close()
    return LogParser().feed_lines(stream.getvalue().splitlines()), solver


def by_iteration(records: list, start: int) -> dict:
    out = {}
    for r in records:
        if isinstance(r, TrainLoss) and r.iteration >= start:
            out[("train_loss", r.iteration)] = r.loss
        if isinstance(r, TestOutput) and r.iteration >= start:
            out[(r.name, r.index, r.iteration)] = r.value
    return out


@pytest.mark.parametrize("solver_type", ["SGD", "Adam"])
def test_resume_gives_the_same_losses_as_an_uninterrupted_run(
    tmp_path: Path, monkeypatch, solver_type: str
) -> None:
    # 24 records, batch 4: the resume point (iteration 9) is mid-epoch, shuffled data,
    # average_loss smoothing across the cut, multistep lr state and a test net.
    extra = f'type: "{solver_type}"\naverage_loss: 3\n'
    solver_path = make_task(tmp_path / "t", max_iter=16, snapshot=9, test_interval=6,
                            display=1, base_lr=0.01, extra=extra)
    text = solver_path.parent.joinpath("train_val.prototxt").read_text()
    text = text.replace("backend: LMDB }", "backend: LMDB shuffle: true }")
    solver_path.parent.joinpath("train_val.prototxt").write_text(text)
    text = solver_path.read_text().replace('lr_policy: "fixed"',
                                           'lr_policy: "multistep"\nstepvalue: 4\nstepvalue: 12\n'
                                           "gamma: 0.5")
    solver_path.write_text(text)
    monkeypatch.chdir(solver_path.parent)

    whole, whole_solver = run(solver_path)
    final_whole = read_caffemodel("snapshots/tiny_iter_16.caffemodel")
    state = read_solverstate("snapshots/tiny_iter_9.solverstate")
    assert state.iter == 9 and state.current_step == 1
    assert len(state.history) == len(whole_solver.rule.history)

    resumed, _ = run(solver_path, resume=Path("snapshots/tiny_iter_9.solverstate"))
    expected = by_iteration(whole, 9)
    got = by_iteration(resumed, 9)
    assert set(got) == set(expected)
    assert len([k for k in got if k[0] == "train_loss"]) == 8  # 9..15 and the final one
    for key, value in expected.items():
        assert got[key] == pytest.approx(value, rel=1e-5, abs=1e-7), key
    final_resumed = read_caffemodel("snapshots/tiny_iter_16.caffemodel")
    from dlp.engine.weights import blob_to_array

    for a, b in zip(final_whole.layer, final_resumed.layer, strict=True):
        for x, y in zip(a.blobs, b.blobs, strict=True):
            assert torch.allclose(torch.from_numpy(blob_to_array(x)),
                                  torch.from_numpy(blob_to_array(y)), atol=1e-6)
