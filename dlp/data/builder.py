"""Build a segmentation dataset: LMDBs of Caffe Datums in the DIGITS layout.

``build_dataset(source, out_dir, options, progress, cancel) -> BuildReport`` writes::

    out_dir/train_db/features   out_dir/train_db/labels     (same "%09d" keys)
    out_dir/val_db/…            out_dir/test_db/…           (when those splits have cases)
    out_dir/mean.binaryproto    mean of the train features, (1, C, H, W)
    out_dir/manifest.json       what Train and Deploy read (dlp.data.manifest)
    out_dir/build-report.json   counts, skipped slices, unusable files (file + reason)
    out_dir/records.csv         split, key, case, slice name: where every record came from

Cases (patients) are split, never slices, so no patient is in two splits.  The
whole folder is built beside ``out_dir`` and renamed into place at the end: an
interrupted or failed build leaves no folder that looks complete.

Slices are prepared (decoded, rasterised, preprocessed) by :mod:`dlp.data.slice_pipeline`,
in worker processes when cores are idle, and come back in source order: this process
writes the records, in one order whatever the worker count, so the dataset is the
same byte for byte.
"""

from __future__ import annotations

import csv
import datetime
import io
import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlp.data.dataset_writer import DatasetWriter
from dlp.data.lmdb_io import encode_datum, encode_mean_binaryproto
from dlp.data.manifest import MANIFEST_NAME, Manifest, SplitInfo
from dlp.data.preprocess import Preprocessing
from dlp.data.slice_pipeline import PreparedItem, SlicePreparer, resolve_workers
from dlp.data.sources import DatasetSource, Problem, SourceItem
from dlp.errors import InputError
from dlp.fsutil import atomic_directory
from dlp.memory import tune_allocator
from dlp.progress import CancelToken, ProgressCallback, report

REPORT_NAME = "build-report.json"
RECORDS_NAME = "records.csv"
SPLIT_ORDER = ("train", "val", "test")


class BuildError(InputError):
    """A dataset build failed (``--strict`` and a bad file, or nothing usable)."""


@dataclass(frozen=True)
class BuildOptions:
    preprocessing: Preprocessing = field(default_factory=Preprocessing)
    val_percent: float = 10.0
    test_percent: float = 0.0
    seed: int = 0
    strict: bool = False
    encoding: str | None = None   # "png" stores compressed uint8 Datums
    shuffle: bool = True          # shuffle record order within each split (by seed)
    #: processes preparing slices, the builder's own included: None = automatic (one per
    #: idle core for large builds), 0 or 1 = the builder's process alone, N = N in all
    #: (N - 1 forked workers); the dataset is the same either way
    workers: int | None = None

    def __post_init__(self) -> None:
        for name, value in (("val", self.val_percent), ("test", self.test_percent)):
            if not 0 <= value < 100:
                raise InputError(f"--{name} must be a percentage in [0, 100); got {value}")
        if self.val_percent + self.test_percent >= 100:
            raise InputError("--val plus --test must leave cases for training (< 100 %)")
        if self.workers is not None and (not isinstance(self.workers, int)
                                         or self.workers < 0):
            raise InputError(f"--workers must be a whole number >= 0; got {self.workers}")
        if self.encoding is not None and self.preprocessing.bits != 8:
            raise InputError("--encoding png stores 8-bit images; use --bits 8")


@dataclass
class BuildReport:
    out_dir: Path
    counts: dict[str, int] = field(default_factory=dict)
    cases: dict[str, list[str]] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    skipped: list[Problem] = field(default_factory=list)
    seconds: float = 0.0
    manifest: Manifest | None = None
    #: processes that prepared slices (0 = the builder's own process alone); not saved,
    #: as the dataset does not depend on it
    workers: int = 0

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    def to_dict(self) -> dict[str, Any]:
        return {
            "out_dir": str(self.out_dir),
            "counts": self.counts,
            "cases": self.cases,
            "problems": [{"file": p.path, "reason": p.reason} for p in self.problems],
            "skipped": [{"file": p.path, "reason": p.reason} for p in self.skipped],
            "seconds": round(self.seconds, 3),
        }

    def summary(self) -> str:
        """A few lines for a terminal or a message box."""
        splits = ", ".join(f"{name} {count} ({len(self.cases.get(name, []))} cases)"
                           for name, count in self.counts.items())
        lines = [f"built {self.total} slices into {self.out_dir}: {splits} "
                 f"in {self.seconds:.1f} s"]
        if self.skipped:
            lines.append(f"skipped {len(self.skipped)} slices without the needed labels")
        if self.problems:
            lines.append(f"{len(self.problems)} unusable files (see {REPORT_NAME}):")
            lines += [f"  {problem}" for problem in self.problems[:20]]
            if len(self.problems) > 20:
                lines.append(f"  … and {len(self.problems) - 20} more")
        return "\n".join(lines)


def split_cases(
    cases: list[str], val_percent: float, test_percent: float, seed: int
) -> dict[str, list[str]]:
    """Assign whole cases to train/val/test, deterministically by ``seed``.

    A requested split gets at least one case when there are enough cases to leave
    one for training.
    """
    ordered = sorted(set(cases))
    count = len(ordered)
    n_test = round(count * test_percent / 100)
    n_val = round(count * val_percent / 100)
    if test_percent > 0 and n_test == 0 and count >= 3:
        n_test = 1
    if val_percent > 0 and n_val == 0 and count - n_test >= 2:
        n_val = 1
    if count - n_val - n_test < 1:
        raise BuildError(
            f"{count} cases cannot be split {100 - val_percent - test_percent:g}/"
            f"{val_percent:g}/{test_percent:g} with at least one training case"
        )
    permuted = [ordered[i] for i in np.random.default_rng(seed).permutation(count)]
    test, val = permuted[:n_test], permuted[n_test:n_test + n_val]
    train = permuted[n_test + n_val:]
    return {"train": sorted(train), "val": sorted(val), "test": sorted(test)}


class _Statistics:
    """Running train-split mean image and per-class pixel counts.

    Slices are summed into a float32 block (fast, and exact for up to 256 slices of
    16-bit integers) that is folded into a float64 total every 256 slices.
    """

    _BLOCK = 256

    def __init__(self) -> None:
        self.total: np.ndarray | None = None
        self.block: np.ndarray | None = None
        self.in_block = 0
        self.images = 0
        self.class_counts = np.zeros(256, dtype=np.int64)

    def add(self, features: np.ndarray, class_counts: np.ndarray) -> None:
        """Add a train slice: features (C, H, W) and its label counts (``label_counts``)."""
        if self.block is None:
            self.block = np.zeros(features.shape, dtype=np.float32)
            self.total = np.zeros(features.shape, dtype=np.float64)
        self.block += features
        self.in_block += 1
        self.images += 1
        if self.in_block == self._BLOCK:
            self._fold()
        self.class_counts[: len(class_counts)] += class_counts

    def _fold(self) -> None:
        if self.block is not None and self.in_block:
            self.total += self.block
            self.block[:] = 0
            self.in_block = 0

    def mean(self) -> np.ndarray | None:
        if self.total is None:
            return None
        self._fold()
        return (self.total / self.images).astype(np.float32)


def _fail_or_record(problem: Problem, problems: list[Problem], strict: bool) -> None:
    if strict:
        raise BuildError(f"{problem.path}: {problem.reason} (--strict stops at the first "
                         "unusable file)")
    problems.append(problem)


def _classes(source: DatasetSource, counts: np.ndarray) -> list[str]:
    names = list(source.classes)
    highest = int(np.flatnonzero(counts).max()) if counts.any() else 0
    if names and highest >= len(names):
        raise BuildError(f"labels use value {highest} but only {len(names)} classes are "
                         f"named ({', '.join(names)})")
    if not names:
        names = ["background"] + [f"class {i}" for i in range(1, max(highest, 1) + 1)]
    return names


def _check_replaceable(out: Path) -> None:
    """A rebuild replaces a previous dataset, never a folder holding anything else."""
    if out.is_file():
        raise BuildError(f"{out}: is a file; the dataset output must be a folder")
    if out.is_dir() and any(out.iterdir()) and not (out / MANIFEST_NAME).is_file():
        raise BuildError(
            f"{out}: folder exists and is not a DLP dataset (no {MANIFEST_NAME}); "
            "choose an empty or new folder"
        )


def _records_csv(rows: list[tuple[str, str, str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["split", "key", "case", "slice"])
    writer.writerows(rows)
    return buffer.getvalue()


class _StoredRecords:
    """What a build has stored: records in order, train statistics, problems met."""

    def __init__(self, dataset: DatasetWriter, result: BuildReport, strict: bool) -> None:
        self.dataset, self.result, self.strict = dataset, result, strict
        self.stats = _Statistics()
        self.records: list[tuple[str, str, str, str]] = []
        self.shape: tuple[int, ...] | None = None
        self.cases: dict[str, set[str]] = {split: set() for split in SPLIT_ORDER}

    def add(self, split: str, item: SourceItem, prepared: PreparedItem) -> None:
        """Store the slices of ``item`` in ``split``, or record why there are none."""
        if prepared.skipped is not None:
            self.result.skipped.append(prepared.skipped)
            return
        if prepared.problem is not None:
            _fail_or_record(prepared.problem, self.result.problems, self.strict)
            return
        for ready in prepared.slices:
            if isinstance(ready, Problem):
                _fail_or_record(ready, self.result.problems, self.strict)
                continue
            if self.shape is None:
                self.shape = ready.features.shape
            elif ready.features.shape != self.shape:
                _fail_or_record(Problem(ready.name, f"slice becomes {ready.features.shape} but "
                                                    f"the dataset is {self.shape}; give --size"),
                                self.result.problems, self.strict)
                continue
            key = self.dataset.put(split, ready.features_datum or encode_datum(ready.features),
                                   encode_datum(ready.labels))
            if split == "train":
                self.stats.add(ready.features, ready.class_counts)
            self.records.append((split, key, item.case, ready.name))
            self.cases[split].add(item.case)

    def finish(self, source: DatasetSource, options: BuildOptions) -> Manifest:
        """Fill the report's counts and cases; the dataset's manifest."""
        splits = self.dataset.splits
        if "train" not in splits:
            raise BuildError(
                "no training slices were written"
                + (f"; first problem: {self.result.problems[0]}" if self.result.problems
                   else "")
            )
        result = self.result
        result.counts = {split: splits[split].count for split in SPLIT_ORDER if split in splits}
        result.cases = {split: sorted(self.cases[split]) for split in result.counts}
        counts = self.stats.class_counts
        classes = _classes(source, counts)
        counts = counts[: len(classes)]
        total_pixels = max(int(counts.sum()), 1)
        return Manifest(
            shape=list(self.shape),  # type: ignore[arg-type]
            dtype=options.preprocessing.dtype,
            classes=classes,
            splits={split: SplitInfo(splits[split].count, result.cases[split],
                                     splits[split].features_rel, splits[split].labels_rel)
                    for split in result.counts},
            preprocessing=options.preprocessing,
            class_pixel_frequencies=[round(float(c) / total_pixels, 8) for c in counts],
            class_pixel_counts=[int(c) for c in counts],
            mean_file="mean.binaryproto",
            source=source.describe(),
            seed=options.seed,
            created=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            extra={"encoding": options.encoding, "frequencies_from": "train"},
        )


def build_dataset(
    source: DatasetSource,
    out_dir: str | os.PathLike[str],
    options: BuildOptions | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> BuildReport:
    """Build the dataset of ``source`` into ``out_dir`` (see the module docstring).

    Unusable files are reported in ``BuildReport.problems`` (or raise
    :class:`BuildError` at the first one with ``options.strict``).  Cancelling via
    ``cancel`` raises :class:`dlp.errors.Cancelled` and leaves ``out_dir`` untouched.
    """
    options = options or BuildOptions()
    prep = options.preprocessing
    started = time.perf_counter()
    tune_allocator()  # a build allocates per slice: reuse memory, not fault it in again
    out = Path(out_dir)
    _check_replaceable(out)
    result = BuildReport(out_dir=out)

    scan = source.scan()
    for problem in scan.problems:
        _fail_or_record(problem, result.problems, options.strict)
    if not scan.items:
        raise BuildError(f"{source.describe().get('images', '')}: no usable images found"
                         + (f" ({len(result.problems)} problems, first: {result.problems[0]})"
                            if result.problems else ""))
    assignment = split_cases([item.case for item in scan.items], options.val_percent,
                             options.test_percent, options.seed)
    split_of = {case: split for split, cases in assignment.items() for case in cases}
    rng = np.random.default_rng([options.seed, 1])
    ordered: list[tuple[str, SourceItem]] = []
    for split in SPLIT_ORDER:
        items = [item for item in scan.items if split_of[item.case] == split]
        if options.shuffle:
            items = [items[i] for i in rng.permutation(len(items))]
        ordered += [(split, item) for item in items]

    workers = result.workers = resolve_workers(options.workers, len(ordered))
    with atomic_directory(out) as tmp:
        dataset = DatasetWriter(tmp, [split for split, _ in ordered])
        stored = _StoredRecords(dataset, result, options.strict)
        try:
            with SlicePreparer(source, [item for _, item in ordered], prep, options.encoding,
                               workers) as preparer:
                prepared_items = iter(preparer)
                for done, (split, item) in enumerate(ordered):
                    if cancel is not None:
                        cancel.raise_if_cancelled()
                    report(progress, done, len(ordered), item.name)
                    stored.add(split, item, next(prepared_items))
            report(progress, len(ordered), len(ordered), "finishing")
            dataset.close_databases()
            manifest = stored.finish(source, options)
            result.seconds = time.perf_counter() - started
            # the small files are synced while the last DBs are
            dataset.write_file("mean.binaryproto", encode_mean_binaryproto(stored.stats.mean()))
            dataset.write_file(MANIFEST_NAME, manifest.to_json().encode("utf-8"))
            dataset.write_file(REPORT_NAME,
                               (json.dumps(result.to_dict(), indent=2) + "\n").encode("utf-8"))
            dataset.write_file(RECORDS_NAME, _records_csv(stored.records).encode("utf-8"))
            dataset.close()
        except BaseException:
            dataset.abort()
            raise
    manifest.path = out / MANIFEST_NAME
    result.manifest = manifest
    return result
