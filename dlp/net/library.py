"""The Net Library: reference architectures shipped in ``netlib/`` and the user's own.

Each entry is a folder ``<name>/`` holding ``train_val.prototxt``, ``solver.prototxt``
and ``meta.json``::

    {"name": "unet2d", "title": "U-Net 2-D (small)", "description": "...",
     "task": "classification" | "segmentation", "input": [C, H, W], "classes": N,
     "source": "citation", "dataset_sources": {"data": "features", "label": "labels"}}

``dataset_sources`` maps the top blob of each Data layer to the database folder it
reads inside a dataset split (``train_db/features``); an empty string means the split
folder itself is the database (classification datasets).  Data layer sources in the
prototxt are relative to the dataset folder, like DIGITS writes them.

The built-in ``netlib/`` is found beside the ``dlp`` package in a source checkout and
under ``sys._MEIPASS`` in a PyInstaller bundle.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlp.errors import InputError
from dlp.fsutil import atomic_directory, atomic_write_text
from dlp.net.prototxt import net_to_text, read_net, read_solver, solver_to_text
from dlp.proto import caffe_pb2

NET_FILE = "train_val.prototxt"
SOLVER_FILE = "solver.prototxt"
META_FILE = "meta.json"
TASKS = ("classification", "segmentation")
NETLIB_ENV = "DLP_NETLIB"


class LibraryError(InputError):
    """A library entry is missing, or its files or metadata are malformed."""


@dataclass(frozen=True)
class LibraryEntry:
    """One architecture of the library (the folder ``path``)."""

    name: str
    title: str
    description: str
    path: Path
    meta: dict[str, Any] = field(compare=False)

    @property
    def net_path(self) -> Path:
        return self.path / NET_FILE

    @property
    def solver_path(self) -> Path:
        return self.path / SOLVER_FILE

    @property
    def task(self) -> str:
        return str(self.meta["task"])

    @property
    def input_shape(self) -> tuple[int, int, int]:
        """``(C, H, W)`` of one input sample."""
        channels, height, width = self.meta["input"]
        return int(channels), int(height), int(width)

    @property
    def classes(self) -> int:
        return int(self.meta["classes"])

    @property
    def dataset_sources(self) -> dict[str, str]:
        return dict(self.meta.get("dataset_sources", {}))

    def load(self) -> tuple[caffe_pb2.NetParameter, caffe_pb2.SolverParameter]:
        """The entry's train/val net and solver (upgraded as on any read)."""
        return read_net(self.net_path), read_solver(self.solver_path)


def builtin_netlib_dir() -> Path:
    """Where the shipped ``netlib/`` lives (``$DLP_NETLIB`` overrides)."""
    override = os.environ.get(NETLIB_ENV)
    if override:
        return Path(override)
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle is not None:
        return Path(bundle) / "netlib"
    return Path(__file__).resolve().parents[2] / "netlib"


def validate_meta(meta: Any, source: str | os.PathLike[str]) -> dict[str, Any]:
    """Check a ``meta.json`` document; return it or raise :class:`LibraryError`."""
    where = str(source)
    if not isinstance(meta, dict):
        raise LibraryError(f"{where}: expected a JSON object, got {type(meta).__name__}")
    for key in ("name", "title", "description", "source"):
        if not isinstance(meta.get(key), str) or not meta[key].strip():
            raise LibraryError(f'{where}: field "{key}" must be a non-empty string')
    if meta.get("task") not in TASKS:
        raise LibraryError(f'{where}: field "task" must be one of {", ".join(TASKS)}; '
                           f"got {meta.get('task')!r}")
    shape = meta.get("input")
    if (not isinstance(shape, list) or len(shape) != 3
            or not all(isinstance(d, int) and not isinstance(d, bool) and d > 0 for d in shape)):
        raise LibraryError(f'{where}: field "input" must be [C, H, W] of positive integers; '
                           f"got {shape!r}")
    classes = meta.get("classes")
    if not isinstance(classes, int) or isinstance(classes, bool) or classes < 1:
        raise LibraryError(f'{where}: field "classes" must be a positive integer; got {classes!r}')
    sources = meta.get("dataset_sources", {})
    if not isinstance(sources, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in sources.items()):
        raise LibraryError(f'{where}: field "dataset_sources" must map blob names to folder '
                           "names (strings)")
    if meta["task"] == "segmentation" and not sources:
        raise LibraryError(f'{where}: a segmentation entry needs "dataset_sources" '
                           '(e.g. {"data": "features", "label": "labels"})')
    return meta


def read_entry(folder: str | os.PathLike[str]) -> LibraryEntry:
    """The entry stored in ``folder`` (its meta checked; the prototxt read on ``load``)."""
    path = Path(folder)
    meta_path = path / META_FILE
    try:
        meta = json.loads(meta_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise LibraryError(f"{path}: not a library entry (no {META_FILE})") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise LibraryError(f"{meta_path}: cannot read ({exc})") from None
    except json.JSONDecodeError as exc:
        raise LibraryError(f"{meta_path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}"
                           ) from None
    validate_meta(meta, meta_path)
    if meta["name"] != path.name:
        raise LibraryError(f'{meta_path}: "name" is {meta["name"]!r} but the folder is '
                           f"{path.name!r}; they must match")
    for required in (NET_FILE, SOLVER_FILE):
        if not (path / required).is_file():
            raise LibraryError(f"{path}: missing {required}")
    return LibraryEntry(meta["name"], meta["title"], meta["description"], path, meta)


def list_entries(paths: Iterable[str | os.PathLike[str]] | None = None, *,
                 errors: list[LibraryError] | None = None) -> list[LibraryEntry]:
    """All entries under ``paths`` (default: the built-in netlib), sorted by title.

    A name found in several paths is taken from the first.  A malformed entry raises
    :class:`LibraryError`, unless ``errors`` is given: then it is skipped and its error
    appended there (so one broken user entry does not hide the rest).
    """
    roots = [builtin_netlib_dir()] if paths is None else [Path(p) for p in paths]
    found: dict[str, LibraryEntry] = {}
    for root in roots:
        if not root.is_dir():
            continue
        for folder in sorted(root.iterdir()):
            if not folder.is_dir() or folder.name.startswith("."):
                continue
            try:
                entry = read_entry(folder)
            except LibraryError as exc:
                if errors is None:
                    raise
                errors.append(exc)
                continue
            found.setdefault(entry.name, entry)
    return sorted(found.values(), key=lambda e: (e.title.lower(), e.name))


def find_entry(name: str, paths: Iterable[str | os.PathLike[str]] | None = None
               ) -> LibraryEntry:
    """The entry called ``name``; an unknown name lists the closest known ones."""
    entries = {entry.name: entry for entry in list_entries(paths, errors=[])}
    if name in entries:
        return entries[name]
    close = difflib.get_close_matches(name, list(entries), n=3, cutoff=0.5)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    raise LibraryError(f'no net library entry "{name}"{hint} '
                       f"(available: {', '.join(sorted(entries)) or 'none'})")


def load_entry(name: str, paths: Iterable[str | os.PathLike[str]] | None = None
               ) -> tuple[caffe_pb2.NetParameter, caffe_pb2.SolverParameter]:
    """The train/val net and solver of the entry called ``name``."""
    return find_entry(name, paths).load()


def save_entry(root: str | os.PathLike[str], net: caffe_pb2.NetParameter,
               solver: caffe_pb2.SolverParameter, meta: dict[str, Any]) -> LibraryEntry:
    """Store a net + solver as entry ``meta["name"]`` under ``root`` (atomically, replacing)."""
    validate_meta(meta, f"meta of {meta.get('name', '?') if isinstance(meta, dict) else '?'}")
    name = meta["name"]
    if not name or Path(name).name != name or name.startswith("."):
        raise LibraryError(f"library entry name {name!r} must be a plain folder name")
    folder = Path(root) / name
    with atomic_directory(folder) as tmp:
        atomic_write_text(tmp / NET_FILE, net_to_text(net))
        atomic_write_text(tmp / SOLVER_FILE, solver_to_text(solver))
        atomic_write_text(tmp / META_FILE, json.dumps(meta, indent=2) + "\n")
    return read_entry(folder)
