"""Where dataset slices come from: Sunnybrook, image + mask folders, NIfTI volume pairs.

A source lists :class:`SourceItem` s (one file or file pair, tagged with the case /
patient it belongs to, which is the unit of the train/val split) and loads each into
``(name, image (H, W[, 3]), labels (H, W) uint8)`` slices.  Listing problems (a
contour without an image, an image without a mask) are returned, not raised, so the
builder can report them all or stop at the first (``--strict``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from dlp.data.readers import ImageReadError, read_image, read_images
from dlp.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".dcm", ".nii", ".nii.gz")


@dataclass(frozen=True)
class Problem:
    """A file the build could not use, and why."""

    path: str
    reason: str

    def __str__(self) -> str:
        return f"{self.path}: {self.reason}"


@dataclass
class SourceItem:
    case: str
    name: str
    payload: Any = None


@dataclass
class SourceScan:
    items: list[SourceItem]
    problems: list[Problem] = field(default_factory=list)


Slice = tuple[str, np.ndarray, np.ndarray]


class SkipItem(Exception):
    """The item is fine but has nothing for this dataset (e.g. no o-contour for endo,epi)."""


class DatasetSource(Protocol):
    kind: str
    classes: list[str]

    def scan(self) -> SourceScan: ...

    def load(self, item: SourceItem) -> list[Slice]: ...

    def describe(self) -> dict[str, Any]: ...


# --------------------------------------------------------------------------- Sunnybrook

class SunnybrookSource:
    """Contoured short-axis images of the Sunnybrook layout; split by patient case."""

    kind = "sunnybrook"

    def __init__(
        self,
        images: str | os.PathLike[str],
        contours: str | os.PathLike[str],
        classes: str = "endo",
        series_table: str | os.PathLike[str] | dict[str, int] | None = None,
    ) -> None:
        from dlp.data.sunnybrook import CLASS_SETS

        if classes not in CLASS_SETS:
            raise InputError(
                f"--classes must be one of {' | '.join(CLASS_SETS)}; got {classes!r}"
            )
        self.images, self.contours = Path(images), Path(contours)
        self.class_set = classes
        self.classes = list(CLASS_SETS[classes][0])
        self.series_table = series_table

    def scan(self) -> SourceScan:
        from dlp.data.sunnybrook import scan_sunnybrook

        found = scan_sunnybrook(self.images, self.contours, self.series_table)
        items = [SourceItem(item.case, item.name, item) for item in found.images]
        return SourceScan(items, [Problem(str(p), r) for p, r in found.problems])

    def load(self, item: SourceItem) -> list[Slice]:
        from dlp.data.readers.dicom import read_dicom_slice
        from dlp.data.sunnybrook import CLASS_SETS, contour_labels

        # skipped before decoding: with endo,epi half the contoured frames lack o-contours
        if any(kind not in item.payload.contours for kind, _ in CLASS_SETS[self.class_set][1]):
            wanted = "o- and i-contours" if "epi" in self.class_set else "an i-contour"
            raise SkipItem(f"classes {self.class_set} need {wanted}")
        image = read_dicom_slice(item.payload.image_path)
        labels = contour_labels(item.payload, image.shape[:2], self.class_set)
        assert labels is not None, "every contour the classes need is there"
        return [(item.name, image, labels)]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "images": str(self.images), "contours": str(self.contours),
                "classes": self.class_set,
                "series_table": (None if self.series_table is None or isinstance(
                    self.series_table, dict) else str(self.series_table))}


# --------------------------------------------------------------------------- folders

def _stem(path: Path) -> str:
    name = path.name
    for suffix in (".nii.gz", *IMAGE_SUFFIXES):
        if name.lower().endswith(suffix):
            return name[: -len(suffix)]
    return path.stem


def _image_files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise InputError(f"{folder}: folder does not exist")
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".")
        and any(p.name.lower().endswith(s) for s in IMAGE_SUFFIXES)
    )


def _match_pairs(
    images_dir: Path, labels_dir: Path, what: str
) -> tuple[list[tuple[Path, Path]], list[Problem]]:
    labels = {}
    for path in _image_files(labels_dir):
        labels.setdefault(_stem(path), path)
    pairs, problems = [], []
    for image in _image_files(images_dir):
        stem = _stem(image)
        label = next((labels[k] for k in (stem, f"{stem}_mask", f"{stem}_label",
                                          f"{stem}_seg") if k in labels), None)
        if label is None:
            problems.append(Problem(str(image), f"no {what} named {stem}.* in {labels_dir}"))
        else:
            pairs.append((image, label))
    if not pairs and not problems:
        raise InputError(f"{images_dir}: no images (PNG, JPEG, TIFF, DICOM, NIfTI) found")
    return pairs, problems


def _case_of(name: str, pattern: re.Pattern[str] | None) -> str:
    if pattern is None:
        return name
    match = pattern.search(name)
    if match is None:
        return name
    return match.group(1) if match.groups() else match.group(0)


def _as_labels(mask: np.ndarray, mask_path: Path) -> np.ndarray:
    """(S, H, W[, 3]) → uint8 class indices; 0/255 binary masks become 0/1; gray RGB allowed."""
    if mask.ndim == 4:
        if not (np.array_equal(mask[..., 0], mask[..., 1])
                and np.array_equal(mask[..., 0], mask[..., 2])):
            raise ImageReadError(mask_path, "colour mask: expected class indices in a gray or "
                                            "palette image")
        mask = mask[..., 0]
    values = np.unique(mask)
    if values.size and (values.min() < 0 or values.max() > 255
                        or not np.all(values == np.round(values))):
        raise ImageReadError(mask_path, f"mask values must be integers 0..255; got "
                                        f"{values.min()}..{values.max()}")
    if values.size <= 2 and values.max(initial=0) == 255:
        mask = mask // 255
    return mask.astype(np.uint8)


class FolderSource:
    """An images folder and a masks folder matched by file name (``a.png`` ↔ ``a.png``).

    Each pair is its own case unless ``case_pattern`` (a regex; group 1 if any) pulls a
    patient id out of the file name, e.g. ``^(patient\\d+)_``.
    """

    kind = "folder"

    def __init__(
        self,
        images: str | os.PathLike[str],
        masks: str | os.PathLike[str],
        classes: list[str] | None = None,
        case_pattern: str | None = None,
    ) -> None:
        self.images, self.masks = Path(images), Path(masks)
        self.classes = list(classes) if classes else []
        try:
            self.case_pattern = re.compile(case_pattern) if case_pattern else None
        except re.error as exc:
            raise InputError(f"--case-pattern {case_pattern!r} is not a regex: {exc}") from exc

    def scan(self) -> SourceScan:
        pairs, problems = _match_pairs(self.images, self.masks, "mask")
        items = [SourceItem(_case_of(_stem(img), self.case_pattern), img.name, (img, mask))
                 for img, mask in pairs]
        return SourceScan(items, problems)

    def load(self, item: SourceItem) -> list[Slice]:
        image_path, mask_path = item.payload
        image, mask = read_image(image_path), read_image(mask_path)
        if image.array.shape[:3] != mask.array.shape[:3]:
            raise ImageReadError(
                image_path, f"image is {tuple(image.array.shape[1:3])} (H, W) x "
                f"{image.num_slices} but its mask {mask_path} is "
                f"{tuple(mask.array.shape[1:3])} x {mask.num_slices}"
            )
        labels = _as_labels(mask.array, mask_path)
        if image.num_slices == 1:
            return [(item.name, image.array[0], labels[0])]
        return [(f"{item.name}[{i}]", image.array[i], labels[i]) for i in range(image.num_slices)]

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "images": str(self.images), "masks": str(self.masks),
                "case_pattern": None if self.case_pattern is None else self.case_pattern.pattern}


# --------------------------------------------------------------------------- NIfTI

_AXES = {"z": (0, 1, 2), "y": (1, 0, 2), "x": (2, 0, 1)}


class NiftiSource:
    """Image and label volumes matched by name, sliced into 2-D along ``axis``.

    ``axis`` names the voxel axis the slices are perpendicular to: ``z`` (the NIfTI
    k axis, usual axial/short-axis slices), ``y`` (j) or ``x`` (i).  A 4-D image pairs
    frame by frame with a 4-D label of as many frames.
    """

    kind = "nifti"

    def __init__(
        self,
        images: str | os.PathLike[str],
        labels: str | os.PathLike[str],
        axis: str = "z",
        classes: list[str] | None = None,
    ) -> None:
        if axis not in _AXES:
            raise InputError(f"--axis must be x, y or z; got {axis!r}")
        self.images, self.labels = Path(images), Path(labels)
        self.axis = axis
        self.classes = list(classes) if classes else []

    def scan(self) -> SourceScan:
        pairs, problems = _match_pairs(self.images, self.labels, "label volume")
        return SourceScan([SourceItem(_stem(img), img.name, (img, lab)) for img, lab in pairs],
                          problems)

    def load(self, item: SourceItem) -> list[Slice]:
        image_path, label_path = item.payload
        images, labels = read_images(image_path), read_images(label_path)
        if len(labels) == 1 and len(images) > 1:
            raise ImageReadError(image_path, f"has {len(images)} time frames but its labels "
                                             f"{label_path} have one")
        if len(images) != len(labels):
            raise ImageReadError(image_path, f"{len(images)} frames vs {len(labels)} in "
                                             f"{label_path}")
        slices: list[Slice] = []
        for frame, (image, label) in enumerate(zip(images, labels, strict=True)):
            if image.array.shape[:3] != label.array.shape[:3]:
                raise ImageReadError(
                    image_path, f"volume shape {image.array.shape[:3]} (S, H, W) differs from "
                    f"its labels {label_path} {label.array.shape[:3]}"
                )
            order = _AXES[self.axis]
            img = np.transpose(image.array, (*order, *range(3, image.array.ndim)))
            lab = _as_labels(np.transpose(label.array, order), label_path)
            prefix = item.name if len(images) == 1 else f"{item.name}[t={frame}]"
            slices += [(f"{prefix}[{self.axis}={i}]", img[i], lab[i]) for i in range(len(img))]
        return slices

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "images": str(self.images), "labels": str(self.labels),
                "axis": self.axis}
