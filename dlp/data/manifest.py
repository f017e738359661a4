"""``manifest.json``: what a dataset folder holds, read by the Train and Deploy modules.

Shape and layout are explicit (``dims`` 2 and ``shape`` [C, H, W] today; a 3-D patch
dataset will say ``dims`` 3 and [C, D, H, W]) so readers need not open the LMDBs.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlp.data.preprocess import Preprocessing
from dlp.errors import InputError
from dlp.fsutil import atomic_write_text

MANIFEST_NAME = "manifest.json"
FORMAT = "dlp-dataset"
VERSION = 1
SPLITS = ("train", "val", "test")


@dataclass
class SplitInfo:
    """One split: record count, the cases in it, and its DBs (relative to the dataset)."""

    count: int
    cases: list[str]
    features: str
    labels: str

    def to_dict(self) -> dict[str, Any]:
        return {"count": self.count, "cases": list(self.cases),
                "features": self.features, "labels": self.labels}


@dataclass
class Manifest:
    shape: list[int]                       # [C, H, W] (dims 2) or [C, D, H, W] (dims 3)
    dtype: str                             # "uint8" or "float32" (Datum data / float_data)
    classes: list[str]                     # names, background first; label value = index
    splits: dict[str, SplitInfo]
    preprocessing: Preprocessing
    class_pixel_frequencies: list[float] = field(default_factory=list)
    class_pixel_counts: list[int] = field(default_factory=list)
    dims: int = 2
    mean_file: str | None = "mean.binaryproto"
    source: dict[str, Any] = field(default_factory=dict)
    seed: int = 0
    created: str = ""
    extra: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None               # where it was loaded from / saved to

    @property
    def root(self) -> Path:
        if self.path is None:
            raise InputError("this manifest has not been saved or loaded; it has no folder")
        return self.path.parent

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def db_path(self, split: str, kind: str = "features") -> Path:
        """Absolute path of ``split``'s ``features`` or ``labels`` LMDB."""
        if split not in self.splits:
            raise InputError(
                f"{self.path}: dataset has no {split!r} split (has {', '.join(self.splits)})"
            )
        info = self.splits[split]
        return self.root / (info.features if kind == "features" else info.labels)

    def mean_path(self) -> Path | None:
        return None if self.mean_file is None else self.root / self.mean_file

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "dims": self.dims,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "classes": list(self.classes),
            "class_pixel_frequencies": list(self.class_pixel_frequencies),
            "class_pixel_counts": list(self.class_pixel_counts),
            "splits": {name: info.to_dict() for name, info in self.splits.items()},
            "preprocessing": self.preprocessing.to_dict(),
            "mean_file": self.mean_file,
            "source": self.source,
            "seed": self.seed,
            "created": self.created,
            **({"extra": self.extra} if self.extra else {}),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], path: Path | None = None) -> Manifest:
        where = path or "<manifest>"
        if data.get("format") != FORMAT:
            raise InputError(f"{where}: not a DLP dataset manifest (format {data.get('format')!r})")
        if int(data.get("version", 0)) > VERSION:
            raise InputError(
                f"{where}: manifest version {data.get('version')} is newer than this DLP "
                f"understands ({VERSION})"
            )
        try:
            splits = {
                name: SplitInfo(int(info["count"]), list(info.get("cases", [])),
                                str(info["features"]), str(info["labels"]))
                for name, info in data["splits"].items()
            }
            return cls(
                shape=[int(n) for n in data["shape"]],
                dtype=str(data["dtype"]),
                classes=[str(c) for c in data["classes"]],
                splits=splits,
                preprocessing=Preprocessing.from_dict(data.get("preprocessing", {})),
                class_pixel_frequencies=[float(f) for f in data.get("class_pixel_frequencies",
                                                                    [])],
                class_pixel_counts=[int(c) for c in data.get("class_pixel_counts", [])],
                dims=int(data.get("dims", 2)),
                mean_file=data.get("mean_file"),
                source=dict(data.get("source", {})),
                seed=int(data.get("seed", 0)),
                created=str(data.get("created", "")),
                extra=dict(data.get("extra", {})),
                path=path,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(f"{where}: malformed manifest field ({exc})") from exc

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Manifest:
        """Read ``path`` (a ``manifest.json`` or the dataset folder holding one)."""
        path = Path(path)
        if path.is_dir():
            path = path / MANIFEST_NAME
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise InputError(f"{path}: cannot read dataset manifest: {exc.strerror}") from exc
        except json.JSONDecodeError as exc:
            raise InputError(f"{path}:{exc.lineno}: manifest is not valid JSON: {exc.msg}") from exc
        if not isinstance(data, dict):
            raise InputError(f"{path}: manifest must be a JSON object")
        return cls.from_dict(data, path=path)

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write atomically to ``path`` (a file, or a folder to hold ``manifest.json``)."""
        path = Path(path)
        if path.is_dir():
            path = path / MANIFEST_NAME
        atomic_write_text(path, self.to_json())
        self.path = path
        return path

    def to_json(self) -> str:
        """The text :meth:`save` writes."""
        return json.dumps(self.to_dict(), indent=2) + "\n"
