"""A folder of single-frame DICOM files → one volume per series.

Files are grouped by SeriesInstanceUID and sorted along the slice normal (the
ImagePositionPatient projected on the cross product of the ImageOrientationPatient
direction cosines), falling back to InstanceNumber; the slice spacing comes from
those positions.  Cine series with several frames at one position keep all frames,
ordered by position then InstanceNumber (``meta["frames_per_position"]``).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from dlp.data.readers.base import (
    ImageReader,
    ImageReadError,
    ImageVolume,
    affine_from_geometry,
    read_header,
)
from dlp.data.readers.dicom import (
    DicomReader,
    header_value,
    read_dataset_volume,
    read_dicom_dataset,
)


def _is_dicom_candidate(path: Path) -> bool:
    if path.name.startswith(".") or not path.is_file() or path.name.upper() == "DICOMDIR":
        return False
    return path.suffix.lower() in DicomReader.suffixes or read_header(path)[128:132] == b"DICM"


def _numbers(value: object, count: int) -> list[float] | None:
    """``value`` as ``count`` floats, or None (absent or malformed)."""
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or \
            len(value) != count:
        return None
    return [float(v) for v in value]


def _sort_key(ds, normal: np.ndarray | None) -> tuple[float, int]:
    instance = int(header_value(ds, "InstanceNumber", 0))
    position = _numbers(header_value(ds, "ImagePositionPatient"), 3)
    if normal is None or position is None:
        return (float(instance), instance)
    return (float(np.array(position) @ normal), instance)


def _normal(ds) -> np.ndarray | None:
    values = _numbers(header_value(ds, "ImageOrientationPatient"), 6)
    if values is None:
        return None
    return np.cross(values[:3], values[3:])


def _stack_series(files: list[tuple[Path, object]]) -> ImageVolume:
    normal = _normal(files[0][1])
    keys = {id(ds): _sort_key(ds, normal) for _, ds in files}
    files = sorted(files, key=lambda item: keys[id(item[1])])
    first_path, first_ds = files[0]
    size = (header_value(first_ds, "Rows"), header_value(first_ds, "Columns"))
    for path, ds in files[1:]:
        other = (header_value(ds, "Rows"), header_value(ds, "Columns"))
        if other != size:
            series = header_value(first_ds, "SeriesInstanceUID")
            raise ImageReadError(
                path, f"image size {other[0]}x{other[1]} differs from {first_path.name} "
                f"({size[0]}x{size[1]}) in the same series {series}"
            )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        volumes = [read_dataset_volume(ds, path) for path, ds in files]
    for path, volume in zip((p for p, _ in files), volumes, strict=True):
        if volume.array.shape[1:] != volumes[0].array.shape[1:]:
            raise ImageReadError(
                path, f"decoded shape {volume.array.shape[1:]} differs from {first_path.name} "
                f"{volumes[0].array.shape[1:]}"
            )
    array = np.concatenate([v.array for v in volumes], axis=0)
    head = volumes[0]
    sz = head.spacing[0]
    positions = [keys[id(ds)][0] for _, ds in files]
    unique = np.unique(np.round(positions, 4))
    frames_per_position = len(files) // max(len(unique), 1)
    if normal is not None and len(unique) > 1:
        sz = float(np.median(np.diff(unique)))
    row_col = head.meta.get("orientation")
    affine = affine_from_geometry(
        (sz, head.spacing[1], head.spacing[2]),
        None if row_col is None else np.array(row_col[:3]),
        None if row_col is None else np.array(row_col[3:]),
        normal,
        head.affine[:3, 3] if head.meta["positions"][0] is not None else None,
    )
    meta = dict(head.meta)
    meta.update(
        sop_uids=[v.meta["sop_uids"][0] for v in volumes],
        files=[str(path) for path, _ in files],
        instance_numbers=[v.meta.get("instance_number") for v in volumes],
        positions=[v.meta["positions"][0] for v in volumes],
        rescale=[v.meta["rescale"][0] for v in volumes],
        frames=len(volumes),
        frames_per_position=frames_per_position,
    )
    return ImageVolume(
        array=array, spacing=(sz, head.spacing[1], head.spacing[2]), affine=affine,
        window=head.window, source=first_path.parent, format="dicom", meta=meta,
        headers=[h for v in volumes for h in v.headers or ()],
    )


def read_dicom_series(
    folder: str | os.PathLike[str], files: Sequence[Path] | None = None
) -> list[ImageVolume]:
    """One (S, H, W) volume per SeriesInstanceUID of the DICOM files in ``folder``.

    Series are returned in SeriesNumber order.  Files that are not DICOM are ignored;
    DICOM files that cannot be read raise :class:`ImageReadError` naming the file.
    ``files`` limits the reading to those files of the folder (one series, say).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ImageReadError(folder, "not a folder of DICOM files")
    groups: dict[str, list[tuple[Path, object]]] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        for path in sorted(folder.iterdir()) if files is None else sorted(map(Path, files)):
            if not _is_dicom_candidate(path):
                continue
            # Pixels too: every file is decoded below, and reading twice cost as much
            # as decoding.
            ds = read_dicom_dataset(path)
            if "Rows" not in ds:
                continue  # a non-image object (structured report, presentation state)
            series = str(header_value(ds, "SeriesInstanceUID", ""))
            groups.setdefault(series, []).append((path, ds))
    if not groups:
        raise ImageReadError(folder, "no DICOM images in the folder")
    volumes = [_stack_series(files) for files in groups.values()]
    return sorted(volumes, key=lambda v: int(v.meta.get("series_number") or 0))


class DicomSeriesReader(ImageReader):
    """A folder = a DICOM series (several series in one folder → one volume each)."""

    format_name = "dicom"

    def read(self, path: Path) -> list[ImageVolume]:
        return read_dicom_series(path)
