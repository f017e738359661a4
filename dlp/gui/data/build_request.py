"""What the Data tab's build form asks for, as plain data (Qt-free), and how it runs.

The form fills a :class:`BuildRequest`; :func:`run_build` turns it into a
``dlp.data.sources`` source and ``BuildOptions`` and calls the one builder the CLI
(``dlp dataset …``) uses, so the GUI and the command line build identical datasets.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from dlp.errors import InputError
from dlp.progress import CancelToken, ProgressCallback

SOURCE_KINDS = {
    "sunnybrook": "Sunnybrook: DICOM + contours",
    "folder": "Image + mask folders",
    "nifti": "NIfTI image + label volumes",
}
_NAME_RE = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass
class BuildRequest:
    """One dataset build, as the form shows it (percentages, a single square size)."""

    kind: str = "sunnybrook"
    images: str = ""
    labels: str = ""  # contours (Sunnybrook), masks (folder) or label volumes (NIfTI)
    name: str = "sunnybrook"
    val_percent: int = 10
    test_percent: int = 0
    size: int = 256
    size_policy: str = "resize"
    classes: str = "endo"  # Sunnybrook: endo | endo,epi; others: names, background first
    intensity: str = "minmax"
    window: tuple[float, float] = (400.0, 800.0)
    channels: int = 1
    bits: int = 8
    seed: int = 0
    strict: bool = False
    axis: str = "z"

    def validate(self) -> None:
        """Raise InputError naming the first field the user must fix."""
        if self.kind not in SOURCE_KINDS:
            raise InputError(
                f"source kind {self.kind!r}: expected one of {', '.join(SOURCE_KINDS)}")
        if not _NAME_RE.match(self.name):
            raise InputError(
                f"dataset name {self.name!r}: use letters, digits, '_', '.', '-' (no spaces)")
        second = {"sunnybrook": "contours", "folder": "masks", "nifti": "labels"}[self.kind]
        for what, value in (("images", self.images), (second, self.labels)):
            if not value:
                raise InputError(f"{what} folder: none chosen")
            if not Path(value).expanduser().is_dir():
                raise InputError(f"{what} folder {value}: does not exist or is not a folder")
        if self.val_percent + self.test_percent >= 100:
            raise InputError("validation + test split must leave cases for training (< 100 %)")

    def class_names(self) -> list[str] | None:
        names = [n.strip() for n in self.classes.split(",") if n.strip()]
        return names or None

    def make_source(self) -> Any:
        from dlp.data.sources import FolderSource, NiftiSource, SunnybrookSource

        images, labels = Path(self.images).expanduser(), Path(self.labels).expanduser()
        if self.kind == "sunnybrook":
            return SunnybrookSource(images, labels, classes=self.classes)
        if self.kind == "folder":
            return FolderSource(images, labels, classes=self.class_names())
        return NiftiSource(images, labels, axis=self.axis, classes=self.class_names())

    def make_options(self) -> Any:
        from dlp.data.builder import BuildOptions
        from dlp.data.preprocess import Preprocessing

        preprocessing = Preprocessing(
            size=(self.size, self.size), size_policy=self.size_policy,
            intensity=self.intensity,
            window=tuple(self.window) if self.intensity == "window" else None,
            channels=self.channels, bits=self.bits)
        return BuildOptions(preprocessing=preprocessing, val_percent=float(self.val_percent),
                            test_percent=float(self.test_percent), seed=self.seed,
                            strict=self.strict)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["window"] = list(self.window)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> BuildRequest:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "window" in values:
            values["window"] = (float(values["window"][0]), float(values["window"][1]))
        return cls(**values)


def run_build(request: BuildRequest, out_dir: str | Path, *,
              progress: ProgressCallback | None = None,
              cancel: CancelToken | None = None) -> Any:
    """Validate ``request`` and build it into ``out_dir``; the builder's BuildReport."""
    from dlp.data.builder import build_dataset

    request.validate()
    return build_dataset(request.make_source(), out_dir, request.make_options(),
                         progress=progress, cancel=cancel)
