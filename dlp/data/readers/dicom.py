"""Single DICOM files (single- or multi-frame) via pydicom.

Intensities come out real-valued and "bright = high": the modality rescale
(RescaleSlope/Intercept, top-level or in the enhanced functional groups) is applied,
and MONOCHROME1 images (where low stored values display white) are inverted within
the range their stored bits can represent, with the window centre mirrored to match
(``meta["inverted"]`` records it).
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any

import numpy as np

from dlp.data.readers.base import (
    ImageReader,
    ImageReadError,
    ImageVolume,
    affine_from_geometry,
    read_header,
)


def _first(value: Any) -> Any:
    """The first value of a possibly multi-valued DICOM element."""
    if value is None:
        return None
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return value[0] if len(value) else None
    return value


def _functional_group(ds, frame: int | None, sequence: str, attribute: str) -> Any:
    """``attribute`` from an enhanced-IOD functional group (per-frame first, then shared)."""
    groups = []
    if frame is not None and "PerFrameFunctionalGroupsSequence" in ds:
        per_frame = ds.PerFrameFunctionalGroupsSequence
        if frame < len(per_frame):
            groups.append(per_frame[frame])
    if "SharedFunctionalGroupsSequence" in ds and len(ds.SharedFunctionalGroupsSequence):
        groups.append(ds.SharedFunctionalGroupsSequence[0])
    for group in groups:
        items = group.get(sequence)
        if items and attribute in items[0]:
            return items[0].get(attribute)
    return None


def _attribute(ds, frame: int | None, sequence: str, attribute: str) -> Any:
    value = header_value(ds, attribute)
    return value if value is not None else _functional_group(ds, frame, sequence, attribute)


def _decoder_hint(syntax_name: str) -> str:
    """The package(s) that let pydicom decode a transfer syntax, for the error message."""
    name = syntax_name.lower()
    if "2000" in name:
        return "pylibjpeg and pylibjpeg-openjpeg (pip install pylibjpeg pylibjpeg-openjpeg)"
    if "jpeg-ls" in name:
        return "pyjpegls (pip install pyjpegls)"
    if "jpeg" in name:
        return "pylibjpeg and pylibjpeg-libjpeg (pip install pylibjpeg pylibjpeg-libjpeg)"
    return "python-gdcm (pip install python-gdcm)"


_NATIVE_LITTLE_ENDIAN = ("1.2.840.10008.1.2", "1.2.840.10008.1.2.1")

#: the elements a grayscale slice is decoded and rescaled from
_SLICE_TAGS = {
    "SamplesPerPixel": 0x00280002, "PhotometricInterpretation": 0x00280004,
    "NumberOfFrames": 0x00280008, "Rows": 0x00280010, "Columns": 0x00280011,
    "BitsAllocated": 0x00280100, "BitsStored": 0x00280101, "PixelRepresentation": 0x00280103,
    "RescaleIntercept": 0x00281052, "RescaleSlope": 0x00281053,
}
_PIXEL_DATA_TAG = 0x7FE00010
_PIXEL_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")


def _raw_value(ds, tag: int) -> Any:
    """The value of element ``tag`` (None if absent or empty), parsed from its raw bytes
    for the few simple cases a slice header holds.

    pydicom converts an element on first access through a general machinery that costs
    ~30 µs each; a dataset build reads ten of them per slice, as much again as parsing
    the file.  Anything but a single little-endian US, a single CS/UI string or DS/IS
    numbers (a list when multi-valued) goes through pydicom as usual.
    """
    from pydicom.dataelem import RawDataElement

    element = ds.get_item(tag)
    if element is None:
        return None
    if isinstance(element, RawDataElement) and element.VR is not None:
        raw = element.value
        if not raw:
            return None
        vr = element.VR
        if vr == "US" and len(raw) == 2 and element.is_little_endian:
            return int.from_bytes(raw, "little")
        if vr in ("CS", "UI") and b"\\" not in raw:
            return raw.decode("ascii", "replace").strip(" \x00")
        if vr in ("DS", "IS"):
            number = float if vr == "DS" else int
            try:
                values = [number(v.strip(" \x00"))
                          for v in raw.decode("ascii", "replace").split("\\")]
            except ValueError:
                pass  # pydicom decides what a malformed number means
            else:
                return values[0] if len(values) == 1 else values
    value = ds[tag].value
    return None if value is None or value == "" else value


def header_value(ds, keyword: str, default: Any = None) -> Any:
    """``ds.get(keyword, default)`` through :func:`_raw_value` (empty counts as absent)."""
    value = _raw_value(ds, _tag_for_keyword(keyword))
    return default if value is None else value


@functools.cache
def _tag_for_keyword(keyword: str) -> int:
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(keyword)
    if tag is None:
        raise KeyError(f"not a DICOM keyword: {keyword}")
    return int(tag)


def _slice_header(ds) -> dict[str, Any]:
    """The :data:`_SLICE_TAGS` values of ``ds`` by keyword (None when absent)."""
    return {keyword: _raw_value(ds, tag) for keyword, tag in _SLICE_TAGS.items()}


def _int_or(value: Any, default: int) -> int:
    return default if value is None else int(value)


def _pixel_bytes(ds) -> Any:
    """The Pixel Data value, without pydicom's conversion when still raw (bytes either way)."""
    element = ds.get_item(_PIXEL_DATA_TAG)
    return None if element is None else element.value


def _native_pixels(ds, syntax: object, header: dict[str, Any] | None = None) -> np.ndarray | None:
    """Single-frame grayscale little-endian uncompressed pixels, straight from the bytes.

    pydicom's general decoder costs about as much as parsing the file; this common
    case needs only a reshape (and the same unused-bit correction pydicom applies).
    Returns None for anything else, which then goes through ``ds.pixel_array``.
    """
    if str(syntax) not in _NATIVE_LITTLE_ENDIAN:
        return None
    header = _slice_header(ds) if header is None else header
    if (_int_or(header["SamplesPerPixel"], 1) != 1
            or _int_or(header["NumberOfFrames"], 1) != 1):
        return None
    allocated = _int_or(header["BitsAllocated"], 0)
    stored = _int_or(header["BitsStored"], allocated)
    signed = _int_or(header["PixelRepresentation"], 0) == 1
    if allocated not in (8, 16) or not 1 <= stored <= allocated:
        return None
    if header["Rows"] is None or header["Columns"] is None:
        return None
    rows, columns = int(header["Rows"]), int(header["Columns"])
    raw = _pixel_bytes(ds)
    count = rows * columns
    if not isinstance(raw, bytes) or len(raw) < count * allocated // 8:
        return None
    dtype = np.dtype(f"<{'i' if signed else 'u'}{allocated // 8}")
    pixels = np.frombuffer(raw, dtype=dtype, count=count).reshape(rows, columns)
    if stored < allocated:
        shift = allocated - stored
        # unused high bits carry no pixel data: zero them, or sign-extend signed values
        # (a max() pass is cheaper than masking when, as usual, they are already clear)
        if signed:
            pixels = (pixels << shift) >> shift
        elif int(pixels.max(initial=0)) >> stored:
            pixels = pixels & ((1 << stored) - 1)
    return pixels


def _decode_pixels(ds, path: Path, header: dict[str, Any] | None = None) -> np.ndarray:
    syntax = ds.file_meta.get("TransferSyntaxUID") if hasattr(ds, "file_meta") else None
    native = _native_pixels(ds, syntax, header)
    if native is not None:
        return native
    try:
        return ds.pixel_array
    except (NotImplementedError, RuntimeError, ValueError, AttributeError) as exc:
        name = getattr(syntax, "name", None) or str(syntax or "unknown transfer syntax")
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        if "plugin" in str(exc).lower() or "decod" in str(exc).lower():
            raise ImageReadError(
                path,
                f"pixel data uses {name}, for which no decoder is installed; "
                f"install {_decoder_hint(name)} (pydicom: {reason})",
            ) from exc
        raise ImageReadError(path, f"cannot decode pixel data ({name}): {reason}") from exc


def _stored_range(ds) -> tuple[float, float]:
    bits = int(header_value(ds, "BitsStored") or header_value(ds, "BitsAllocated") or 16)
    if int(header_value(ds, "PixelRepresentation", 0)) == 1:
        return -(2.0 ** (bits - 1)), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0**bits - 1


def _rescale(ds, pixels: np.ndarray, frames: int) -> tuple[np.ndarray, list[tuple[float, float]]]:
    """Apply the modality rescale per frame; returns float32 frames and (slope, intercept)s."""
    out = pixels.astype(np.float32)
    params = []
    for frame in range(frames):
        slope = _attribute(ds, frame, "PixelValueTransformationSequence", "RescaleSlope")
        intercept = _attribute(ds, frame, "PixelValueTransformationSequence", "RescaleIntercept")
        slope = 1.0 if slope is None else float(slope)
        intercept = 0.0 if intercept is None else float(intercept)
        if slope != 1.0 or intercept != 0.0:
            out[frame] = out[frame] * np.float32(slope) + np.float32(intercept)
        params.append((slope, intercept))
    return out, params


def _floats(value: Any) -> list[float]:
    if isinstance(value, (int, float, str)) or not hasattr(value, "__len__"):
        return [float(value)]
    return [float(v) for v in value]


def _window(ds) -> tuple[tuple[float, float] | None, list[tuple[float, float]]]:
    centers = header_value(ds, "WindowCenter")
    widths = header_value(ds, "WindowWidth")
    if centers is None or widths is None:
        center = _functional_group(ds, 0, "FrameVOILUTSequence", "WindowCenter")
        width = _functional_group(ds, 0, "FrameVOILUTSequence", "WindowWidth")
        if center is None or width is None:
            return None, []
        centers, widths = center, width
    pairs = list(zip(_floats(centers), _floats(widths), strict=False))
    return (pairs[0] if pairs else None), pairs


def _geometry(ds, frames: int) -> dict[str, Any]:
    """Spacing, orientation and per-frame positions, from top-level or functional groups."""
    spacing_rc = (_attribute(ds, 0, "PixelMeasuresSequence", "PixelSpacing")
                  or header_value(ds, "ImagerPixelSpacing"))
    spacing_known = spacing_rc is not None
    sy, sx = (float(spacing_rc[0]), float(spacing_rc[1])) if spacing_known else (1.0, 1.0)
    orientation = _attribute(ds, 0, "PlaneOrientationSequence", "ImageOrientationPatient")
    positions = []
    for frame in range(frames):
        position = (_functional_group(ds, frame, "PlanePositionSequence", "ImagePositionPatient")
                    if frames > 1 else None) or header_value(ds, "ImagePositionPatient")
        positions.append(None if position is None else np.array([float(v) for v in position]))
    row_dir = col_dir = None
    if orientation is not None and len(orientation) == 6:
        row_dir = np.array([float(v) for v in orientation[:3]])
        col_dir = np.array([float(v) for v in orientation[3:]])
    normal = np.cross(row_dir, col_dir) if row_dir is not None else np.array([0.0, 0.0, 1.0])
    sz = None
    known = [p for p in positions if p is not None]
    if len(known) == frames and frames > 1:
        steps = np.diff([float(p @ normal) for p in known])
        if np.all(np.abs(steps) > 1e-6):
            sz = float(np.median(np.abs(steps)))
            if np.median(steps) < 0:
                normal = -normal
    if sz is None:
        thickness = (header_value(ds, "SpacingBetweenSlices")
                     or _attribute(ds, 0, "PixelMeasuresSequence", "SliceThickness"))
        sz = float(thickness) if thickness else 1.0
    return {
        "spacing": (sz, sy, sx),
        "spacing_known": spacing_known,
        "affine": affine_from_geometry((sz, sy, sx), row_dir, col_dir, normal,
                                       known[0] if known else None),
        "positions": positions,
        "orientation": None if row_dir is None else [*row_dir.tolist(), *col_dir.tolist()],
    }


def _text(ds, keyword: str) -> str | None:
    value = header_value(ds, keyword)
    return None if value is None else str(value)


def dataset_to_volume(ds, path: Path) -> ImageVolume:
    """An :class:`ImageVolume` from a pydicom dataset read with its pixel data."""
    if not any(keyword in ds for keyword in _PIXEL_KEYWORDS):
        raise ImageReadError(path, "DICOM file has no pixel data (not an image)")
    for keyword in ("Rows", "Columns"):
        if keyword not in ds:
            raise ImageReadError(path, f"DICOM image lacks the {keyword} element")
    pixels = _decode_pixels(ds, path)
    photometric = str(header_value(ds, "PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = int(header_value(ds, "SamplesPerPixel", 1))
    frames = int(header_value(ds, "NumberOfFrames") or 1)
    rgb = samples == 3
    expected_ndim = 2 + (frames > 1) + rgb
    if pixels.ndim != expected_ndim:
        raise ImageReadError(
            path, f"decoded pixels have shape {pixels.shape}; NumberOfFrames={frames} and "
            f"SamplesPerPixel={samples} imply {expected_ndim} dimensions"
        )
    if frames == 1:
        pixels = pixels[np.newaxis]
    window, windows = _window(ds)
    if rgb:
        # pydicom converts YBR colour to RGB; no modality rescale applies to colour images
        array = pixels.astype(np.uint8) if pixels.dtype == np.uint8 else pixels.astype(np.float32)
        rescale = [(1.0, 0.0)] * frames
    else:
        array, rescale = _rescale(ds, pixels, frames)
    inverted = photometric == "MONOCHROME1"
    if inverted:
        low, high = _stored_range(ds)
        slope, intercept = rescale[0]
        total = (low + high) * slope + 2 * intercept
        array = np.float32(total) - array
        if window is not None:
            window = (total - window[0], window[1])
            windows = [(total - c, w) for c, w in windows]
    geometry = _geometry(ds, frames)
    meta = {
        "modality": _text(ds, "Modality"),
        "photometric": photometric,
        "inverted": inverted,
        "space": "LPS",
        "patient_id": _text(ds, "PatientID"),
        "study_uid": _text(ds, "StudyInstanceUID"),
        "series_uid": _text(ds, "SeriesInstanceUID"),
        "sop_uids": [_text(ds, "SOPInstanceUID")],
        "series_number": header_value(ds, "SeriesNumber"),
        "instance_number": header_value(ds, "InstanceNumber"),
        "slice_location": header_value(ds, "SliceLocation"),
        "transfer_syntax": str(ds.file_meta.get("TransferSyntaxUID", "")) if hasattr(
            ds, "file_meta") else "",
        "bits_stored": header_value(ds, "BitsStored"),
        "signed": int(header_value(ds, "PixelRepresentation", 0)) == 1,
        "rescale": rescale,
        "windows": windows,
        "frames": frames,
        "spacing_known": geometry["spacing_known"],
        "orientation": geometry["orientation"],
        "positions": [None if p is None else p.tolist() for p in geometry["positions"]],
        "stored_dtype": str(pixels.dtype),
    }
    return ImageVolume(
        array=array,
        spacing=geometry["spacing"],
        affine=geometry["affine"],
        window=window,
        source=path,
        format="dicom",
        meta=meta,
        headers=[without_pixels(ds)],
    )


def without_pixels(ds):
    """``ds`` with its pixel data removed (in place: the pixels are decoded by now)."""
    for keyword in _PIXEL_KEYWORDS:
        if keyword in ds:
            del ds[keyword]
    return ds


def read_dicom_slice(path: Path) -> np.ndarray:
    """The (H, W) real-valued pixels of a single-frame grayscale DICOM file, fast.

    The same rescale and MONOCHROME1 handling as :class:`DicomReader`, without the
    geometry and metadata a full :class:`ImageVolume` collects (the dataset builder
    reads thousands of slices and needs only their pixels).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        ds = read_dicom_dataset(path)
        try:
            header = _slice_header(ds)
        except Exception as exc:  # a malformed element pydicom cannot convert
            raise ImageReadError(path, f"corrupt DICOM header ({type(exc).__name__}: {exc})"
                                 ) from exc
        if (_int_or(header["NumberOfFrames"], 1) != 1
                or _int_or(header["SamplesPerPixel"], 1) != 1):
            return DicomReader().read(path)[0].array[0]
        if ds.get_item(_PIXEL_DATA_TAG) is None:
            raise ImageReadError(path, "DICOM file has no pixel data (not an image)")
        try:
            pixels = _decode_pixels(ds, path, header)
        except ImageReadError:
            raise
        except Exception as exc:
            raise ImageReadError(
                path, f"corrupt DICOM pixel data ({type(exc).__name__}: {exc})"
            ) from exc
    if pixels.ndim != 2:
        raise ImageReadError(path, f"decoded pixels have shape {pixels.shape}; expected (H, W)")
    slope = float(header["RescaleSlope"] or 1.0)
    intercept = float(header["RescaleIntercept"] or 0.0)
    array = pixels.astype(np.float32)
    if slope != 1.0 or intercept != 0.0:
        array = array * np.float32(slope) + np.float32(intercept)
    if str(header["PhotometricInterpretation"] or "").upper() == "MONOCHROME1":
        low, high = _stored_range(ds)
        array = np.float32((low + high) * slope + 2 * intercept) - array
    return array


def read_dicom_dataset(path: Path, *, pixels: bool = True):
    """``pydicom.dcmread`` with failures turned into :class:`ImageReadError`."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        return pydicom.dcmread(path, stop_before_pixels=not pixels)
    except InvalidDicomError as exc:
        raise ImageReadError(path, f"not a DICOM file ({exc})") from exc
    except OSError as exc:
        raise ImageReadError(path, f"cannot read: {exc.strerror or exc}") from exc
    except Exception as exc:  # pydicom raises assorted errors on truncated/corrupt files
        raise ImageReadError(path, f"corrupt DICOM file ({type(exc).__name__}: {exc})") from exc


class DicomReader(ImageReader):
    """``.dcm``/``.dicom`` files, or any file with the ``DICM`` marker at byte 128."""

    format_name = "dicom"
    suffixes = (".dcm", ".dicom", ".ima")

    def matches_content(self, path: Path) -> bool:
        return read_header(path)[128:132] == b"DICM"

    def read(self, path: Path) -> list[ImageVolume]:
        import warnings

        with warnings.catch_warnings():
            # pydicom warns about recoverable oddities (VR mismatches) it already handled
            warnings.simplefilter("ignore", UserWarning)
            return [read_dataset_volume(read_dicom_dataset(path), path)]


def read_dataset_volume(ds, path: Path) -> ImageVolume:
    """:func:`dataset_to_volume` with any failure turned into :class:`ImageReadError`."""
    try:
        return dataset_to_volume(ds, path)
    except ImageReadError:
        raise
    except Exception as exc:  # corrupt pixel data, inconsistent lengths, ...
        raise ImageReadError(
            path, f"corrupt DICOM pixel data ({type(exc).__name__}: {exc})"
        ) from exc
