"""Import the Sunnybrook Cardiac MR LV Segmentation Challenge layout.

Case folders are found anywhere below ``images`` and ``contours`` by name
(``SC-HF-I-1`` / ``SC-HF-I-01``), which covers both published folder schemes
(``challenge_training/…`` + ``…ContoursPart3/TrainingDataContours/…`` and
``…DICOMPart3/TrainingDataDICOM/…``).  Each contour file
``IM-0001-NNNN-{i,o,p1,p2}contour-manual.txt`` is matched to
``<image case>/IM-<SERIES>-<NNNN>.dcm`` with the case→series table (the challenge's,
or one read from a CSV/JSON file).  Polygons are rasterised with the pixel-centre
rule of :mod:`dlp.data.rasterize`.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from dlp.data.rasterize import paint_polygon
from dlp.data.sunnybrook_layout import (
    CONTOUR_FILE_RE,
    DEFAULT_SERIES_TABLE,
    IMAGE_FILE_RE,
    canonical_case,
    image_file_name,
    read_series_table,
)
from dlp.errors import InputError

#: class sets: --classes value -> (class names, contour kinds painted in order with labels)
CLASS_SETS: dict[str, tuple[list[str], list[tuple[str, int]]]] = {
    "endo": (["background", "LV cavity"], [("i", 1)]),
    "endo,epi": (["background", "LV cavity", "myocardium"], [("o", 2), ("i", 1)]),
}


_TWO_FIELDS_PER_LINE = re.compile(r"(?:[ \t]*\S+[ \t]+\S+[ \t]*(?:\r?\n|\Z)|[ \t]*\r?\n)*")


class ContourError(InputError):
    """A contour file is malformed; the message names the file and line."""


def read_contour(path: str | os.PathLike[str]) -> np.ndarray:
    """(N, 2) float64 ``x y`` points of a Sunnybrook contour file (pixel units)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="ascii", errors="strict")
    except (OSError, UnicodeDecodeError) as exc:
        raise ContourError(f"{path}: cannot read contour file: {exc}") from exc
    # the common case in two C-level calls; line by line only to explain an error
    values = None
    if _TWO_FIELDS_PER_LINE.fullmatch(text):
        try:
            values = np.array(text.split(), dtype=np.float64)
        except ValueError:
            values = None
    if values is None:
        _raise_contour_line_error(path, text)
    points = values.reshape(-1, 2)
    if len(points) < 3:
        raise ContourError(f"{path}: a contour needs at least 3 points; found {len(points)}")
    if not np.all(np.isfinite(points)):
        raise ContourError(f"{path}: contour has non-finite coordinates")
    return points


def _raise_contour_line_error(path: Path, text: str) -> None:
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 2:
            raise ContourError(f"{path}:{number}: expected two numbers 'x y'; got {line.strip()!r}")
        try:
            float(fields[0]), float(fields[1])
        except ValueError as exc:
            raise ContourError(f"{path}:{number}: not a number in {line.strip()!r}") from exc
    raise ContourError(f"{path}: malformed contour file")


@dataclass
class ContouredImage:
    """One image with its expert contours."""

    case: str                         # canonical case, e.g. "SC-HF-I-1"
    image_number: int
    image_path: Path
    contours: dict[str, Path] = field(default_factory=dict)  # kind ("i", "o", …) -> file

    @property
    def name(self) -> str:
        return f"{self.case}/{self.image_path.name}"


@dataclass
class SunnybrookScan:
    """What :func:`scan_sunnybrook` found: matched images and what could not be matched."""

    images: list[ContouredImage]
    problems: list[tuple[Path, str]]
    series_table: dict[str, int]

    @property
    def cases(self) -> list[str]:
        return sorted({item.case for item in self.images})


def _case_folders(root: Path, what: str) -> dict[str, Path]:
    # one os.walk (directory entries, no stat per file) that stops at case folders:
    # a folder named like a case inside a case folder is not another case
    candidates: list[tuple[Path, str]] = []
    for folder, subfolders, _files in os.walk(root, followlinks=True):
        below = []
        for name in subfolders:
            case = canonical_case(name)
            if case is None:
                below.append(name)
            else:
                candidates.append((Path(folder, name), case))
        subfolders[:] = below
    found: dict[str, Path] = {}
    for folder, case in sorted(candidates):
        if case in found:
            raise InputError(
                f"case {case} appears twice among the {what}: {found[case]} and {folder}"
            )
        found[case] = folder
    return found


def _contour_files(folder: Path) -> list[Path]:
    """The contour files below ``folder``, in path order."""
    found = []
    for parent, _dirs, files in os.walk(folder, followlinks=True):
        parts = tuple(Path(parent).parts)
        found += [(parts, name) for name in files if name.endswith("contour-manual.txt")]
    # sorted as the paths would sort (by parts), before paying for Path objects
    found.sort()
    bases: dict[tuple[str, ...], Path] = {}
    return [bases.setdefault(parts, Path(*parts)) / name for parts, name in found]


def _image_names(folder: Path) -> set[str]:
    """Names of the files directly in ``folder`` (one directory listing per case)."""
    with os.scandir(folder) as entries:
        return {entry.name for entry in entries if entry.is_file()}


def _resolve_image(
    folder: Path, names: set[str], series: int | None, number: int
) -> Path | None:
    if series is not None:
        name = image_file_name(series, number)
        return folder / name if name in names else None
    candidates = [name for name in names
                  if (m := IMAGE_FILE_RE.match(name)) and int(m.group(2)) == number]
    return folder / candidates[0] if len(candidates) == 1 else None


def scan_sunnybrook(
    images_dir: str | os.PathLike[str],
    contours_dir: str | os.PathLike[str],
    series_table: dict[str, int] | str | os.PathLike[str] | None = None,
) -> SunnybrookScan:
    """Match every contour file below ``contours_dir`` to its image below ``images_dir``.

    ``series_table`` overrides/extends the challenge's case→series table (a dict or a
    CSV/JSON file).  Contours whose image is missing are listed in ``problems``.
    """
    images_root, contours_root = Path(images_dir), Path(contours_dir)
    for root, what in ((images_root, "images"), (contours_root, "contours")):
        if not root.is_dir():
            raise InputError(f"{root}: the Sunnybrook {what} folder does not exist")
    table = dict(DEFAULT_SERIES_TABLE)
    if series_table is not None:
        table.update(series_table if isinstance(series_table, dict)
                     else read_series_table(series_table))
    image_cases = _case_folders(images_root, "images")
    contour_cases = _case_folders(contours_root, "contours")
    if not contour_cases:
        raise InputError(
            f"{contours_root}: no Sunnybrook case folders (named like SC-HF-I-01) found"
        )
    problems: list[tuple[Path, str]] = []
    matched: dict[tuple[str, int], ContouredImage] = {}
    for case, contour_folder in sorted(contour_cases.items()):
        image_folder = image_cases.get(case)
        if image_folder is None:
            problems.append((contour_folder, f"no image folder for case {case} under "
                                             f"{images_root}"))
            continue
        series = table.get(case)
        image_names = _image_names(image_folder)
        for contour in _contour_files(contour_folder):
            match = CONTOUR_FILE_RE.match(contour.name)
            if match is None:
                problems.append((contour, "contour file name is not "
                                          "IM-0001-NNNN-{i,o,p1,p2}contour-manual.txt"))
                continue
            number, kind = int(match.group(2)), match.group(3).lower()
            key = (case, number)
            if key not in matched:
                image = _resolve_image(image_folder, image_names, series, number)
                if image is None:
                    expected = (image_file_name(series, number) if series is not None
                                else f"IM-<series>-{number:04d}.dcm (case not in the series "
                                     "table; give a series table file)")
                    problems.append((contour, f"image {expected} not found in {image_folder}"))
                    continue
                matched[key] = ContouredImage(case, number, image)
            matched[key].contours[kind] = contour
    images = [matched[key] for key in sorted(matched)]
    return SunnybrookScan(images=images, problems=problems, series_table=table)


def contour_labels(
    item: ContouredImage, shape: tuple[int, int], classes: str = "endo"
) -> np.ndarray | None:
    """uint8 (H, W) labels for ``item`` (see :data:`CLASS_SETS`); None if a contour is missing.

    ``endo``: 1 inside the i-contour.  ``endo,epi``: 2 inside the o-contour, then 1
    inside the i-contour (so myocardium = epicardium minus cavity).
    """
    if classes not in CLASS_SETS:
        raise InputError(
            f"unknown Sunnybrook classes {classes!r}; expected one of {', '.join(CLASS_SETS)}"
        )
    labels = np.zeros(shape, dtype=np.uint8)
    for kind, value in CLASS_SETS[classes][1]:
        path = item.contours.get(kind)
        if path is None:
            return None
        paint_polygon(labels, read_contour(path), value)
    return labels
