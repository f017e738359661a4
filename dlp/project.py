"""The DLP project: one working directory shared by the Data, Net, Train and Deploy tabs.

Qt-free (the GUI wraps it in :class:`dlp.gui.qt_project.QtProject`) and torch-free.
The layout on disk (see docs/ARCHITECTURE.md)::

    <project>/
      dlp-project.json     settings + per-module state, written atomically
      nets/train_val.prototxt, nets/solver.prototxt, nets/library/
      datasets/<name>/manifest.json ...
      runs/<run-name>/run.json ...
      deploy/config.json, deploy/label.txt
      results/
      .autosave/           unsaved module state, present only while something is unsaved

Observers subscribe with ``project.events.connect(callback)``; the callback receives a
:class:`ProjectEvent`.  The list of recent projects lives in the user's configuration
directory (``$XDG_CONFIG_HOME/dlp`` or ``~/.config/dlp``; ``DLP_CONFIG_DIR`` overrides),
so a fresh start can reopen the last project without Qt.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import time
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from dlp.errors import InputError
from dlp.fsutil import atomic_write_text
from dlp.signal import Signal

PROJECT_FILE = "dlp-project.json"
FORMAT_VERSION = 1
SUBDIRS = ("nets", "nets/library", "datasets", "runs", "deploy", "results")
AUTOSAVE_DIR = ".autosave"
_SESSION_FILE = "session.json"
RECENT_LIMIT = 10

ENGINES = ("builtin", "caffe")
_DEVICE_RE = re.compile(r"^(cpu|cuda(:\d+)?)$")


class ProjectError(InputError):
    """The project directory or its project file is missing or malformed."""


# --------------------------------------------------------------------------- settings


@dataclass
class ProjectSettings:
    """Per-project settings (Tools → Settings).

    ``engine`` is ``"builtin"`` (DLP's PyTorch engine) or ``"caffe"`` (an external
    BVLC Caffe whose ``tools`` folder, holding the ``caffe`` binary, is
    ``caffe_tools``).  ``python_layers`` allows ``Python`` layers, i.e. running code
    named by a prototxt; it is off by default.
    """

    engine: str = "builtin"
    caffe_tools: str = ""
    device: str = "cpu"
    python_layers: bool = False

    def validate(self, source: str = "settings", check_tools: bool = True) -> None:
        """Raise :class:`ProjectError` naming the first invalid field.

        ``check_tools=False`` skips checking the external Caffe folder on disk: a Caffe
        that was uninstalled must not make the project unopenable (it is checked when
        chosen and again when a run starts).
        """
        if self.engine not in ENGINES:
            raise ProjectError(
                f"{source}: field 'engine' is {self.engine!r}; expected one of {', '.join(ENGINES)}"
            )
        if not isinstance(self.caffe_tools, str):
            raise ProjectError(f"{source}: field 'caffe_tools' must be a path string")
        if not isinstance(self.device, str) or not _DEVICE_RE.match(self.device):
            raise ProjectError(
                f"{source}: field 'device' is {self.device!r}; expected 'cpu' or 'cuda:N'"
            )
        if not isinstance(self.python_layers, bool):
            raise ProjectError(f"{source}: field 'python_layers' must be true or false")
        if self.engine == "caffe" and check_tools:
            problem = caffe_tools_problem(self.caffe_tools)
            if problem:
                raise ProjectError(f"{source}: field 'caffe_tools': {problem}")

    @classmethod
    def from_dict(cls, data: Any, source: str) -> ProjectSettings:
        if not isinstance(data, dict):
            raise ProjectError(f"{source}: 'settings' must be an object")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ProjectError(
                f"{source}: unknown settings field {unknown[0]!r}; expected one of "
                f"{', '.join(sorted(known))}"
            )
        settings = cls(**data)
        settings.validate(source, check_tools=False)
        return settings


def caffe_tools_problem(path: str | os.PathLike[str]) -> str | None:
    """Why ``path`` is not a usable Caffe ``tools`` folder, or None when it is.

    A usable folder contains an executable ``caffe`` (``caffe.bin`` and ``caffe.exe``
    are accepted: the names a source build and a Windows build produce).
    """
    if not str(path).strip():
        return "no folder given; choose the folder that contains the 'caffe' program"
    folder = Path(path).expanduser()
    if not folder.exists():
        return f"{folder} does not exist"
    if not folder.is_dir():
        return f"{folder} is not a folder"
    for name in ("caffe", "caffe.bin", "caffe.exe"):
        candidate = folder / name
        if candidate.is_file():
            if os.access(candidate, os.X_OK):
                return None
            return f"{candidate} exists but is not executable (chmod +x it)"
    return f"{folder} contains no 'caffe' program (expected {folder / 'caffe'})"


def caffe_binary(tools: str | os.PathLike[str]) -> Path:
    """The ``caffe`` executable inside a valid tools folder (see :func:`caffe_tools_problem`)."""
    problem = caffe_tools_problem(tools)
    if problem:
        raise ProjectError(f"external Caffe: {problem}")
    folder = Path(tools).expanduser()
    for name in ("caffe", "caffe.bin", "caffe.exe"):
        if (folder / name).is_file():
            return folder / name
    raise ProjectError(f"external Caffe: {folder} contains no 'caffe' program")


# --------------------------------------------------------------------------- events


@dataclass(frozen=True)
class ProjectEvent:
    """Something changed: ``kind`` is one of :data:`EVENT_KINDS`; ``data`` gives details."""

    kind: str
    data: dict[str, Any] = field(default_factory=dict)


EVENT_KINDS = (
    "project_changed",  # settings or state saved, project reloaded
    "settings_changed",
    "net_changed",  # nets/train_val.prototxt or solver replaced on disk
    "datasets_changed",
    "runs_changed",
    "deploy_requested",  # data: deploy_net, weights
)


class EventEmitter(Signal):
    """The project's observers: ``connect(callback)``, ``emit(kind, **data)``.

    Callbacks receive one :class:`ProjectEvent`; ``kind`` must be one of
    :data:`EVENT_KINDS` so a typo fails loudly instead of reaching no one.
    """

    def emit(self, kind: str, **data: Any) -> None:  # type: ignore[override]
        if kind not in EVENT_KINDS:
            raise ValueError(f"unknown project event {kind!r}; expected one of {EVENT_KINDS}")
        super().emit(ProjectEvent(kind, data))

    def blocker(self) -> contextlib.AbstractContextManager[None]:
        """Silence events, e.g. while a widget writes a value it is displaying (no echo)."""
        return self.blocked()


# --------------------------------------------------------------------------- entries


@dataclass(frozen=True)
class DatasetEntry:
    """A dataset folder under ``datasets/``; ``manifest`` is None when ``error`` says why."""

    name: str
    path: Path
    manifest: Any
    error: str | None = None


@dataclass(frozen=True)
class RunEntry:
    """A training run folder under ``runs/`` with its ``run.json`` content (may be empty)."""

    name: str
    path: Path
    info: dict[str, Any]

    @property
    def log_path(self) -> Path:
        return self.path / "train.log"

    @property
    def snapshot_dir(self) -> Path:
        return self.path / "snapshots"


# --------------------------------------------------------------------------- project


class Project:
    """A DLP working directory.  Use :meth:`open`, :meth:`create` or :meth:`open_or_create`."""

    def __init__(self, root: Path, settings: ProjectSettings, state: dict[str, Any],
                 name: str, created: float) -> None:
        self.root = root
        self.settings = settings
        self.name = name
        self.created = created
        self._state = state
        self.events = EventEmitter()

    # ---- construction

    @classmethod
    def create(cls, root: str | os.PathLike[str], name: str | None = None) -> Project:
        """Make ``root`` a new project (the folder may exist but must hold no project)."""
        root = Path(root).expanduser().resolve()
        if (root / PROJECT_FILE).exists():
            raise ProjectError(f"{root}: already a DLP project ({PROJECT_FILE} exists)")
        if root.exists() and not root.is_dir():
            raise ProjectError(f"{root}: is a file; a project is a folder")
        try:
            root.mkdir(parents=True, exist_ok=True)
            for sub in SUBDIRS:
                (root / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ProjectError(f"{root}: cannot create the project folder: {exc.strerror}") from exc
        project = cls(root, ProjectSettings(), {}, name or root.name, time.time())
        project.save()
        return project

    @classmethod
    def open(cls, root: str | os.PathLike[str]) -> Project:
        """Open an existing project; a missing or malformed project file is a ProjectError."""
        root = Path(root).expanduser().resolve()
        path = root / PROJECT_FILE
        if not root.is_dir():
            raise ProjectError(f"{root}: no such folder")
        if not path.is_file():
            raise ProjectError(f"{root}: not a DLP project (no {PROJECT_FILE})")
        try:
            text = path.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise ProjectError(f"{path}: cannot read: {exc}") from exc
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ProjectError(f"{path}:{exc.lineno}:{exc.colno}: invalid JSON: {exc.msg}") from exc
        if not isinstance(data, dict):
            raise ProjectError(f"{path}: expected a JSON object at the top level")
        version = data.get("format_version", FORMAT_VERSION)
        if not isinstance(version, int) or version > FORMAT_VERSION:
            raise ProjectError(
                f"{path}: field 'format_version' is {version!r}; this DLP reads up to "
                f"{FORMAT_VERSION} (the project was written by a newer DLP)"
            )
        settings = ProjectSettings.from_dict(data.get("settings", {}), str(path))
        state = data.get("state", {})
        if not isinstance(state, dict):
            raise ProjectError(f"{path}: field 'state' must be an object")
        name = data.get("name") or root.name
        created = data.get("created", 0.0)
        for sub in SUBDIRS:
            (root / sub).mkdir(parents=True, exist_ok=True)
        return cls(root, settings, state, str(name), float(created))

    @classmethod
    def open_or_create(cls, root: str | os.PathLike[str]) -> Project:
        """Open ``root`` if it is a project, else make it one ("Set directory…")."""
        if (Path(root).expanduser() / PROJECT_FILE).is_file():
            return cls.open(root)
        return cls.create(root)

    @staticmethod
    def is_project(root: str | os.PathLike[str]) -> bool:
        return (Path(root).expanduser() / PROJECT_FILE).is_file()

    # ---- persistence

    @property
    def project_file(self) -> Path:
        return self.root / PROJECT_FILE

    def to_dict(self) -> dict[str, Any]:
        return {
            "format_version": FORMAT_VERSION,
            "name": self.name,
            "created": self.created,
            "settings": asdict(self.settings),
            "state": self._state,
        }

    def save(self) -> None:
        """Write ``dlp-project.json`` atomically."""
        self.settings.validate(str(self.project_file), check_tools=False)
        atomic_write_text(self.project_file, json.dumps(self.to_dict(), indent=2) + "\n")

    def update_settings(self, **changes: Any) -> None:
        """Change settings fields, validate, save, and tell observers."""
        candidate = ProjectSettings(**{**asdict(self.settings), **changes})
        candidate.validate()
        self.settings = candidate
        self.save()
        self.events.emit("settings_changed", settings=asdict(candidate))

    # ---- module state (small JSON-able values: last tab, splitter sizes, form values)

    def state(self, module: str) -> dict[str, Any]:
        """A copy of ``module``'s saved state (empty when there is none)."""
        value = self._state.get(module, {})
        return json.loads(json.dumps(value)) if isinstance(value, dict) else {}

    def set_state(self, module: str, value: dict[str, Any], save: bool = True) -> None:
        try:
            json.dumps(value)
        except TypeError as exc:
            raise ProjectError(f"state of {module!r} is not JSON-serialisable: {exc}") from exc
        self._state[module] = value
        if save:
            self.save()

    # ---- well-known paths

    @property
    def nets_dir(self) -> Path:
        return self.root / "nets"

    @property
    def net_path(self) -> Path:
        return self.root / "nets" / "train_val.prototxt"

    @property
    def layout_path(self) -> Path:
        return self.root / "nets" / "train_val.layout.json"

    @property
    def solver_path(self) -> Path:
        return self.root / "nets" / "solver.prototxt"

    @property
    def library_dir(self) -> Path:
        return self.root / "nets" / "library"

    @property
    def datasets_dir(self) -> Path:
        return self.root / "datasets"

    @property
    def runs_dir(self) -> Path:
        return self.root / "runs"

    @property
    def deploy_dir(self) -> Path:
        return self.root / "deploy"

    @property
    def results_dir(self) -> Path:
        return self.root / "results"

    @property
    def autosave_dir(self) -> Path:
        return self.root / AUTOSAVE_DIR

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the project root when inside it (for prototxt sources)."""
        path = Path(path)
        try:
            return path.resolve().relative_to(self.root).as_posix()
        except ValueError:
            return str(path)

    # ---- datasets and runs

    def dataset_path(self, name: str) -> Path:
        return self.datasets_dir / name

    def datasets(self) -> list[DatasetEntry]:
        """Datasets under ``datasets/``, by name; a broken manifest is reported, not raised."""
        entries: list[DatasetEntry] = []
        if not self.datasets_dir.is_dir():
            return entries
        for folder in sorted(p for p in self.datasets_dir.iterdir() if p.is_dir()):
            if folder.name.startswith("."):
                continue  # half-built datasets (atomic_directory temp folders)
            manifest_path = folder / "manifest.json"
            if not manifest_path.is_file():
                entries.append(DatasetEntry(folder.name, folder, None, "no manifest.json"))
                continue
            try:
                # torch-free, but imported late: opening a project needs no numpy/lmdb.
                from dlp.data.manifest import Manifest

                manifest = Manifest.load(manifest_path)
            except Exception as exc:  # any reader failure is shown beside the dataset
                entries.append(DatasetEntry(folder.name, folder, None, str(exc)))
                continue
            entries.append(DatasetEntry(folder.name, folder, manifest))
        return entries

    def runs(self) -> list[RunEntry]:
        """Run folders under ``runs/``, oldest first."""
        entries = []
        if not self.runs_dir.is_dir():
            return entries
        for folder in sorted(p for p in self.runs_dir.iterdir() if p.is_dir()):
            if folder.name.startswith("."):
                continue
            info: dict[str, Any] = {}
            run_json = folder / "run.json"
            if run_json.is_file():
                with contextlib.suppress(OSError, ValueError):
                    loaded = json.loads(run_json.read_text(encoding="utf-8"))
                    info = loaded if isinstance(loaded, dict) else {}
            entries.append(RunEntry(folder.name, folder, info))
        return entries

    def new_run_dir(self, prefix: str = "run") -> Path:
        """Create and return a fresh, uniquely named ``runs/<prefix>-YYYYmmdd-HHMMSS[-k]``."""
        if not re.fullmatch(r"[A-Za-z0-9_.-]+", prefix):
            raise ProjectError(f"run name prefix {prefix!r}: use letters, digits, '_', '.', '-'")
        stamp = time.strftime("%Y%m%d-%H%M%S")
        self.runs_dir.mkdir(parents=True, exist_ok=True)
        base = f"{prefix}-{stamp}"
        for k in range(1000):
            candidate = self.runs_dir / (base if k == 0 else f"{base}-{k}")
            try:
                candidate.mkdir()
            except FileExistsError:
                continue
            self.events.emit("runs_changed", run=candidate.name)
            return candidate
        raise ProjectError(f"{self.runs_dir}: cannot find a free run folder name for {base}")

    # ---- notifications for other parts

    def notify_net_changed(self) -> None:
        self.events.emit("net_changed")

    def notify_datasets_changed(self) -> None:
        self.events.emit("datasets_changed")

    def notify_runs_changed(self) -> None:
        self.events.emit("runs_changed")

    def request_deploy(self, deploy_net: str | os.PathLike[str],
                       weights: str | os.PathLike[str]) -> None:
        self.events.emit("deploy_requested", deploy_net=str(deploy_net), weights=str(weights))

    # ---- autosave and crash recovery

    def write_autosave(self, module: str, files: dict[str, str]) -> None:
        """Keep ``module``'s unsaved content: project-relative path → text.

        Replaces what was autosaved for ``module`` before; an empty ``files`` clears it.
        """
        folder = self.autosave_dir / _safe_name(module)
        if not files:
            self.clear_autosave(module)
            return
        index = {}
        for i, (rel, text) in enumerate(sorted(files.items())):
            _check_relative(rel)
            stored = f"{i:03d}.txt"
            atomic_write_text(folder / stored, text)
            index[rel] = stored
        atomic_write_text(folder / "index.json",
                          json.dumps({"saved": time.time(), "files": index}, indent=2))
        for stale in folder.glob("*.txt"):
            if stale.name not in index.values():
                stale.unlink(missing_ok=True)

    def clear_autosave(self, module: str | None = None) -> None:
        """Forget autosaved content of ``module`` (all modules when None)."""
        import shutil

        if module is None:
            for child in self.autosave_dir.glob("*"):
                if child.is_dir():
                    shutil.rmtree(child, ignore_errors=True)
            return
        shutil.rmtree(self.autosave_dir / _safe_name(module), ignore_errors=True)

    def autosaved(self) -> dict[str, dict[str, str]]:
        """module → {project-relative path: text} of everything autosaved and not cleared."""
        found: dict[str, dict[str, str]] = {}
        if not self.autosave_dir.is_dir():
            return found
        for folder in sorted(p for p in self.autosave_dir.iterdir() if p.is_dir()):
            try:
                index = json.loads((folder / "index.json").read_text(encoding="utf-8"))
                files = {rel: (folder / stored).read_text(encoding="utf-8")
                         for rel, stored in index["files"].items()}
            except (OSError, ValueError, KeyError, TypeError):
                continue  # a half-written autosave is worth less than a clean start
            if files:
                found[folder.name] = files
        return found

    def recover_autosave(self, module: str | None = None) -> list[Path]:
        """Write autosaved files into the project (atomically) and clear them.

        Returns the files written.  Observers hear ``net_changed`` (the Net and Train
        modules reload from disk) and ``project_changed``.
        """
        written = []
        for name, files in self.autosaved().items():
            if module is not None and name != module:
                continue
            for rel, text in files.items():
                _check_relative(rel)
                target = self.root / rel
                atomic_write_text(target, text)
                written.append(target)
            self.clear_autosave(name)
        if written:
            self.events.emit("net_changed")
            self.events.emit("project_changed")
        return written

    def begin_session(self) -> None:
        """Mark the project open by this process (a crash leaves the mark behind)."""
        atomic_write_text(self.autosave_dir / _SESSION_FILE,
                          json.dumps({"pid": os.getpid(), "started": time.time()}))

    def end_session(self) -> None:
        """A clean close: drop the session mark and any autosave."""
        self.clear_autosave()
        (self.autosave_dir / _SESSION_FILE).unlink(missing_ok=True)

    def other_session_alive(self) -> bool:
        """True when another running process has this project open."""
        try:
            data = json.loads((self.autosave_dir / _SESSION_FILE).read_text(encoding="utf-8"))
            pid = int(data["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            return False
        if pid == os.getpid():
            return False
        import psutil

        return psutil.pid_exists(pid)

    def needs_recovery(self) -> bool:
        """Autosaved content exists and no other live DLP owns it: the last session crashed."""
        return bool(self.autosaved()) and not self.other_session_alive()

    def __repr__(self) -> str:
        return f"Project({str(self.root)!r})"


def _safe_name(module: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]+", module):
        raise ProjectError(f"autosave module name {module!r}: use letters, digits, '_', '-'")
    return module


def _check_relative(rel: str) -> None:
    path = Path(rel)
    if path.is_absolute() or ".." in path.parts or not rel:
        raise ProjectError(f"autosave path {rel!r} must be relative and inside the project")


# --------------------------------------------------------------------------- recent projects


def config_dir() -> Path:
    """The user's DLP configuration folder (``DLP_CONFIG_DIR`` overrides, for tests)."""
    override = os.environ.get("DLP_CONFIG_DIR")
    if override:
        return Path(override).expanduser()
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return Path(base) / "dlp"


class RecentProjects:
    """Most-recently-used project folders, newest first, in ``<config>/recent-projects.json``."""

    def __init__(self, path: Path | None = None, limit: int = RECENT_LIMIT) -> None:
        self.path = path if path is not None else config_dir() / "recent-projects.json"
        self.limit = limit

    def _read(self) -> list[str]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return []  # a lost MRU list is not worth an error dialog
        if not isinstance(data, dict) or not isinstance(data.get("projects"), list):
            return []
        return [p for p in data["projects"] if isinstance(p, str)]

    def _write(self, paths: list[str]) -> None:
        atomic_write_text(self.path, json.dumps({"projects": paths}, indent=2) + "\n")

    def list(self, existing_only: bool = True) -> list[Path]:
        paths = [Path(p) for p in self._read()]
        if existing_only:
            paths = [p for p in paths if Project.is_project(p)]
        return paths

    def add(self, root: str | os.PathLike[str]) -> None:
        root_str = str(Path(root).expanduser().resolve())
        paths = [p for p in self._read() if p != root_str]
        self._write([root_str, *paths][: self.limit])

    def remove(self, root: str | os.PathLike[str]) -> None:
        root_str = str(Path(root).expanduser().resolve())
        self._write([p for p in self._read() if p != root_str])

    def clear(self) -> None:
        self._write([])

    def last(self) -> Path | None:
        paths = self.list()
        return paths[0] if paths else None
