"""Ground truth for an input: a label mask with a matching name, or a Sunnybrook contour.

Matching rules, tried in order, inside a ground-truth folder (searched recursively):

1. a mask file whose name is the image's name, optionally followed by ``_mask``,
   ``_label``, ``_labels``, ``_seg``, ``_gt`` (any image/NIfTI format), e.g.
   ``case3.dcm`` ↔ ``case3_mask.png``;
2. for Sunnybrook images ``<case>/IM-SSSS-NNNN.dcm``, the i-contour
   ``<case padded>/…/IM-0001-NNNN-icontour-manual.txt`` (the LV blood pool, class 1).

Mask files hold class indices; a two-level 0/255 mask (how many tools save binary
masks) is read as 0/1.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dlp.data.sunnybrook_layout import CONTOUR_FILE_RE, IMAGE_FILE_RE, canonical_case
from dlp.deploy.inputs import IMAGE_SUFFIXES, NIFTI_SUFFIXES, InputItem, _stem
from dlp.errors import InputError

#: Label of pixels without ground truth (slices of a series nobody contoured); Caffe's
#: customary ignore_label, left out of every metric.
IGNORE = 255
MASK_TAGS = ("", "_mask", "_masks", "_label", "_labels", "_seg", "_gt", "-mask", "-label")


class GroundTruthError(InputError):
    """A ground-truth file cannot be used for an image; the message says why."""


@dataclass
class GroundTruthIndex:
    """Ground-truth files of a folder, indexed for lookup by image."""

    root: Path
    masks: dict[str, Path]
    contours: dict[tuple[str, int], Path]

    @classmethod
    def scan(cls, root: str | os.PathLike[str]) -> GroundTruthIndex:
        root = Path(root)
        if not root.is_dir():
            raise GroundTruthError(f"{root}: ground-truth folder not found")
        masks: dict[str, Path] = {}
        contours: dict[tuple[str, int], Path] = {}
        for path in sorted(root.rglob("*")):
            if not path.is_file() or path.name.startswith("."):
                continue
            match = CONTOUR_FILE_RE.match(path.name)
            if match:
                if match.group(3).lower() != "i":
                    continue
                case = _case_of(path)
                contours[(case or "", int(match.group(2)))] = path
                continue
            lower = path.name.lower()
            if lower.endswith(IMAGE_SUFFIXES + NIFTI_SUFFIXES) or lower.endswith(".dcm"):
                masks.setdefault(_stem(path).lower(), path)
        return cls(root, masks, contours)

    def find(self, item: InputItem) -> Path | None:
        """The ground-truth file for ``item``, or None."""
        stem = _stem(item.path).lower()
        for tag in MASK_TAGS:
            hit = self.masks.get(stem + tag)
            if hit is not None and hit.resolve() != item.path.resolve():
                return hit
        match = IMAGE_FILE_RE.match(item.path.name)
        if match:
            number = int(match.group(2))
            case = canonical_case(item.path.parent.name) or ""
            return self.contours.get((case, number)) or self.contours.get(("", number))
        return None

    def truth_for_slices(self, volume: Any, shape: tuple[int, ...],
                         num_classes: int) -> np.ndarray | None:
        """``(S, H, W)`` truth of a series from its slices' own files; None if none has any.

        Slices without ground truth are :data:`IGNORE`.
        """
        files = (getattr(volume, "meta", {}) or {}).get("files") or []
        if len(files) != shape[0]:
            return None
        truth = np.full(shape, IGNORE, dtype=np.uint8)
        found = False
        for s, file in enumerate(files):
            path = Path(file)
            hit = self.find(InputItem(path, path.stem))
            if hit is not None:
                truth[s] = load_ground_truth(hit, (1, *shape[1:]), num_classes)[0]
                found = True
        return truth if found else None

    def __len__(self) -> int:
        return len(self.masks) + len(self.contours)


def _case_of(contour_path: Path) -> str | None:
    for parent in contour_path.parents:
        case = canonical_case(parent.name)
        if case is not None:
            return case
    return None


def contour_mask(path: str | os.PathLike[str], shape: tuple[int, int],
                 num_classes: int = 2) -> np.ndarray:
    """The ``(H, W)`` uint8 labels of a Sunnybrook i-contour on an image of ``shape``.

    Uses the dataset builder's reader and rasteriser so evaluation scores the same
    masks the model was trained on.  With three or more classes and an o-contour
    beside the i-contour, the myocardium is class 2 (the importer's ``endo,epi`` set).
    """
    from dlp.data.rasterize import polygon_mask
    from dlp.data.sunnybrook import read_contour

    path = Path(path)
    labels = np.zeros(shape, dtype=np.uint8)
    outer = path.with_name(re.sub(r"-icontour-", "-ocontour-", path.name, flags=re.IGNORECASE))
    if num_classes >= 3 and outer != path and outer.is_file():
        labels[polygon_mask(read_contour(outer), shape)] = 2
    labels[polygon_mask(read_contour(path), shape)] = 1
    return labels


def load_ground_truth(
    path: str | os.PathLike[str], shape: tuple[int, ...], num_classes: int
) -> np.ndarray:
    """A ground-truth label array of ``shape`` (``(S, H, W)``) read from ``path``."""
    path = Path(path)
    if CONTOUR_FILE_RE.match(path.name) or path.suffix.lower() == ".txt":
        mask = contour_mask(path, tuple(shape[-2:]), num_classes)[None]
    else:
        from dlp.data.readers import read_image

        volume = read_image(path)
        array = np.asarray(volume.array)
        if array.ndim == 4:  # an RGB(A) mask: use its first channel
            array = array[..., 0]
        mask = np.rint(array).astype(np.int64)
        values = np.unique(mask)
        if set(values.tolist()) <= {0, 255} and num_classes == 2:
            mask = (mask == 255).astype(np.int64)
        elif values.max(initial=0) >= num_classes and not set(values.tolist()) - {255} <= set(
            range(num_classes)
        ):
            raise GroundTruthError(
                f"{path}: mask values {values.tolist()[:8]} are not class indices "
                f"0..{num_classes - 1}"
            )
    if mask.shape != tuple(shape):
        if mask.size == int(np.prod(shape)) and mask.shape[-2:] == tuple(shape[-2:]):
            mask = mask.reshape(shape)
        else:
            raise GroundTruthError(
                f"{path}: ground truth is {'x'.join(map(str, mask.shape))} but the image is "
                f"{'x'.join(map(str, shape))}"
            )
    return mask.astype(np.uint8)
