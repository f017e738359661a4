"""Segmenting many inputs: one at a time, results written as each finishes.

:func:`run_batch` is what the GUI's drop zone, the batch panel and the CLI all call:
per input :func:`predict_item` (read → predict → ground truth → measure), then
:func:`export_item`, with progress and cancel; a file that fails is recorded with its
reason and the batch goes on.  The combined ``measurements.csv`` and ``failures.csv``
(and, with ground truth, ``evaluation.csv`` and ``confusion_matrix.csv``) in the output
folder are rewritten after every input, so an interrupted batch leaves consistent files.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlp.deploy.evaluate import EvaluationReport, ImageScores, score_prediction
from dlp.deploy.export import ResultFiles, export_prediction, rows_to_csv, seg_frame_groups
from dlp.deploy.inputs import InputItem, load_input
from dlp.deploy.measure import measurement_rows
from dlp.deploy.session import InferenceSession, Prediction
from dlp.deploy.truth import IGNORE, GroundTruthIndex, load_ground_truth
from dlp.errors import Cancelled, DLPError
from dlp.fsutil import atomic_write_text
from dlp.memory import release_free_memory
from dlp.progress import CancelToken, ProgressCallback, report


@dataclass(eq=False)  # holds arrays: compare by identity
class ItemResult:
    """The outcome of one input: a prediction and files, or the reason it failed."""

    item: InputItem
    prediction: Prediction | None = None
    files: ResultFiles | None = None
    rows: list[dict[str, object]] = field(default_factory=list)
    truth: np.ndarray | None = None
    truth_path: Path | None = None
    scores: ImageScores | None = None
    confusion: np.ndarray | None = None
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(eq=False)  # holds arrays: compare by identity
class BatchReport:
    """Everything a batch did; ``cancelled`` when the user stopped it early."""

    out_dir: Path | None
    total: int
    results: list[ItemResult] = field(default_factory=list)
    evaluation: EvaluationReport | None = None
    cancelled: bool = False

    @property
    def failures(self) -> list[ItemResult]:
        return [r for r in self.results if not r.ok]

    @property
    def succeeded(self) -> list[ItemResult]:
        return [r for r in self.results if r.ok]


def describe_failure(exc: BaseException) -> str:
    """One line for the user; unexpected exceptions keep their type (a strange file)."""
    if isinstance(exc, DLPError):
        return str(exc)
    return f"{type(exc).__name__}: {exc}"


def predict_item(
    session: InferenceSession,
    item: InputItem,
    truth_index: GroundTruthIndex | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_predicted: Callable[[ItemResult], Any] | None = None,
    on_loaded: Callable[[InputItem, Any], Any] | None = None,
    on_measured: Callable[[ItemResult], Any] | None = None,
    read: Callable[[InputItem], Any] = load_input,
) -> ItemResult:
    """Read, segment, score and measure one input (no files); errors go in the result.

    ``read`` gives the item's volume (a batch hands in one read ahead by its helper
    thread); a read error becomes the item's error like any other.

    The callbacks let the GUI show each step as soon as it exists, before any file is
    written: ``on_loaded(item, volume)`` once the image is read (it draws the image
    while the net runs), ``on_predicted(result)`` once the prediction exists (the
    overlay: what the user waits for), ``on_measured(result)`` once the measurements
    (and any ground-truth scores) are added.
    """
    result = ItemResult(item=item)
    try:
        volume = read(item)
        if on_loaded is not None:
            on_loaded(item, volume)
        prediction = session.predict_volume(volume, progress=progress, cancel=cancel)
        result.prediction = prediction
        if on_predicted is not None:
            on_predicted(result)
        if truth_index is not None:
            _attach_truth(result, truth_index, volume, session.num_classes)
        result.rows = measurement_rows(
            prediction.labels, volume.spacing, session.labels.names, result.truth, item.name,
            phases=seg_frame_groups(volume),
        )
        if on_measured is not None:
            on_measured(result)
    except Cancelled:
        raise
    except Exception as exc:  # every failure of one input is reported, none stops the rest
        result.error = describe_failure(exc)
        result.prediction = None
    return result


def export_item(result: ItemResult, labels: Any, out_dir: str | os.PathLike[str]
                ) -> ItemResult:
    """Write the result folder of a predicted input; a failure becomes its error."""
    try:
        result.files = export_prediction(result.prediction, labels, out_dir,
                                         result.item.name, result.rows)
    except Exception as exc:  # a full disk or an odd DICOM: reported, the batch goes on
        result.error = describe_failure(exc)
        result.prediction = None
    return result


def _attach_truth(result: ItemResult, index: GroundTruthIndex, volume: Any,
                  num_classes: int) -> None:
    """Find and score the ground truth of a result (whole input, or slice by slice)."""
    labels = result.prediction.labels
    truth_path = index.find(result.item)
    if truth_path is not None:
        result.truth_path = truth_path
        result.truth = load_ground_truth(truth_path, labels.shape, num_classes)
    else:
        # A series: each slice's file may have its own mask or contour.
        result.truth = index.truth_for_slices(volume, labels.shape, num_classes)
        if result.truth is None:
            return
        result.truth_path = index.root
    known = ~(result.truth == IGNORE).all(axis=(1, 2))
    pred, truth = labels[known], result.truth[known]
    spacing = tuple(volume.spacing)
    if pred.shape[0] == 1:
        pred, truth, spacing = pred[0], truth[0], spacing[-2:]
    result.scores, result.confusion = score_prediction(
        result.item.name, result.item.path, pred, truth, num_classes, spacing
    )


def _result_of(future: Future) -> Callable[[InputItem], Any]:
    """A ``read`` for :func:`predict_item` that waits for a read already under way."""
    def read(_item: InputItem) -> Any:
        return future.result()

    return read


def failures_csv(results: Sequence[ItemResult]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["input", "path", "reason"])
    for r in results:
        if not r.ok:
            writer.writerow([r.item.name, str(r.item.path), r.error])
    return out.getvalue()


def write_summaries(report_: BatchReport) -> None:
    """(Re)write the combined CSV files of a batch into its output folder."""
    if report_.out_dir is None:
        return
    out = report_.out_dir
    rows = [row for r in report_.results if r.ok for row in r.rows]
    atomic_write_text(out / "measurements.csv", rows_to_csv(rows))
    atomic_write_text(out / "failures.csv", failures_csv(report_.results))
    if report_.evaluation is not None and report_.evaluation.rows:
        report_.evaluation.write_csv(out)


def run_batch(
    session: InferenceSession,
    items: Sequence[InputItem],
    out_dir: str | os.PathLike[str] | None,
    ground_truth: str | os.PathLike[str] | GroundTruthIndex | None = None,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
    on_result: Callable[[ItemResult], Any] | None = None,
    keep_predictions: bool = False,
    on_predicted: Callable[[ItemResult], Any] | None = None,
    on_loaded: Callable[[InputItem, Any], Any] | None = None,
    on_measured: Callable[[ItemResult], Any] | None = None,
    release_memory: bool = True,
    read_input: Callable[[InputItem], Any] = load_input,
) -> BatchReport:
    """Segment ``items`` one by one, writing each result as it finishes.

    ``on_result`` is called after each input (the GUI lists it at once).  Predictions
    are dropped after export unless ``keep_predictions`` (a batch of hundreds of studies
    must not hold them all in memory).  Cancelling stops between inputs (or between
    slice batches of a volume) and returns what was finished, ``cancelled=True``.
    ``release_memory=False`` keeps the freed memory of the forward passes for the next
    run (the GUI segments drop after drop and releases it once the user pauses).
    ``read_input`` reads an input (the GUI's drop hands in the images it read while
    the drag hovered).
    """
    out = Path(out_dir) if out_dir is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    index = ground_truth
    if ground_truth is not None and not isinstance(ground_truth, GroundTruthIndex):
        index = GroundTruthIndex.scan(ground_truth)
    batch = BatchReport(out_dir=out, total=len(items))
    if index is not None:
        batch.evaluation = EvaluationReport(session.labels.names)
    report(progress, 0, len(items), "starting")

    def write_and_record(number: int, result: ItemResult) -> None:
        if out is not None and result.ok:
            export_item(result, session.labels, out)
        if not keep_predictions:
            result.prediction = None
        batch.results.append(result)
        if batch.evaluation is not None:
            if result.scores is not None:
                batch.evaluation.add(result.scores, result.confusion)
            elif not result.ok:
                batch.evaluation.failures.append((result.item.path, result.error or ""))
        write_summaries(batch)
        if on_result is not None:
            on_result(result)
        report(progress, number, len(items), result.item.name)

    # A helper thread writes input k and reads input k+2 while input k+1 is segmented:
    # the writing (PNG and gzip compression, the DICOM SEG) and the reading overlap the
    # net's forward pass, which otherwise waits for them with one core idle.  One write
    # and one read ahead at most, so memory holds three inputs.  The read ahead starts
    # once the current input is read (two reads at once only contend for the GIL), and
    # the first input is read here: a single dropped image waits for no hand-over.
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dlp-batch") as helper:
        pending: Future | None = None
        ahead: Future | None = None
        for number, item in enumerate(items, start=1):
            try:
                if cancel is not None:
                    cancel.raise_if_cancelled()
                read = read_input if ahead is None else _result_of(ahead)
                ahead = None
                if number < len(items):
                    following = items[number]

                    def loaded(item_: InputItem, volume: Any, following=following) -> None:
                        nonlocal ahead
                        ahead = helper.submit(read_input, following)
                        if on_loaded is not None:
                            on_loaded(item_, volume)
                else:
                    loaded = on_loaded
                result = predict_item(session, item, index, cancel=cancel,
                                      on_predicted=on_predicted, on_loaded=loaded,
                                      on_measured=on_measured, read=read)
            except Cancelled:
                batch.cancelled = True
                break
            if pending is not None:
                pending.result()  # in order; a failure to write the summaries surfaces here
            pending = helper.submit(write_and_record, number, result)
        if ahead is not None:
            ahead.cancel()  # cancelled: the read ahead is not needed
        if pending is not None:
            pending.result()
    write_summaries(batch)
    if release_memory:
        release_free_memory()  # the activations of the last forward, kept for reuse until now
    return batch
