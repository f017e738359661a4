"""The Deploy configuration: which model to load, checked field by field (Qt-free).

:class:`DeployConfig` is what the Deploy tab's form edits and what
``<project>/deploy/config.json`` stores.  :meth:`DeployConfig.problems` gives the
readiness indicator its reasons (cheap checks: files exist and parse);
:meth:`DeployConfig.load_session` builds the :class:`InferenceSession`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from dlp.errors import DLPError, InputError
from dlp.fsutil import atomic_write_text

_ITER_RE = re.compile(r"_iter_(\d+)\.caffemodel$")


@dataclass
class DeployConfig:
    """Paths are strings (as typed in the form); empty means "not set"."""

    deploy_net: str = ""
    derive_from_train: bool = False
    train_net: str = ""
    weights: str = ""
    labels: str = ""
    manifest: str = ""
    device: str = "cpu"
    out_dir: str = ""
    ground_truth: str = ""
    batch_size: int = 8

    # ------------------------------------------------------------------ checks
    def problems(self) -> dict[str, str]:
        """Field name → why it is not usable; empty when the model can be loaded."""
        found: dict[str, str] = {}
        if self.derive_from_train:
            reason = _net_problem(self.train_net, "training net")
            if reason:
                found["train_net"] = reason
        else:
            reason = _net_problem(self.deploy_net, "deploy net")
            if reason:
                found["deploy_net"] = reason
        if not self.weights:
            found["weights"] = "choose the trained weights (.caffemodel) or a run's snapshot"
        elif not Path(self.weights).is_file():
            found["weights"] = f"weights file {self.weights} not found"
        if self.labels:
            from dlp.deploy.labels import read_labels

            try:
                read_labels(self.labels)
            except DLPError as exc:
                found["labels"] = str(exc)
        if self.manifest:
            path = Path(self.manifest)
            if path.is_dir():
                path = path / "manifest.json"
            if not path.is_file():
                found["manifest"] = f"dataset manifest {self.manifest} not found"
        if self.ground_truth and not Path(self.ground_truth).is_dir():
            found["ground_truth"] = f"ground-truth folder {self.ground_truth} not found"
        if not re.match(r"^(cpu|cuda(:\d+)?)$", self.device or ""):
            found["device"] = f"device {self.device!r}: expected cpu or cuda:N"
        return found

    def readiness(self) -> tuple[bool, str]:
        """(ready, one line for the indicator)."""
        problems = self.problems()
        if problems:
            return False, next(iter(problems.values()))
        return True, "ready to load"

    # ------------------------------------------------------------------ loading
    def load_session(self) -> Any:
        from dlp.deploy.session import InferenceSession

        problems = self.problems()
        if problems:
            raise InputError(next(iter(problems.values())))
        return InferenceSession.load(
            None if self.derive_from_train else self.deploy_net,
            self.weights,
            self.labels or None,
            train_net=self.train_net if self.derive_from_train else None,
            manifest=self.manifest or None,
            device=self.device or "cpu",
            batch_size=self.batch_size,
        )

    # ------------------------------------------------------------------ storage
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> DeployConfig:
        if not isinstance(data, dict):
            return cls()
        known = {f.name: f.type for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        config = cls(**values)
        config.batch_size = int(config.batch_size or 8)
        return config

    def save(self, path: str | os.PathLike[str]) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> DeployConfig:
        path = Path(path)
        if not path.is_file():
            return cls()
        try:
            return cls.from_dict(json.loads(path.read_text(encoding="utf-8")))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError, TypeError) as exc:
            raise InputError(f"{path}: cannot read the deploy configuration ({exc})") from None


def _net_problem(path: str, what: str) -> str | None:
    if not path:
        return f"choose the {what} (.prototxt)"
    if not Path(path).is_file():
        return f"{what} {path} not found"
    from dlp.net.prototxt import read_net

    try:
        read_net(path)
    except DLPError as exc:
        return str(exc)
    except Exception as exc:  # a parser failure on a strange file
        return f"{path}: cannot read the {what} ({exc})"
    return None


def find_snapshots(run_dir: str | os.PathLike[str]) -> list[Path]:
    """A run's ``*.caffemodel`` snapshots, latest iteration last."""
    folder = Path(run_dir)
    found = list((folder / "snapshots").glob("*.caffemodel")) + list(folder.glob("*.caffemodel"))

    def iteration(path: Path) -> int:
        match = _ITER_RE.search(path.name)
        return int(match.group(1)) if match else -1

    return sorted(set(found), key=lambda p: (iteration(p), p.name))


def snapshot_title(weights: str | os.PathLike[str]) -> str:
    """``iteration 400`` for a solver snapshot, else the file's name."""
    match = _ITER_RE.search(Path(weights).name)
    return f"iteration {int(match.group(1))}" if match else Path(weights).name


def find_manifest_for_net(train_net: str | os.PathLike[str]) -> Path | None:
    """The manifest of the dataset a training net reads (its Data layers' LMDB sources).

    A dataset folder holds ``manifest.json`` beside ``train_db/``; a source like
    ``datasets/lv/train_db/features`` (relative to the net's folder or absolute) leads
    to ``datasets/lv/manifest.json``.
    """
    from dlp.net.prototxt import read_net

    net_path = Path(train_net)
    try:
        net = read_net(net_path)
    except Exception:
        return None
    for layer in net.layer:
        source = layer.data_param.source if layer.HasField("data_param") else ""
        if not source:
            continue
        candidates = [Path(source)] if Path(source).is_absolute() else [
            net_path.parent / source, Path.cwd() / source,
        ]
        for start in candidates:
            for parent in [start, *start.parents]:
                manifest = parent / "manifest.json"
                if manifest.is_file():
                    return manifest
    return None


def run_model_files(run_dir: str | os.PathLike[str]) -> dict[str, Path]:
    """What a training run offers to Deploy: deploy net, training net, manifest, weights.

    The weights are the run's best snapshot by its ``best_metric`` (the Train tab's
    rule, :meth:`dlp.train.runs.Run.best_snapshot`), else the latest.
    """
    folder = Path(run_dir)
    found: dict[str, Path] = {}
    if (folder / "deploy.prototxt").is_file():
        found["deploy_net"] = folder / "deploy.prototxt"
    if (folder / "train_val.prototxt").is_file():
        found["train_net"] = folder / "train_val.prototxt"
        manifest = find_manifest_for_net(folder / "train_val.prototxt")
        if manifest is not None:
            found["manifest"] = manifest
    best = None
    try:
        from dlp.train.runs import Run

        best = Run(folder).best_snapshot()
    except Exception:  # an unreadable log or run.json: fall back to the file names
        best = None
    snapshots = find_snapshots(folder)
    if best is not None and Path(best.caffemodel).is_file():
        found["weights"] = Path(best.caffemodel)
    elif snapshots:
        found["weights"] = snapshots[-1]
    return found


def latest_run_model(run_dirs: list[Path]) -> tuple[Path, dict[str, Path]] | None:
    """The newest run (last of ``run_dirs``, oldest first) that has a snapshot, and its files."""
    for folder in reversed(run_dirs):
        found = run_model_files(folder)
        if "weights" in found:
            return Path(folder), found
    return None


def fill_project_defaults(config: DeployConfig, net_path: str | os.PathLike[str] | None,
                          run_dirs: list[Path]) -> tuple[DeployConfig, str | None]:
    """Fill the model fields the user left empty from the project: ready as soon as a run exists.

    With no model chosen, the deploy net is derived from the project's training net.
    Empty or vanished weights become the newest run's best snapshot (else its latest);
    the weights come with the net they were trained with, so a net derived from the
    project's own net switches to that run's copy of it (the project's net may have
    been edited since).  Returns the config and, when weights are still missing, why
    (for the panel): no run has a snapshot yet.
    """
    filled = DeployConfig.from_dict(config.to_dict())
    project_net = Path(net_path) if net_path is not None else None
    if not filled.deploy_net and not filled.train_net and project_net is not None \
            and project_net.is_file():
        filled.derive_from_train = True
        filled.train_net = str(project_net)
    hint = None
    if not filled.weights or not Path(filled.weights).is_file():
        latest = latest_run_model(run_dirs)
        if latest is None:
            hint = "no training run has a snapshot yet: train the net (Train tab) first"
        else:
            found = latest[1]
            filled.weights = str(found["weights"])
            own_net = not filled.train_net or (
                project_net is not None and Path(filled.train_net) == project_net)
            if "train_net" in found and own_net and not filled.deploy_net:
                filled.derive_from_train = True
                filled.train_net = str(found["train_net"])
            elif not filled.train_net and not filled.deploy_net and "deploy_net" in found:
                filled.derive_from_train = False
                filled.deploy_net = str(found["deploy_net"])
            if not filled.manifest and "manifest" in found:
                filled.manifest = str(found["manifest"])
    if not filled.manifest and filled.derive_from_train and filled.train_net:
        manifest = find_manifest_for_net(filled.train_net)
        if manifest is not None:
            filled.manifest = str(manifest)
    return filled, hint
