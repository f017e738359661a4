"""NIfTI-1/2 ``.nii``/``.nii.gz`` via nibabel, and writing label maps back in place.

NIfTI stores voxels as (i, j, k[, t]); an :class:`ImageVolume` holds (S, H, W) with
x = column = i, y = row = j, z = slice = k, so the NIfTI affine applies unchanged.
A 4-D file gives one volume per time frame (``meta["frame"]``, ``meta["frames"]``).
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path

import numpy as np
from isal import igzip

from dlp.data.readers.base import ImageReader, ImageReadError, ImageVolume, read_header
from dlp.fsutil import atomic_write_bytes

_LPS_TO_RAS = np.diag([-1.0, -1.0, 1.0, 1.0])


class NiftiReader(ImageReader):
    format_name = "nifti"
    suffixes = (".nii", ".nii.gz")

    def matches_content(self, path: Path) -> bool:
        header = read_header(path, 348)
        if header[:2] == b"\x1f\x8b":
            try:
                with gzip.open(path, "rb") as handle:
                    header = handle.read(348)
            except OSError:
                return False
        return header[344:348] in (b"n+1\0", b"ni1\0") or header[4:8] == b"n+2\0"

    def read(self, path: Path) -> list[ImageVolume]:
        import nibabel as nib
        from nibabel.filebasedimages import ImageFileError

        try:
            image = nib.load(str(path))
            data = np.asanyarray(image.dataobj)
        except (ImageFileError, OSError, EOFError, ValueError, gzip.BadGzipFile) as exc:
            raise ImageReadError(path, f"not a readable NIfTI file ({exc})") from exc
        if data.ndim == 2:
            data = data[:, :, np.newaxis]
        if data.ndim == 5 and data.shape[3] == 1:
            data = data[:, :, :, 0]
        if data.ndim not in (3, 4):
            raise ImageReadError(path, f"expected a 2-D, 3-D or 4-D NIfTI image; got {data.shape}")
        frames = 1 if data.ndim == 3 else data.shape[3]
        zooms = [float(z) for z in image.header.get_zooms()[:3]]
        zooms += [1.0] * (3 - len(zooms))
        affine = np.asarray(image.affine, dtype=float)
        header = image.header
        qform_code = int(header["qform_code"]) if "qform_code" in header else 0
        sform_code = int(header["sform_code"]) if "sform_code" in header else 0
        volumes = []
        for frame in range(frames):
            vol = data if data.ndim == 3 else data[..., frame]
            array = np.ascontiguousarray(np.transpose(vol, (2, 1, 0)))
            if not np.issubdtype(array.dtype, np.floating) and array.dtype.itemsize > 2:
                array = array.astype(np.float32)
            volumes.append(ImageVolume(
                array=array,
                spacing=(zooms[2], zooms[1], zooms[0]),
                affine=affine.copy(),
                window=None,
                source=path,
                format="nifti",
                meta={
                    "space": "RAS", "frame": frame, "frames": frames,
                    "qform_code": qform_code, "sform_code": sform_code,
                    "nifti_shape": list(data.shape), "dtype": str(data.dtype),
                },
            ))
        return volumes


def _world_affine_ras(reference: ImageVolume) -> np.ndarray:
    space = reference.meta.get("space", "pixel")
    if space == "LPS":
        return _LPS_TO_RAS @ reference.affine
    return reference.affine.copy()


def write_nifti_labels(
    labels: np.ndarray, reference: ImageVolume, path: str | os.PathLike[str]
) -> Path:
    """Write a label map (S, H, W) as NIfTI in ``reference``'s voxel grid and world space.

    DICOM's LPS affine is converted to NIfTI's RAS; a NIfTI reference keeps its affine
    and qform/sform codes, so the labels overlay the input in any viewer.  ``.nii.gz``
    is gzip-compressed; the file is written atomically.
    """
    import nibabel as nib

    path = Path(path)
    labels = np.asarray(labels)
    if labels.ndim == 2:
        labels = labels[np.newaxis]
    expected = (reference.num_slices, *reference.slice_shape)
    if labels.shape != expected:
        raise ImageReadError(
            path, f"labels of shape {labels.shape} do not match the reference image "
            f"{reference.source} of shape {expected} (S, H, W)"
        )
    dtype = np.uint8 if labels.min(initial=0) >= 0 and labels.max(initial=0) < 256 else np.int16
    # (S, H, W) in C order is NIfTI's (i, j, k) in Fortran order, the order the file
    # stores: the transposed view is written as it is, without two reordering copies.
    data = np.transpose(labels.astype(dtype, copy=False), (2, 1, 0))
    affine = _world_affine_ras(reference)
    image = nib.Nifti1Image(data, affine)
    code = 1 if reference.meta.get("space") in ("LPS", "RAS") else 0
    image.set_qform(affine, code=int(reference.meta.get("qform_code", code) or code))
    image.set_sform(affine, code=int(reference.meta.get("sform_code", code) or code))
    image.header.set_intent("label")
    payload = image.to_bytes()
    if path.name.lower().endswith(".gz"):
        # ISA-L's level 1 (the same gzip stream): label volumes are mostly runs of
        # zeros, packed tighter than zlib's level 1 and ten times faster.
        payload = igzip.compress(payload, compresslevel=1, mtime=0)
    elif not path.name.lower().endswith(".nii"):
        raise ImageReadError(path, "label files are written as .nii or .nii.gz")
    atomic_write_bytes(path, payload)
    return path
