"""What the Train form needs to know about a net and the project's datasets (Qt-free).

Data layers are identified by their index in ``net.layer``: Caffe nets often name
the TRAIN and TEST data layers alike (``data``), told apart only by ``include``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PHASE_NAMES = {0: "TRAIN", 1: "TEST"}
SOLVER_TYPES = ("SGD", "Nesterov", "AdaGrad", "RMSProp", "AdaDelta", "Adam")
LR_POLICY_FIELDS: dict[str, tuple[str, ...]] = {
    "fixed": (),
    "step": ("gamma", "stepsize"),
    "exp": ("gamma",),
    "inv": ("gamma", "power"),
    "multistep": ("gamma", "stepvalue"),
    "poly": ("power",),
    "sigmoid": ("gamma", "stepsize"),
}
#: solver fields used by each update rule beyond base_lr and weight_decay
SOLVER_TYPE_FIELDS: dict[str, tuple[str, ...]] = {
    "SGD": ("momentum",),
    "Nesterov": ("momentum",),
    "AdaGrad": ("delta",),
    "RMSProp": ("rms_decay", "delta"),
    "AdaDelta": ("momentum", "delta"),
    "Adam": ("momentum", "momentum2", "delta"),
}


@dataclass(frozen=True)
class DataLayerInfo:
    """A ``Data`` layer: its index in ``net.layer``, name, first top, phase and DB."""

    index: int
    name: str
    top: str
    phase: str  # "TRAIN" | "TEST" | "ALL"
    source: str
    batch_size: int

    @property
    def title(self) -> str:
        return f"{self.name} → {self.top} ({self.phase.lower()})"


@dataclass(frozen=True)
class DbChoice:
    """One LMDB of a project dataset a Data layer can read."""

    dataset: str
    split: str
    kind: str  # "features" | "labels"
    path: str

    @property
    def label(self) -> str:
        return f"{self.dataset}: {self.split}/{self.kind}"


def _phase_of(layer: Any) -> str:
    phases = {PHASE_NAMES.get(rule.phase, "?") for rule in layer.include
              if rule.HasField("phase")}
    if layer.HasField("phase"):
        phases.add(PHASE_NAMES.get(layer.phase, "?"))
    return phases.pop() if len(phases) == 1 else "ALL"


def data_layers(net: Any) -> list[DataLayerInfo]:
    """The ``Data`` layers of ``net`` in order."""
    return [DataLayerInfo(i, layer.name, layer.top[0] if layer.top else "", _phase_of(layer),
                          layer.data_param.source, int(layer.data_param.batch_size))
            for i, layer in enumerate(net.layer) if layer.type == "Data"]


def db_choices(datasets: Iterable[Any]) -> list[DbChoice]:
    """Every features/labels LMDB of every readable dataset (``DatasetEntry`` list)."""
    choices = []
    for entry in datasets:
        manifest = getattr(entry, "manifest", None)
        if manifest is None:
            continue
        for split in manifest.splits:
            for kind in ("features", "labels"):
                choices.append(DbChoice(entry.name, split, kind,
                                        str(manifest.db_path(split, kind))))
    return choices


def default_choice(layer: DataLayerInfo, choices: list[DbChoice]) -> DbChoice | None:
    """The DB a layer most likely means: its current source if it is one of ``choices``,
    else by top name (``label*`` → labels) and phase (TEST → val split)."""
    for choice in choices:
        if _same_path(choice.path, layer.source):
            return choice
    if not choices:
        return None
    # only guess for sources that do not point at an existing DB already
    if layer.source and Path(layer.source).is_absolute() and Path(layer.source).exists():
        return None
    kind = "labels" if "label" in layer.top.lower() else "features"
    splits = ["val", "test", "train"] if layer.phase == "TEST" else ["train"]
    dataset = choices[0].dataset
    for split in splits:
        for choice in choices:
            if choice.dataset == dataset and choice.split == split and choice.kind == kind:
                return choice
    return None


def _same_path(a: str, b: str) -> bool:
    if not a or not b:
        return False
    try:
        return Path(a).resolve() == Path(b).resolve()
    except OSError:
        return a == b


def apply_data_settings(net: Any, sources: Mapping[int, str], *,
                        train_batch: int | None = None, test_batch: int | None = None) -> Any:
    """A copy of ``net`` with Data layer ``sources`` (by layer index) and batch sizes set."""
    from dlp.proto import caffe_pb2

    copy = type(net)()
    copy.CopyFrom(net)
    for info in data_layers(copy):
        param = copy.layer[info.index].data_param
        if sources.get(info.index):
            param.source = sources[info.index]
            param.backend = caffe_pb2.DataParameter.LMDB
        batch = test_batch if info.phase == "TEST" else train_batch
        if batch:
            param.batch_size = int(batch)
    return copy


def best_metric_choices(net: Any) -> list[str]:
    """Names a ``best_metric`` can take: the TEST net's outputs, ``NAME[i]`` per element.

    Outputs are tops no later layer reads (Caffe's rule).  Element counts come from
    shape inference; when it fails the plain names are still offered.
    """
    from dlp.net.filter import filter_net

    try:
        test_net = filter_net(net, "TEST")
    except Exception:  # the form must open even for a net the filter rejects
        return []
    consumed: set[str] = set()
    outputs: list[str] = []
    for layer in test_net.layer:
        consumed.update(layer.bottom)
    for layer in test_net.layer:
        if layer.type in ("Data", "Input", "DummyData", "ImageData", "HDF5Data", "MemoryData"):
            continue
        for top in layer.top:
            if top not in consumed and top not in outputs:
                outputs.append(top)
    try:
        from dlp.net.shapes import infer_shapes

        blobs = infer_shapes(net, "TEST").blobs
    except Exception:  # shapes need the LMDBs; names alone still help
        blobs = {}
    names = []
    for top in outputs:
        shape = blobs.get(top)
        count = 1
        if shape:
            for dim in shape:
                count *= int(dim)
        if count > 1 and count <= 64:
            names.extend(f"{top}[{i}]" for i in range(count))
            names.append(top)
        else:
            names.append(top)
    return names


def dataset_summary(entry: Any) -> str:
    """One line about a dataset: records per split, sample shape, classes."""
    manifest = getattr(entry, "manifest", None)
    if manifest is None:
        return f"{entry.name}: unreadable ({getattr(entry, 'error', 'no manifest')})"
    counts = ", ".join(f"{split} {info.count}" for split, info in manifest.splits.items())
    shape = "x".join(str(n) for n in manifest.shape)
    classes = ", ".join(manifest.classes)
    return f"{entry.name}: {counts} records; {shape} {manifest.dtype}; classes {classes}"
