"""A synthetic cardiac MR dataset in the Sunnybrook challenge layout.

``generate_phantom(out_dir, cases, slices, size, seed)`` writes, deterministically:

- ``images/challenge_training/<SC-HF-I-1>/IM-<SERIES>-<NNNN>.dcm`` — 16-bit MR DICOM
  (valid file meta, patient/study/series/SOP UIDs, PixelSpacing, SliceThickness,
  SliceLocation, ImagePositionPatient/ImageOrientationPatient of an oblique short-axis
  stack, window) of a torso with a bright LV blood pool inside a myocardium ring and
  an RV crescent, a smooth bias field and Rician noise;
- ``contours/TrainingDataContours/<SC-HF-I-01>/contours-manual/IRCCI-expert/
  IM-0001-<NNNN>-{i,o}contour-manual.txt`` — float polygons (``x y`` per line, pixel
  units, pixel centres at integer coordinates) tracing the blood pool and epicardium;
- ``contours/series-table.csv`` — the case→series table (the real table's values, so
  the importer's built-in default table works too).

Each short-axis slice has two cine frames, as the challenge contoured them:
end-diastole (image number ``20·s + 1``, i- and o-contours) and end-systole
(``20·s + 9``, i-contour only).  Case names are taken from the real challenge table,
alternating the four patient groups.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlp.data.sunnybrook_layout import (
    DEFAULT_SERIES_TABLE,
    contour_case_folder,
    contour_file_name,
    format_series_table,
    image_file_name,
)
from dlp.errors import InputError
from dlp.fsutil import atomic_directory, atomic_write_text
from dlp.progress import CancelToken, ProgressCallback, report

IMAGE_SET = "challenge_training"
CONTOUR_SET = "TrainingDataContours"
SERIES_TABLE_NAME = "series-table.csv"
FRAMES_PER_SLICE = 20  # cine phases per slice location; image numbers skip the others
ED_PHASE, ES_PHASE = 0, 8

_MR_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.4"


def phantom_case_names(count: int) -> list[str]:
    """``count`` real challenge case names, cycling through the four patient groups."""
    groups: dict[str, list[str]] = {}
    for case in DEFAULT_SERIES_TABLE:
        groups.setdefault(case.rsplit("-", 1)[0], []).append(case)
    order: list[str] = []
    columns = max(len(names) for names in groups.values())
    for index in range(columns):
        order += [names[index] for names in groups.values() if index < len(names)]
    if not 1 <= count <= len(order):
        raise InputError(f"phantom cases must be between 1 and {len(order)}; got {count}")
    return order[:count]


@dataclass(frozen=True)
class PhantomCase:
    name: str                      # image folder name, e.g. "SC-HF-I-1"
    contour_folder: str            # zero-padded, e.g. "SC-HF-I-01"
    series: int
    image_numbers: tuple[int, ...]


@dataclass(frozen=True)
class Phantom:
    """Where :func:`generate_phantom` wrote what."""

    root: Path
    images_dir: Path
    contours_dir: Path
    series_table: Path
    cases: list[PhantomCase] = field(default_factory=list)

    @property
    def image_count(self) -> int:
        return sum(len(case.image_numbers) for case in self.cases)


@dataclass(frozen=True)
class _Anatomy:
    """Per-case parameters, drawn once so every slice of a case is coherent."""

    centre: tuple[float, float]
    radius_base: float
    wall: float
    harmonics: tuple[float, float, float, float]
    blood: float
    myocardium: float
    tissue: float
    rv_blood: float
    noise: float
    bias: tuple[float, float, float]
    pixel_spacing: float
    orientation: np.ndarray  # (2, 3): row direction, column direction (LPS)


def _draw_anatomy(rng: np.random.Generator, size: int) -> _Anatomy:
    scale = size / 256.0
    centre = tuple(size / 2 + rng.uniform(-0.08, 0.08, size=2) * size)
    blood = rng.uniform(380, 720)
    # an oblique short-axis plane: a random rotation of the axial directions
    angles = rng.uniform(-0.6, 0.6, size=3)
    cx, cy, cz = np.cos(angles)
    sx, sy, sz = np.sin(angles)
    rot = (
        np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
        @ np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
        @ np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    )
    return _Anatomy(
        centre=centre,
        radius_base=rng.uniform(20, 30) * scale,
        wall=rng.uniform(7, 11) * scale,
        harmonics=(rng.uniform(0, 0.08), rng.uniform(0, 2 * np.pi),
                   rng.uniform(0, 0.04), rng.uniform(0, 2 * np.pi)),
        blood=blood,
        myocardium=rng.uniform(100, 170),
        tissue=rng.uniform(60, 130),
        rv_blood=blood * rng.uniform(0.8, 0.95),
        noise=rng.uniform(8, 20),
        bias=(rng.uniform(-0.3, 0.3), rng.uniform(-0.3, 0.3), rng.uniform(0, 2 * np.pi)),
        pixel_spacing=round(float(rng.uniform(1.25, 1.45)), 4),
        orientation=rot[:2],
    )


def _radius(theta: np.ndarray, base: float, harmonics: tuple[float, float, float, float]):
    a2, p2, a3, p3 = harmonics
    return base * (1 + a2 * np.cos(2 * theta + p2) + a3 * np.cos(3 * theta + p3))


def _soft_inside(signed_distance: np.ndarray) -> np.ndarray:
    """Partial-volume edge: 1 well inside, 0 well outside, 0.5 on the boundary."""
    return 1.0 / (1.0 + np.exp(-np.clip(signed_distance / 0.35, -40, 40)))


def _render_slice(
    anatomy: _Anatomy, size: int, endo_radius: float, wall: float, rng: np.random.Generator
) -> np.ndarray:
    """One (size, size) float64 image; pixel (r, c) is sampled at (x=c, y=r)."""
    ys, xs = np.mgrid[0:size, 0:size].astype(np.float64)
    cx, cy = anatomy.centre
    dx, dy = xs - cx, ys - cy
    rho = np.hypot(dx, dy)
    theta = np.arctan2(dy, dx)
    r_endo = _radius(theta, endo_radius, anatomy.harmonics)
    r_epi = r_endo + wall * (1 + 0.15 * np.cos(theta - anatomy.harmonics[1]))
    endo = _soft_inside(r_endo - rho)
    epi = _soft_inside(r_epi - rho)

    # RV: an ellipse on the patient's right of the LV (image left), cut by the septum
    rv_cx = cx - (endo_radius + wall) * 1.55
    rv_a, rv_b = (endo_radius + wall) * 1.25, (endo_radius + wall) * 0.95
    rv_d = 1 - np.hypot((xs - rv_cx) / rv_a, (ys - cy) / rv_b)
    septum = _soft_inside(r_epi + wall * 0.8 - rho)
    rv = _soft_inside(rv_d * rv_b) * (1 - septum)

    half = size / 2
    body = _soft_inside((1 - np.hypot((xs - half) / (0.46 * size), (ys - half) / (0.38 * size)))
                        * 0.38 * size)
    k = 2 * np.pi / size
    texture = 1 + 0.12 * np.sin(k * 3 * xs + anatomy.bias[2]) * np.cos(k * 2 * ys)
    tissue = anatomy.tissue * texture * body + 4 * (1 - body)

    image = (
        tissue * (1 - epi - rv).clip(0, 1)
        + anatomy.myocardium * (epi - endo)
        + anatomy.blood * endo
        + anatomy.rv_blood * rv
    )
    gx, gy, phase = anatomy.bias
    bias = (1 + gx * (xs - half) / size + gy * (ys - half) / size
            + 0.1 * np.cos(k * xs + phase) * np.cos(k * ys))
    image *= bias
    # Rician magnitude noise: |signal + complex Gaussian|
    real = image + rng.normal(0, anatomy.noise, image.shape)
    imag = rng.normal(0, anatomy.noise, image.shape)
    return np.hypot(real, imag)


def _contour(
    anatomy: _Anatomy, radius: float, points: int, wall: float | None, rng: np.random.Generator
) -> np.ndarray:
    """(points, 2) float x, y polygon of the endocardium (``wall`` None) or epicardium."""
    theta = np.sort(rng.uniform(0, 2 * np.pi / points, points) + np.arange(points) * 2 * np.pi
                    / points)
    r = _radius(theta, radius, anatomy.harmonics)
    if wall is not None:
        r = r + wall * (1 + 0.15 * np.cos(theta - anatomy.harmonics[1]))
    cx, cy = anatomy.centre
    return np.stack([cx + r * np.cos(theta), cy + r * np.sin(theta)], axis=1)


def _format_contour(points: np.ndarray) -> str:
    return "".join(f"{x:.2f} {y:.2f}\n" for x, y in points)


def _uid(*parts: object) -> str:
    from pydicom.uid import generate_uid

    return str(generate_uid(entropy_srcs=["dlp-phantom", *map(str, parts)]))


def _write_dicom(
    path: Path, pixels: np.ndarray, *, case: str, series: int, image_number: int,
    anatomy: _Anatomy, slice_index: int, phase: int, seed: int,
) -> None:
    from pydicom.dataset import Dataset as DicomDataset
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian

    sop_uid = _uid(seed, case, image_number)
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = _MR_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID

    ds = DicomDataset()
    ds.file_meta = meta
    ds.SOPClassUID = _MR_IMAGE_STORAGE
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = _uid(seed, case, "study")
    ds.SeriesInstanceUID = _uid(seed, case, "series", series)
    ds.FrameOfReferenceUID = _uid(seed, case, "frame")
    ds.PatientID = case
    ds.PatientName = f"Phantom^{case}"
    ds.PatientSex = "O"
    ds.StudyDate = ds.SeriesDate = "20090901"
    ds.StudyID = "1"
    ds.Modality = "MR"
    ds.Manufacturer = "DLP phantom"
    ds.SeriesDescription = "CINE SA (phantom)"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "M", "ND"]
    ds.SeriesNumber = series
    ds.InstanceNumber = image_number
    ds.AcquisitionNumber = 1
    ds.TriggerTime = round(phase * 40.0, 1)
    ds.CardiacNumberOfImages = FRAMES_PER_SLICE

    slice_gap = 10.0
    row_dir, col_dir = anatomy.orientation
    normal = np.cross(row_dir, col_dir)
    origin = np.array([-120.0, -110.0, 40.0])
    position = origin + slice_index * slice_gap * normal
    ds.ImageOrientationPatient = [round(float(v), 6) for v in (*row_dir, *col_dir)]
    ds.ImagePositionPatient = [round(float(v), 4) for v in position]
    ds.SliceLocation = round(float(position @ normal), 4)
    ds.SliceThickness = 8.0
    ds.SpacingBetweenSlices = slice_gap
    ds.PixelSpacing = [anatomy.pixel_spacing, anatomy.pixel_spacing]

    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = round(anatomy.blood * 0.55, 1)
    ds.WindowWidth = round(anatomy.blood * 1.2, 1)
    ds.PixelData = pixels.astype("<u2").tobytes()
    ds.save_as(path, enforce_file_format=True)


def generate_phantom(
    out_dir: str | os.PathLike[str],
    cases: int = 4,
    slices: int = 8,
    size: int = 256,
    seed: int = 0,
    *,
    overwrite: bool = False,
    progress: ProgressCallback | None = None,
    cancel: CancelToken | None = None,
) -> Phantom:
    """Write a deterministic Sunnybrook-layout phantom into ``out_dir``.

    Creates ``out_dir/images/`` and ``out_dir/contours/`` (each built in a temporary
    folder and renamed when complete).  Existing ones are replaced only with
    ``overwrite=True``.  Same arguments, same bytes.
    """
    if slices < 1:
        raise InputError(f"phantom slices must be at least 1; got {slices}")
    if not 32 <= size <= 2048:
        raise InputError(f"phantom size must be between 32 and 2048 pixels; got {size}")
    names = phantom_case_names(cases)
    root = Path(out_dir)
    images_dir, contours_dir = root / "images", root / "contours"
    if not overwrite:
        for folder in (images_dir, contours_dir):
            if folder.exists():
                raise InputError(f"{folder} already exists; choose another --out or overwrite")
    total = len(names) * slices * 2
    done = 0
    written: list[PhantomCase] = []
    with atomic_directory(images_dir) as tmp_images, atomic_directory(contours_dir) as tmp_contours:
        for case_index, case in enumerate(names):
            rng = np.random.default_rng([seed, case_index])
            anatomy = _draw_anatomy(rng, size)
            series = DEFAULT_SERIES_TABLE[case]
            image_folder = tmp_images / IMAGE_SET / case
            contour_folder = (tmp_contours / CONTOUR_SET / contour_case_folder(case)
                              / "contours-manual" / "IRCCI-expert")
            image_folder.mkdir(parents=True)
            contour_folder.mkdir(parents=True)
            numbers = []
            for slice_index in range(slices):
                apex = slice_index / max(slices - 1, 1)
                for phase in (ED_PHASE, ES_PHASE):
                    if cancel is not None:
                        cancel.raise_if_cancelled()
                    systole = phase == ES_PHASE
                    radius = anatomy.radius_base * (1 - 0.55 * apex) * (0.7 if systole else 1.0)
                    wall = anatomy.wall * (1.3 if systole else 1.0)
                    image_number = slice_index * FRAMES_PER_SLICE + phase + 1
                    pixels = _render_slice(anatomy, size, radius, wall, rng)
                    _write_dicom(
                        image_folder / image_file_name(series, image_number),
                        np.clip(np.rint(pixels), 0, 4095).astype(np.uint16),
                        case=case, series=series, image_number=image_number,
                        anatomy=anatomy, slice_index=slice_index, phase=phase, seed=seed,
                    )
                    points = int(rng.integers(48, 96))
                    (contour_folder / contour_file_name(image_number, "i")).write_text(
                        _format_contour(_contour(anatomy, radius, points, None, rng))
                    )
                    if not systole:
                        (contour_folder / contour_file_name(image_number, "o")).write_text(
                            _format_contour(_contour(anatomy, radius, points, wall, rng))
                        )
                    numbers.append(image_number)
                    done += 1
                    report(progress, done, total, case)
            written.append(PhantomCase(case, contour_case_folder(case), series, tuple(numbers)))
        atomic_write_text(
            tmp_contours / SERIES_TABLE_NAME,
            format_series_table({c.name: c.series for c in written}),
        )
    return Phantom(
        root=root,
        images_dir=images_dir,
        contours_dir=contours_dir,
        series_table=contours_dir / SERIES_TABLE_NAME,
        cases=written,
    )

