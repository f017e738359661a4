"""What the user dropped: files and folders → a list of inputs to segment.

Every image file is one input; a multi-frame DICOM or a NIfTI volume is one input
browsed slice by slice.  Inside a folder, DICOM files sharing a SeriesInstanceUID
are one input (the series, a volume) unless ``group_series=False``.  Sub-folders are
searched too, so a folder of studies gives all their images.  Files that are plainly
not images (text, CSV, JSON, hidden files) are left out; anything that looks like an
image but cannot be read fails later with one clear message naming it.
"""

from __future__ import annotations

import os
import re
import warnings
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlp.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")
NIFTI_SUFFIXES = (".nii", ".nii.gz", ".hdr", ".img")
DICOM_SUFFIXES = (".dcm", ".dicom", ".ima")
#: Files in a dropped folder that are not images (reports, contours, our own outputs).
IGNORED_SUFFIXES = (".txt", ".csv", ".json", ".md", ".xml", ".log", ".py", ".zip", ".pdf")


@dataclass(frozen=True)
class InputItem:
    """One thing to segment: a file, or a folder's DICOM series ``series_uid``."""

    path: Path
    name: str
    series_uid: str | None = None
    #: the series' files, when known from collecting (then only they are read)
    files: tuple[Path, ...] = ()

    @property
    def is_series(self) -> bool:
        return self.series_uid is not None


def _suffix(path: Path) -> str:
    name = path.name.lower()
    return ".nii.gz" if name.endswith(".nii.gz") else path.suffix.lower()


def _is_dicom_file(path: Path) -> bool:
    if _suffix(path) in DICOM_SUFFIXES:
        return True
    if path.suffix:
        return False
    try:
        with open(path, "rb") as handle:
            return handle.read(132)[128:132] == b"DICM"
    except OSError:
        return False


def _looks_like_image(path: Path) -> bool:
    suffix = _suffix(path)
    if path.name.startswith("."):
        return False
    if suffix in IMAGE_SUFFIXES + NIFTI_SUFFIXES + DICOM_SUFFIXES:
        return True
    if suffix in IGNORED_SUFFIXES:
        return False
    return _is_dicom_file(path)


def _series_uid(path: Path) -> str | None:
    import pydicom

    try:
        with warnings.catch_warnings():  # a damaged file fails, with its reason, when read
            warnings.simplefilter("ignore", UserWarning)
            header = pydicom.dcmread(path, stop_before_pixels=True,
                                     specific_tags=["SeriesInstanceUID", "NumberOfFrames"])
    except Exception:  # unreadable: it becomes its own input and fails with a clear message
        return None
    if int(getattr(header, "NumberOfFrames", 1) or 1) > 1:
        return None  # a multi-frame file is already a volume on its own
    uid = getattr(header, "SeriesInstanceUID", None)
    return str(uid) if uid else None


def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", *IMAGE_SUFFIXES, *NIFTI_SUFFIXES, *DICOM_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return name


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"


def _folder_items(folder: Path, group_series: bool
                  ) -> list[tuple[Path, str | None, tuple[Path, ...]]]:
    found: list[tuple[Path, str | None, tuple[Path, ...]]] = []
    entries = sorted(folder.iterdir())
    files = [p for p in entries if p.is_file() and _looks_like_image(p)]
    dicoms = [p for p in files if _is_dicom_file(p)]
    series: dict[str, list[Path]] = {}
    if group_series:
        for path in dicoms:
            uid = _series_uid(path)
            if uid is not None:
                series.setdefault(uid, []).append(path)
    grouped = {p for paths in series.values() if len(paths) > 1 for p in paths}
    for path in files:
        if path not in grouped:
            found.append((path, None, ()))
    for uid, paths in series.items():
        if len(paths) > 1:
            found.append((folder, uid, tuple(paths)))
    for sub in entries:
        if sub.is_dir() and not sub.name.startswith("."):
            found += _folder_items(sub, group_series)
    return found


def collect_inputs(paths: Iterable[str | os.PathLike[str]],
                   group_series: bool = True) -> list[InputItem]:
    """Expand dropped files/folders into inputs with unique, file-system-safe names.

    Raises :class:`InputError` for a path that does not exist (a typo on the command line).
    """
    raw: list[tuple[Path, str | None, tuple[Path, ...]]] = []
    for given in paths:
        path = Path(given)
        if not path.exists():
            raise InputError(f"{path}: no such file or folder")
        if path.is_dir():
            raw += _folder_items(path, group_series)
        else:
            raw.append((path, None, ()))
    items: list[InputItem] = []
    used: set[str] = set()
    for path, uid, files in raw:
        base = _safe(_stem(path)) if uid is None else _safe(f"{path.name}_series")
        name, n = base, 2
        while name in used:
            name, n = f"{base}_{n}", n + 1
        used.add(name)
        items.append(InputItem(path=path, name=name, series_uid=uid, files=files))
    return items


def _series_of(volume: Any) -> str | None:
    meta = getattr(volume, "meta", {}) or {}
    for key in ("series_uid", "SeriesInstanceUID", "series_instance_uid"):
        if meta.get(key):
            return str(meta[key])
    uids = meta.get("uids")
    if isinstance(uids, dict):
        for key in ("series", "SeriesInstanceUID", "series_uid"):
            if uids.get(key):
                return str(uids[key])
    return None


def load_input(item: InputItem) -> Any:
    """Read one input into an :class:`~dlp.data.readers.ImageVolume`."""
    from dlp.data.readers import read_dicom_series, read_image

    if not item.is_series:
        return read_image(item.path)
    folder = Path(item.path)
    # Only this series' files when collecting found them: a batch's first input does
    # not wait for the whole folder, and nothing else is held in memory.
    volumes = read_dicom_series(folder, files=item.files or None)
    found = next((v for v in volumes if _series_of(v) == item.series_uid), None)
    if found is None and len(volumes) == 1:
        found = volumes[0]
    if found is None:
        raise InputError(f"{item.path}: series {item.series_uid} not found in the folder")
    return found
