"""The image volume every reader returns, and the reader interface (MONAI's habit).

One :class:`ImageReader` subclass per format declares the suffixes it handles and
how to recognise its files by content; :func:`reader_for` picks one by suffix first,
then by content, so DICOM files without a ``.dcm`` suffix are read too.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import ClassVar

import numpy as np

from dlp.errors import InputError


class ImageReadError(InputError):
    """A file or folder could not be read as an image; the message names it and why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


@dataclass
class ImageVolume:
    """Pixel data plus the geometry needed to measure it and to write results back.

    ``array`` is (S, H, W) (or (S, H, W, 3) for RGB) of real-valued intensities after
    any rescale; ``spacing`` is (sz, sy, sx) in mm; ``affine`` maps voxel indices
    (x = column, y = row, z = slice, 1) to world mm in the file's own convention
    (``meta["space"]``: ``"LPS"`` for DICOM, ``"RAS"`` for NIfTI, ``"pixel"`` for
    plain images); ``window`` is the display (center, width) the file suggests.
    ``headers`` are the source DICOM headers (pydicom datasets without their pixel
    data), one per file in slice order, so objects derived from the images (a DICOM
    SEG) need not read the files again; None for other formats.
    """

    array: np.ndarray
    spacing: tuple[float, float, float]
    affine: np.ndarray
    window: tuple[float, float] | None
    source: Path
    format: str
    meta: dict = field(default_factory=dict)
    headers: list | None = field(default=None, repr=False, compare=False)

    @property
    def num_slices(self) -> int:
        return int(self.array.shape[0])

    @property
    def slice_shape(self) -> tuple[int, int]:
        return int(self.array.shape[1]), int(self.array.shape[2])

    @property
    def is_rgb(self) -> bool:
        return self.array.ndim == 4

    def slice_volume(self, index: int) -> ImageVolume:
        """Slice ``index`` as a one-slice volume whose affine still places it correctly."""
        if not -self.num_slices <= index < self.num_slices:
            raise IndexError(f"slice {index} of a {self.num_slices}-slice volume")
        index %= self.num_slices
        affine = self.affine.copy()
        affine[:3, 3] = self.affine[:3, :3] @ np.array([0.0, 0.0, float(index)]) + affine[:3, 3]
        headers = self.headers
        if headers is not None and len(headers) == self.num_slices > 1:
            headers = [headers[index]]  # one file per slice
        return replace(
            self, array=self.array[index:index + 1], affine=affine,
            meta={**self.meta, "slice_index": index}, headers=headers,
        )


def affine_from_geometry(
    spacing: tuple[float, float, float],
    row_direction: np.ndarray | None = None,
    column_direction: np.ndarray | None = None,
    slice_direction: np.ndarray | None = None,
    origin: np.ndarray | None = None,
) -> np.ndarray:
    """4x4 affine from unit directions of increasing column/row/slice, spacing and origin."""
    sz, sy, sx = spacing
    row_dir = np.array([1.0, 0, 0]) if row_direction is None else np.asarray(row_direction, float)
    col_dir = (np.array([0, 1.0, 0]) if column_direction is None
               else np.asarray(column_direction, float))
    normal = np.cross(row_dir, col_dir) if slice_direction is None else slice_direction
    affine = np.eye(4)
    affine[:3, 0] = row_dir * sx
    affine[:3, 1] = col_dir * sy
    affine[:3, 2] = np.asarray(normal, float) * sz
    if origin is not None:
        affine[:3, 3] = origin
    return affine


class ImageReader:
    """Reads one format; subclasses set ``format_name``/``suffixes`` and implement ``read``."""

    format_name: ClassVar[str]
    suffixes: ClassVar[tuple[str, ...]] = ()

    def matches_suffix(self, path: Path) -> bool:
        name = path.name.lower()
        return any(name.endswith(suffix) for suffix in self.suffixes)

    def matches_content(self, path: Path) -> bool:
        """True when the file's first bytes say it is this format."""
        return False

    def read(self, path: Path) -> list[ImageVolume]:
        """All volumes in ``path`` (one for most files; one per frame/series otherwise)."""
        raise NotImplementedError


def read_header(path: Path, size: int = 132) -> bytes:
    try:
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError as exc:
        raise ImageReadError(path, f"cannot open: {exc.strerror}") from exc
