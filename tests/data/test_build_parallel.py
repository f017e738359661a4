"""Builds that prepare slices in worker processes give exactly the sequential build."""

from __future__ import annotations

import json
import multiprocessing
import os
import time
from pathlib import Path

import numpy as np
import pytest

from dlp.data.builder import BuildError, BuildOptions, build_dataset
from dlp.data.lmdb_io import DatumDB
from dlp.data.preprocess import Preprocessing
from dlp.data.slice_pipeline import (
    MIN_ITEMS_FOR_WORKERS,
    PreparedItem,
    PreparedSlice,
    SlicePreparer,
    WorkerError,
    resolve_workers,
)
from dlp.data.sources import SunnybrookSource
from dlp.errors import Cancelled, DLPError
from dlp.progress import CancelToken

pytestmark = pytest.mark.skipif(resolve_workers(2, 10) == 0,
                                reason="worker processes need fork (Linux)")

SMALL = Preprocessing(size=(48, 48), intensity="minmax")


def _sunnybrook(phantom, classes: str = "endo") -> SunnybrookSource:
    return SunnybrookSource(phantom.images_dir, phantom.contours_dir, classes)


def _contents(out: Path) -> dict[str, object]:
    """Everything a build wrote, minus the build time and the creation timestamp."""
    contents: dict[str, object] = {}
    for data_file in sorted(out.glob("*_db/*/data.mdb")):
        db = DatumDB(data_file.parent)
        try:
            keys = db.keys()  # DatumDB iterates decoded records; these are the raw bytes
            contents[str(data_file.parent.relative_to(out))] = [
                (key, db.get_bytes(key)) for key in keys
            ]
        finally:
            db.close()
    manifest = json.loads((out / "manifest.json").read_text())
    del manifest["created"]
    report = json.loads((out / "build-report.json").read_text())
    del report["seconds"], report["out_dir"]
    contents.update(manifest=manifest, report=report,
                    records=(out / "records.csv").read_text(),
                    mean=(out / "mean.binaryproto").read_bytes())
    return contents


def _no_workers_left() -> bool:
    return not [p for p in multiprocessing.active_children() if p.name.startswith("dlp-slices")]


@pytest.mark.parametrize(("classes", "prep", "encoding"), [
    ("endo", SMALL, None),
    ("endo,epi", Preprocessing(size=None, intensity="none", bits=16), None),
    ("endo", Preprocessing(size=(40, 40), intensity="zscore", channels=3), "png"),
])
def test_parallel_build_writes_the_same_dataset_as_a_sequential_one(
    small_phantom, tmp_path: Path, classes: str, prep: Preprocessing, encoding: str | None
) -> None:
    options = {"preprocessing": prep, "val_percent": 25, "test_percent": 25, "seed": 5,
               "encoding": encoding}
    sequential = build_dataset(_sunnybrook(small_phantom, classes), tmp_path / "seq",
                               BuildOptions(workers=1, **options))
    parallel = build_dataset(_sunnybrook(small_phantom, classes), tmp_path / "par",
                             BuildOptions(workers=2, **options))
    a, b = _contents(tmp_path / "seq"), _contents(tmp_path / "par")
    assert set(a) == set(b)
    assert {"train_db/features", "val_db/labels", "test_db/features"} <= set(a)
    for part in a:
        assert a[part] == b[part], part
    assert sequential.counts == parallel.counts and sequential.total > 0
    assert sequential.skipped == parallel.skipped
    assert (len(sequential.skipped) > 0) == (classes == "endo,epi")
    assert _no_workers_left()


def _damage(phantom) -> None:
    cases = phantom.images_dir / "challenge_training"
    truncated = cases / "SC-HYP-1" / "IM-0550-0021.dcm"
    truncated.write_bytes(truncated.read_bytes()[:700])
    (cases / "SC-N-2" / "IM-0898-0009.dcm").unlink()
    contour = next(iter(sorted(phantom.contours_dir.rglob("*icontour-manual.txt"))))
    contour.write_text("12.5 13.5\nnot a number\n")


def test_parallel_build_reports_the_same_problems(phantom_copy, tmp_path: Path) -> None:
    _damage(phantom_copy)
    sequential = build_dataset(_sunnybrook(phantom_copy), tmp_path / "seq",
                               BuildOptions(preprocessing=SMALL, workers=1))
    parallel = build_dataset(_sunnybrook(phantom_copy), tmp_path / "par",
                             BuildOptions(preprocessing=SMALL, workers=2))
    assert len(sequential.problems) == 3
    assert parallel.problems == sequential.problems
    reasons = " ".join(p.reason for p in parallel.problems)
    assert "no pixel data" in reasons and "not found" in reasons and "not a number" in reasons
    assert _contents(tmp_path / "seq") == _contents(tmp_path / "par")

    messages = []
    for workers in (1, 2):
        with pytest.raises(BuildError, match="--strict") as failure:
            build_dataset(_sunnybrook(phantom_copy), tmp_path / f"strict{workers}",
                          BuildOptions(preprocessing=SMALL, strict=True, workers=workers))
        messages.append(str(failure.value))
        assert not (tmp_path / f"strict{workers}").exists()
    assert messages[0] == messages[1]
    assert _no_workers_left()


@pytest.mark.parametrize("workers", [1, 2])
def test_a_cancelled_build_leaves_nothing_and_stops_its_workers(
    small_phantom, tmp_path: Path, workers: int
) -> None:
    token = CancelToken()
    seen = []

    def progress(event) -> None:
        seen.append(event.done)
        if event.done == 5:
            token.cancel()

    with pytest.raises(Cancelled):
        build_dataset(_sunnybrook(small_phantom), tmp_path / "ds",
                      BuildOptions(preprocessing=SMALL, workers=workers), progress=progress,
                      cancel=token)
    assert seen == [0, 1, 2, 3, 4, 5]
    assert list(tmp_path.iterdir()) == []
    assert _no_workers_left()


class _WorkerSensitiveSource(SunnybrookSource):
    """Slow in the builder's process (``parent``), so forked workers surely take chunks;
    in a worker, optionally fails on every item."""

    def __init__(self, phantom, parent: int, failure: str | None = None) -> None:
        super().__init__(phantom.images_dir, phantom.contours_dir)
        self.parent, self.failure = parent, failure
        self.loads_here = 0

    def load(self, item):
        if os.getpid() == self.parent:
            self.loads_here += 1
            if self.loads_here > 1:
                time.sleep(0.02)
        elif self.failure == "die":
            os._exit(3)  # as the kernel's out-of-memory killer would end it
        elif self.failure == "raise":
            raise ValueError(f"a bug while loading {item.name}")
        return super().load(item)


def test_a_worker_that_dies_fails_the_build_with_one_clear_error(small_phantom,
                                                                 tmp_path: Path) -> None:
    source = _WorkerSensitiveSource(small_phantom, os.getpid(), "die")
    with pytest.raises(WorkerError, match=r"died.*--workers 1") as failure:
        build_dataset(source, tmp_path / "ds", BuildOptions(preprocessing=SMALL, workers=2))
    assert isinstance(failure.value, DLPError)
    assert list(tmp_path.iterdir()) == []
    assert _no_workers_left()


def test_a_bug_in_a_worker_surfaces_as_the_same_exception(small_phantom,
                                                          tmp_path: Path) -> None:
    source = _WorkerSensitiveSource(small_phantom, os.getpid(), "raise")
    with pytest.raises(ValueError, match=r"a bug while loading .*\.dcm"):
        build_dataset(source, tmp_path / "ds", BuildOptions(preprocessing=SMALL, workers=2))
    assert list(tmp_path.iterdir()) == []
    assert _no_workers_left()


def _snapshot(item: PreparedItem) -> list[tuple[np.ndarray, ...]]:
    """Copies of an item's arrays (the ones from workers are valid only until the next)."""
    assert not item.problem and not item.skipped
    return [(np.array(s.features), np.array(s.labels), np.array(s.class_counts))
            for s in item.slices if isinstance(s, PreparedSlice)]


@pytest.mark.parametrize("room", [64 * 64 * 4 + 100, 4 << 20])
def test_prepared_slices_arrive_in_order_through_shared_memory_or_inline(
    small_phantom, room: int
) -> None:
    """Sizes unknown before reading get a guessed room; what exceeds it travels inline.
    More chunks than the shared memory has slots: slots are reused, in order."""
    source = _WorkerSensitiveSource(small_phantom, os.getpid())
    items = source.scan().items
    prep = Preprocessing(size=None, intensity="none", bits=16)
    expected = [_snapshot(item) for item in SlicePreparer(source, items, prep, workers=0)]
    preparer = SlicePreparer(source, items, prep, workers=3)
    preparer._slice_bytes = lambda: room  # 64x64 float features fit, their labels not
    with preparer:
        got = [_snapshot(item) for item in preparer]
    assert len(got) == len(expected) == len(items) > 3 * 4  # > the 12 slots of 3 processes
    for mine, theirs in zip(got, expected, strict=True):
        assert len(mine) == len(theirs) == 1
        for a, b in zip(mine[0], theirs[0], strict=True):
            np.testing.assert_array_equal(a, b)
    assert _no_workers_left()


def test_worker_count_follows_build_size_and_idle_cores_and_can_be_forced(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from dlp.data import slice_pipeline

    monkeypatch.setattr(slice_pipeline, "available_cores", lambda: 2)
    monkeypatch.setattr(slice_pipeline, "busy_elsewhere", lambda: 0.2)
    assert resolve_workers(None, MIN_ITEMS_FOR_WORKERS) == 2
    assert resolve_workers(None, MIN_ITEMS_FOR_WORKERS - 1) == 0  # forking would not pay
    monkeypatch.setattr(slice_pipeline, "busy_elsewhere", lambda: 1.0)
    assert resolve_workers(None, 1000) == 0  # one core busy: workers only add their cost
    monkeypatch.setattr(slice_pipeline, "available_cores", lambda: 16)
    assert resolve_workers(None, 1000) == slice_pipeline.MAX_AUTO_WORKERS
    assert resolve_workers(1, 1000) == 0 and resolve_workers(0, 1000) == 0
    assert resolve_workers(3, 1000) == 3
    assert resolve_workers(2, 1) == 0  # nothing to share out
    with pytest.raises(DLPError, match="--workers"):
        BuildOptions(workers=-1)


def test_busy_elsewhere_leaves_out_this_process_own_work(monkeypatch: pytest.MonkeyPatch
                                                         ) -> None:
    from dlp.data import slice_pipeline
    from dlp.data.slice_pipeline import _CpuSample

    samples = iter([_CpuSample(when=100.0, busy=50.0, own=20.0),
                    # 2 s later: the machine did 3 CPU-seconds of work, 2 of them ours
                    _CpuSample(when=102.0, busy=53.0, own=22.0),
                    _CpuSample(when=400.0, busy=60.0, own=23.0)])
    monkeypatch.setattr(slice_pipeline, "_cpu_sample", lambda: next(samples))
    monkeypatch.setattr(slice_pipeline, "_last_sample", None)
    monkeypatch.setattr(slice_pipeline.os, "getloadavg", lambda: (1.25, 1.0, 1.0))
    assert slice_pipeline.busy_elsewhere() == 1.25  # no earlier build: the load average
    assert slice_pipeline.busy_elsewhere() == pytest.approx(0.5)  # (3 - 2) s over 2 s
    assert slice_pipeline.busy_elsewhere() == 1.25  # the last build is too long ago
    monkeypatch.undo()
    assert 0.0 <= slice_pipeline.busy_elsewhere() <= 64  # the real counters are readable


def test_dataset_command_takes_a_worker_count(small_phantom, tmp_path: Path) -> None:
    from dlp.cli import main

    args = ["dataset", "sunnybrook", "--images", str(small_phantom.images_dir), "--contours",
            str(small_phantom.contours_dir), "--size", "32", "--val", "25"]
    assert main([*args, "--out", str(tmp_path / "one"), "--workers", "1"]) == 0
    assert main([*args, "--out", str(tmp_path / "two"), "--workers", "2"]) == 0
    assert _contents(tmp_path / "one") == _contents(tmp_path / "two")


def test_databases_made_ahead_for_a_split_without_records_are_removed(tmp_path: Path) -> None:
    from dlp.data.dataset_writer import DatasetWriter
    from dlp.data.lmdb_io import encode_datum

    datum = encode_datum(np.zeros((1, 4, 4), np.uint8))
    dataset = DatasetWriter(tmp_path, ["train", "val", "test"])
    assert dataset.put("train", datum, datum) == "000000000"
    dataset.put("test", datum, datum)
    dataset.write_file("note.txt", b"kept")
    dataset.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["note.txt", "test_db", "train_db"]
    with DatumDB(tmp_path / "test_db" / "labels") as db:
        assert db.keys() == ["000000000"]

    aborted = DatasetWriter(tmp_path / "aborted", ["train", "val"])
    aborted.put("train", datum, datum)
    aborted.abort()
    assert not (tmp_path / "aborted" / "val_db").exists()


def test_a_parallel_build_can_run_off_the_main_thread(small_phantom, tmp_path: Path) -> None:
    """The GUI builds in a worker thread; forked workers must start from there too."""
    import threading

    outcome: dict[str, object] = {}

    def build() -> None:
        try:
            outcome["report"] = build_dataset(_sunnybrook(small_phantom), tmp_path / "thread",
                                              BuildOptions(preprocessing=SMALL, workers=2))
        except BaseException as exc:  # re-raised below, in the test's thread
            outcome["error"] = exc

    thread = threading.Thread(target=build)
    thread.start()
    thread.join()
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    build_dataset(_sunnybrook(small_phantom), tmp_path / "main",
                  BuildOptions(preprocessing=SMALL, workers=1))
    assert _contents(tmp_path / "thread") == _contents(tmp_path / "main")
    assert _no_workers_left()
