"""The demo project a new user gets on first start (Qt-free, torch-free).

``~/DLP-demo`` (or ``$DLP_DEMO_DIR``) holds a phantom Sunnybrook-layout dataset, the
Net Library's small 2-D U-Net with its Data layers reading that dataset, and a
solver tuned to train in minutes on a CPU — so Net → Train → Deploy works at once.
:func:`ensure_demo_project` is instant (the window opens on it); the slow part,
:func:`build_demo_content`, runs once in a worker with progress and cancel.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from dlp.errors import InputError
from dlp.progress import CancelToken, ProgressCallback, ProgressEvent, report
from dlp.project import Project

DEMO_NAME = "DLP demo"
DEMO_NET = "unet2d"
DEMO_DATASET = "sunnybrook-phantom"
PHANTOM_FOLDER = "sources/sunnybrook-phantom"


def demo_dir() -> Path:
    """Where the demo project lives: ``$DLP_DEMO_DIR`` or ``~/DLP-demo``."""
    override = os.environ.get("DLP_DEMO_DIR")
    return Path(override).expanduser() if override else Path.home() / "DLP-demo"


def ensure_demo_project(root: str | os.PathLike[str] | None = None) -> Project:
    """Open the demo project, creating the (still empty) project folder when needed."""
    root = Path(root) if root is not None else demo_dir()
    if Project.is_project(root):
        return Project.open(root)
    project = Project.create(root, name=DEMO_NAME)
    project.set_state("demo", {"is_demo": True})
    return project


def demo_is_complete(project: Project) -> bool:
    """True once the dataset, the net and the solver of the demo all exist."""
    return ((project.dataset_path(DEMO_DATASET) / "manifest.json").is_file()
            and project.net_path.is_file() and project.solver_path.is_file())


@dataclass(frozen=True)
class DemoReport:
    dataset: Path
    net: Path
    solver: Path
    counts: dict[str, int]


def _stage(progress: ProgressCallback | None, start: int, span: int,
           label: str) -> Callable[[ProgressEvent], None]:
    """Map a stage's own progress onto ``start…start+span`` of 100."""

    def forward(event: ProgressEvent) -> None:
        fraction = event.done / event.total if event.total else 0.0
        report(progress, start + round(span * min(fraction, 1.0)), 100,
               f"{label}: {event.message}" if event.message else label)

    return forward


def point_data_layers(net: Any, sources: dict[str, str], manifest: Any) -> list[str]:
    """Set each Data layer's LMDB ``source`` to the dataset's DB for its phase.

    ``sources`` maps a Data layer's first top (``data``, ``label``) to the DB kind
    (``features``, ``labels``), as the library's ``meta.json`` ``dataset_sources`` say.
    TRAIN layers read the train split; TEST layers the val split (train if none).
    Returns the names of the layers changed.
    """
    from dlp.proto import caffe_pb2

    changed = []
    test_split = "val" if "val" in manifest.splits else "train"
    for layer in net.layer:
        if layer.type != "Data" or not layer.top:
            continue
        kind = sources.get(layer.top[0])
        if kind is None:
            raise InputError(
                f"layer {layer.name!r}: top {layer.top[0]!r} is not in the entry's "
                f"dataset_sources ({', '.join(sources)})")
        phases = {rule.phase for rule in layer.include if rule.HasField("phase")}
        split = test_split if phases == {caffe_pb2.TEST} else "train"
        layer.data_param.source = str(manifest.db_path(split, kind))
        layer.data_param.backend = caffe_pb2.DataParameter.LMDB
        changed.append(layer.name)
    return changed


def build_demo_content(project: Project, *, cases: int = 8, slices: int = 6, size: int = 128,
                       seed: int = 0, progress: ProgressCallback | None = None,
                       cancel: CancelToken | None = None) -> DemoReport:
    """Phantom → dataset → net + solver, into ``project``; safe to re-run after a failure.

    ``size`` 128 keeps a CPU training run of the demo to minutes; the FCN is fully
    convolutional, so the same net trains on 256² Sunnybrook data unchanged.
    """
    from dlp.data.builder import BuildOptions, build_dataset
    from dlp.data.phantom import generate_phantom
    from dlp.data.preprocess import Preprocessing
    from dlp.data.sources import SunnybrookSource
    from dlp.net.library import find_entry
    from dlp.net.prototxt import write_net, write_solver

    report(progress, 0, 100, "generating phantom images")
    phantom = generate_phantom(project.root / PHANTOM_FOLDER, cases=cases, slices=slices,
                               size=size, seed=seed, overwrite=True,
                               progress=_stage(progress, 0, 40, "phantom"), cancel=cancel)
    options = BuildOptions(preprocessing=Preprocessing(size=(size, size), intensity="minmax"),
                           val_percent=25.0, seed=seed)
    built = build_dataset(SunnybrookSource(phantom.images_dir, phantom.contours_dir),
                          project.dataset_path(DEMO_DATASET), options,
                          progress=_stage(progress, 40, 50, "dataset"), cancel=cancel)
    if cancel is not None:
        cancel.raise_if_cancelled()

    report(progress, 90, 100, "net and solver")
    entry = find_entry(DEMO_NET)
    net, solver = entry.load()
    point_data_layers(net, entry.dataset_sources, built.manifest)
    solver.net = str(project.net_path)
    # Short enough to finish on a laptop CPU while showing the Dice curve rise: the
    # U-Net passes a validation Dice of 0.9 on the phantom after ~150 iterations (the
    # library's Sunnybrook FCN, upsampling 16x from 9x9 at this size, stays near 0.5).
    solver.max_iter = 400
    solver.test_interval = 50
    solver.test_iter[:] = [_test_iterations(net, built.counts.get("val", 1))]
    solver.snapshot = 100
    solver.display = 20
    solver.snapshot_prefix = "snapshots/demo"
    write_net(net, project.net_path)
    write_solver(solver, project.solver_path)
    _write_demo_labels(project, built.manifest.classes)
    project.notify_datasets_changed()
    project.notify_net_changed()
    # Every tab reloads: the project's content changed as a whole.
    project.events.emit("project_changed")
    report(progress, 100, 100, "ready")
    return DemoReport(project.dataset_path(DEMO_DATASET), project.net_path, project.solver_path,
                      dict(built.counts))


def _test_iterations(net: Any, val_records: int) -> int:
    """Iterations that cover the val split once with the TEST Data layers' batch size."""
    from dlp.proto import caffe_pb2

    batch = max((layer.data_param.batch_size for layer in net.layer if layer.type == "Data"
                 and any(r.phase == caffe_pb2.TEST for r in layer.include)), default=1) or 1
    return max(1, -(-val_records // batch))


def _write_demo_labels(project: Project, classes: list[str]) -> None:
    """deploy/label.txt with the dataset's class names, so Deploy's legend is right."""
    from dlp.fsutil import atomic_write_text

    path = project.deploy_dir / "label.txt"
    if not path.exists():
        atomic_write_text(path, "".join(f"{name}\n" for name in classes))
