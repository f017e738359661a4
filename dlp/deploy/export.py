"""Saving a segmentation: mask PNGs, overlay PNGs, NIfTI labels, CSV, DICOM SEG.

One input gives one result folder, written atomically (it appears complete or not at
all)::

    <out>/<name>/mask.png            class indices 0..K-1 (uint8); mask_s001.png… for volumes
    <out>/<name>/overlay.png         the image under its coloured mask (overlay_s001.png…)
    <out>/<name>/labels.nii.gz       label volume with the input's affine (NIfTI/DICOM series)
    <out>/<name>/measurements.csv    areas (mm²) per slice and class, volumes (mL), Dice…
    <out>/<name>/segmentation.dcm    DICOM SEG referencing the source images (DICOM input;
                                     segmentation_1.dcm… per cine phase of a series)
"""

from __future__ import annotations

import csv
import functools
import io
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from dlp.deploy import measure, overlay
from dlp.deploy.dicom_encoding import save_with_encoded_sequences
from dlp.deploy.labels import LabelMap
from dlp.errors import DLPError
from dlp.fsutil import atomic_directory, atomic_path
from dlp.png import write_png

TYPE2_PATIENT_STUDY = (
    "PatientName", "PatientID", "PatientBirthDate", "PatientSex", "StudyDate", "StudyTime",
    "ReferringPhysicianName", "StudyID", "AccessionNumber",
)


class ExportError(DLPError):
    """A result file could not be written; the message names the file and the reason."""


@dataclass
class ResultFiles:
    """What was written for one input (paths) and what could not be (warnings)."""

    folder: Path
    masks: list[Path] = field(default_factory=list)
    overlays: list[Path] = field(default_factory=list)
    nifti: Path | None = None
    csv: Path | None = None
    dicom_segs: list[Path] = field(default_factory=list)  # one per cine phase if several
    warnings: list[str] = field(default_factory=list)


def write_mask_png(labels_2d: np.ndarray, path: str | os.PathLike[str],
                   atomic: bool = True) -> None:
    """An 8-bit greyscale PNG whose pixel values are the class indices."""
    array = np.asarray(labels_2d)
    if array.max(initial=0) > 255:
        raise ExportError(f"{path}: more than 256 classes do not fit an 8-bit mask PNG")
    write_png(array.astype(np.uint8, copy=False), path, atomic)


def write_rgb_png(rgb: np.ndarray, path: str | os.PathLike[str], atomic: bool = True) -> None:
    write_png(np.asarray(rgb, dtype=np.uint8), path, atomic)


def rows_to_csv(rows: Sequence[dict[str, object]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(measure.MEASUREMENT_COLUMNS),
                            lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({k: _csv_value(v) for k, v in row.items()})
    return out.getvalue()


def _csv_value(value: object) -> object:
    if value is None:
        return ""
    if isinstance(value, float):
        return "" if np.isnan(value) else f"{value:.6g}"
    return value


def dicom_source_files(volume: Any) -> list[Path]:
    """The DICOM files behind a volume, in slice order (one multi-frame file or one per slice)."""
    meta = getattr(volume, "meta", {}) or {}
    for key in ("files", "paths", "source_files"):
        files = meta.get(key)
        if files:
            return [Path(f) for f in files]
    source = Path(getattr(volume, "source", ""))
    return [source] if source.is_file() else []


def seg_frame_groups(volume: Any) -> list[list[int]]:
    """Slice indices split so no group repeats a position (one DICOM SEG per group).

    A cine series has several frames at each slice position; a SEG's frames need
    distinct positions, so the k-th frame of every position goes into group k.
    """
    meta = getattr(volume, "meta", {}) or {}
    positions = meta.get("positions") or []
    count = int(np.asarray(volume.array).shape[0])
    if len(positions) != count or any(p is None for p in positions):
        return [list(range(count))]
    seen: dict[tuple[float, ...], int] = {}
    groups: list[list[int]] = []
    for index, position in enumerate(positions):
        key = tuple(round(float(v), 3) for v in position)
        occurrence = seen.get(key, 0)
        seen[key] = occurrence + 1
        while len(groups) <= occurrence:
            groups.append([])
        groups[occurrence].append(index)
    return groups


def write_dicom_seg(
    labels: np.ndarray, volume: Any, label_map: LabelMap, path: str | os.PathLike[str],
    frames: Sequence[int] | None = None, atomic: bool = True,
) -> None:
    """A DICOM Segmentation (binary, one segment per foreground class) with highdicom.

    ``frames`` picks the slices (and their source files) to include; default all.
    ``atomic=False`` inside a folder that itself appears atomically.
    """
    import highdicom as hd
    import pydicom
    from pydicom.sr.codedict import codes

    import dlp

    _memoize_iod_lookups()
    files = dicom_source_files(volume)
    headers = getattr(volume, "headers", None)
    if headers is not None and len(headers) != len(files):
        headers = None
    if frames is not None and len(files) == np.asarray(labels).shape[0]:
        files = [files[i] for i in frames]
        headers = None if headers is None else [headers[i] for i in frames]
        labels = np.asarray(labels)[list(frames)]
    if not files:
        raise ExportError(f"{path}: the input has no DICOM source files to reference")
    if headers is not None:
        sources = headers  # read with the images (highdicom needs their attributes only)
    else:
        try:
            sources = [pydicom.dcmread(f, stop_before_pixels=True) for f in files]
        except Exception as exc:
            raise ExportError(f"{path}: cannot re-read the source DICOM ({exc})") from None
    for ds in sources:
        # Type 2 patient/study attributes may be empty but must exist; anonymised and
        # synthetic images often drop them, and highdicom copies them into the SEG.
        for keyword in TYPE2_PATIENT_STUDY:
            if keyword not in ds:
                setattr(ds, keyword, "")
    mask = np.asarray(labels, dtype=np.uint8)
    frames = sum(int(getattr(ds, "NumberOfFrames", 1) or 1) for ds in sources)
    if frames != mask.shape[0]:
        raise ExportError(f"{path}: {mask.shape[0]} mask slices but {frames} source frames")
    algorithm = hd.AlgorithmIdentificationSequence(
        name="DLP", family=codes.cid7162.ArtificialIntelligence, version=dlp.__version__
    )
    present = [c for c in range(1, len(label_map)) if (mask == c).any()]
    if not present:
        raise ExportError(f"{path}: nothing segmented, a DICOM SEG needs at least one segment")
    # Segment numbers must run 1..n; renumber the classes that occur.
    renumbered = np.zeros_like(mask)
    descriptions = []
    for number, c in enumerate(present, start=1):
        renumbered[mask == c] = number
        descriptions.append(hd.seg.SegmentDescription(
            segment_number=number,
            segment_label=label_map.names[c][:64],
            segmented_property_category=codes.SCT.Tissue,
            segmented_property_type=codes.SCT.Tissue,
            algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
            algorithm_identification=algorithm,
        ))
    try:
        seg = hd.seg.Segmentation(
            source_images=sources,
            pixel_array=renumbered,
            segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
            segment_descriptions=descriptions,
            series_instance_uid=hd.UID(),
            series_number=900,
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer="DLP",
            manufacturer_model_name="DLP Deploy",
            software_versions=dlp.__version__,
            device_serial_number="none",
            series_description="DLP segmentation",
        )
    except Exception as exc:  # highdicom names the missing/odd attribute
        reason = str(exc)
        if "duplicates" in reason:
            reason = ("its frames share plane positions (a cine loop in one multi-frame "
                      "file), and a DICOM SEG needs one position per frame")
        raise ExportError(f"{path}: cannot build a DICOM SEG from these images ({reason}); "
                          "the mask PNGs and labels.nii.gz hold the result") from None
    if not atomic:
        _save_seg(seg, path)
        return
    with atomic_path(path) as tmp:
        _save_seg(seg, tmp)


def _save_seg(seg: Any, path: str | os.PathLike[str]) -> None:
    try:
        save_with_encoded_sequences(seg, path)
    except (AttributeError, TypeError):  # a pydicom whose internals moved: its own writer
        seg.save_as(path)


def _memoize_iod_lookups() -> None:
    """Cache highdicom's "is attribute A part of the IOD of SOP class U" answers.

    highdicom answers it by scanning the standard's module tables (~1 ms) and asks it
    for every source image while building a SEG (``is_multiframe_image``): half the
    time of a 20-frame SEG.  The answer depends on the arguments alone.  The function
    is private to highdicom: should a version move it, SEGs are built uncached
    (slower), never differently.
    """
    try:
        from highdicom import _standard_utils as standard
    except ImportError:
        return
    lookup = getattr(standard, "is_attribute_in_iod", None)
    if lookup is None or getattr(lookup, "dlp_memoized", False):
        return

    @functools.lru_cache(maxsize=1024)
    def cached(attribute: str, sop_class_uid: str, exclude: tuple[str, ...] | None) -> bool:
        return lookup(attribute, sop_class_uid, None if exclude is None else list(exclude))

    def is_attribute_in_iod(attribute: str, sop_class_uid: str,
                            exclude_path_elements: Sequence[str] | None = None) -> bool:
        exclude = None if exclude_path_elements is None else tuple(exclude_path_elements)
        return cached(attribute, str(sop_class_uid), exclude)

    is_attribute_in_iod.dlp_memoized = True  # type: ignore[attr-defined]
    is_attribute_in_iod.uncached = lookup  # type: ignore[attr-defined]
    standard.is_attribute_in_iod = is_attribute_in_iod


def export_prediction(
    prediction: Any,
    label_map: LabelMap,
    out_dir: str | os.PathLike[str],
    name: str,
    rows: Sequence[dict[str, object]] | None = None,
    window: tuple[float, float] | None = None,
) -> ResultFiles:
    """Write every result file of one prediction into ``out_dir/name`` (atomically).

    ``rows`` are its measurements (:func:`dlp.deploy.measure.measurement_rows`;
    computed here when not given).  A DICOM SEG that cannot be built is a warning, not
    a failure: the other files are still useful.
    """
    volume = prediction.volume
    labels = np.asarray(prediction.labels)
    final = Path(out_dir) / name
    if rows is None:
        rows = measure.measurement_rows(labels, volume.spacing, label_map.names, None, name)
    many = labels.shape[0] > 1
    if window is None:
        window = getattr(volume, "window", None)
    files = ResultFiles(folder=final)
    with atomic_directory(final) as tmp:
        image = np.asarray(volume.array)
        for s in range(labels.shape[0]):
            suffix = f"_s{s + 1:03d}" if many else ""
            # Plain writes: the whole folder is renamed into place when complete.
            write_mask_png(labels[s], tmp / f"mask{suffix}.png", atomic=False)
            picture = overlay.overlay_image(image[s], labels[s], label_map.colors, window)
            write_rgb_png(picture, tmp / f"overlay{suffix}.png", atomic=False)
            files.masks.append(final / f"mask{suffix}.png")
            files.overlays.append(final / f"overlay{suffix}.png")
        fmt = getattr(volume, "format", "")
        if fmt == "nifti" or (fmt == "dicom" and many):
            from dlp.data.readers import write_nifti_labels

            # The readers' writer: same grid, LPS→RAS for DICOM, qform/sform kept.
            write_nifti_labels(labels, volume, tmp / "labels.nii.gz")
            files.nifti = final / "labels.nii.gz"
        (tmp / "measurements.csv").write_text(rows_to_csv(rows), encoding="utf-8")
        files.csv = final / "measurements.csv"
        if fmt == "dicom":
            # One multi-frame file gives one SEG over all its frames (a SEG derived from
            # a multi-frame image must cover every frame); a series of files gives one
            # SEG per cine phase.
            sources = dicom_source_files(volume)
            groups = [list(range(labels.shape[0]))] if len(sources) == 1 \
                else seg_frame_groups(volume)
            for number, frames in enumerate(groups, start=1):
                name_ = "segmentation.dcm" if len(groups) == 1 else f"segmentation_{number}.dcm"
                try:
                    write_dicom_seg(labels, volume, label_map, tmp / name_, frames,
                                    atomic=False)
                    files.dicom_segs.append(final / name_)
                except ExportError as exc:
                    files.warnings.append(str(exc).replace(str(tmp), str(final)))
    return files
