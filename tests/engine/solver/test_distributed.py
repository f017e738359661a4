"""Data-parallel training on 2 CPU processes (gloo) matches one process with the same
global batch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from dlp.cli import main
from dlp.engine.weights import blob_to_array, read_caffemodel
from dlp.train.log import TrainLoss, parse_log
from tests.engine.solver.conftest import make_task

REPO = Path(__file__).resolve().parents[3]


def losses(log: Path) -> dict[int, float]:
    return {r.iteration: r.loss for r in parse_log(log) if isinstance(r, TrainLoss)}


@pytest.mark.slow
def test_two_gloo_processes_match_one_process_with_the_global_batch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    solver = make_task(tmp_path / "ddp", max_iter=6, snapshot=0, test_interval=3, display=1,
                       base_lr=0.02, extra="test_initialization: false")
    folder = solver.parent
    net = folder / "train_val.prototxt"
    local = net.read_text()
    # one process, batch 8 in the TRAIN phase (the test net keeps batch 4)
    single = local.replace("batch_size: 4 backend: LMDB } }\nlayer { name: \"label\" type: "
                           "\"Data\" top: \"label\" include { phase: TRAIN }",
                           "batch_size: 8 backend: LMDB } }\nlayer { name: \"label\" type: "
                           "\"Data\" top: \"label\" include { phase: TRAIN }", 1)
    single = single.replace('source: "train_db/labels" batch_size: 4',
                            'source: "train_db/labels" batch_size: 8')
    assert single.count("batch_size: 8") == 2
    (folder / "single.prototxt").write_text(single)
    (folder / "single_solver.prototxt").write_text(
        solver.read_text().replace('"train_val.prototxt"', '"single.prototxt"').replace(
            '"snapshots/tiny"', '"snapshots/single"'))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    two = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "dlp", "train", "--solver", "solver.prototxt"],
        cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    assert two.returncode == 0, two.stderr
    monkeypatch.chdir(folder)
    assert main(["train", "--solver", "single_solver.prototxt", "--log", "single.log"]) == 0

    # (torchrun's own argument parser would take --log for its --log-dir, so this run
    # logs to stderr only, as Caffe does; only rank 0 writes the log)
    (folder / "ddp.log").write_text(two.stderr)
    assert two.stderr.count("Optimization Done.") == 1
    expected, got = losses(folder / "single.log"), losses(folder / "ddp.log")
    assert sorted(got) == list(range(7))
    for iteration, value in expected.items():
        assert got[iteration] == pytest.approx(value, rel=1e-4), iteration
    a = read_caffemodel(folder / "snapshots/single_iter_6.caffemodel")
    b = read_caffemodel(folder / "snapshots/tiny_iter_6.caffemodel")
    for la, lb in zip(a.layer, b.layer, strict=True):
        for x, y in zip(la.blobs, lb.blobs, strict=True):
            assert blob_to_array(x) == pytest.approx(blob_to_array(y), abs=1e-5)
