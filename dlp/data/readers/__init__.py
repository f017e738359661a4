"""Medical and plain image readers behind one interface.

``read_image(path)`` reads any supported file (a folder is a DICOM series) into an
:class:`ImageVolume`; ``read_images(path)`` returns every volume a path holds (one
per 4-D NIfTI frame or per DICOM series).  The reader is chosen by suffix, then by
content (DICOM files often have no suffix).
"""

from __future__ import annotations

import os
from pathlib import Path

from dlp.data.readers.base import ImageReader, ImageReadError, ImageVolume, affine_from_geometry
from dlp.data.readers.dicom import DicomReader
from dlp.data.readers.dicom_series import DicomSeriesReader, read_dicom_series
from dlp.data.readers.nifti import NiftiReader, write_nifti_labels
from dlp.data.readers.pillow_reader import PillowReader

#: file readers in the order their suffix and content checks are tried
FILE_READERS: tuple[ImageReader, ...] = (NiftiReader(), DicomReader(), PillowReader())

__all__ = [
    "FILE_READERS",
    "DicomReader",
    "DicomSeriesReader",
    "ImageReadError",
    "ImageReader",
    "ImageVolume",
    "NiftiReader",
    "PillowReader",
    "affine_from_geometry",
    "read_dicom_series",
    "read_image",
    "read_images",
    "reader_for",
    "write_nifti_labels",
]


def reader_for(path: str | os.PathLike[str]) -> ImageReader:
    """The reader for ``path``: a folder → DICOM series; else by suffix, then content."""
    path = Path(path)
    if path.is_dir():
        return DicomSeriesReader()
    if not path.exists():
        raise ImageReadError(path, "file not found")
    for reader in FILE_READERS:
        if reader.matches_suffix(path):
            return reader
    for reader in FILE_READERS:
        if reader.matches_content(path):
            return reader
    raise ImageReadError(
        path, "unknown image format (expected DICOM, NIfTI .nii/.nii.gz, PNG, JPEG or TIFF)"
    )


def read_images(path: str | os.PathLike[str]) -> list[ImageVolume]:
    """Every volume in ``path`` (4-D NIfTI: one per frame; folder: one per series)."""
    path = Path(path)
    return reader_for(path).read(path)


def read_image(path: str | os.PathLike[str]) -> ImageVolume:
    """The single volume in ``path``; several (series, 4-D frames) is an error naming them."""
    path = Path(path)
    volumes = read_images(path)
    if len(volumes) != 1:
        kind = "DICOM series" if path.is_dir() else "time frames"
        raise ImageReadError(
            path, f"holds {len(volumes)} {kind}; use read_images() / read_dicom_series() "
            "to choose one"
        )
    return volumes[0]
