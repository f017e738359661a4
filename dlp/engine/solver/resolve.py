"""From a ``solver.prototxt`` to checked train/test net definitions, before training.

Everything that can be wrong with the input is found here, so a bad solver fails
with one line naming the file and field *before* any training starts: a missing or
ambiguous net, test nets without ``test_iter``, a missing LMDB, an unwritable
snapshot folder, an lr policy lacking its fields.

Relative paths are resolved like Caffe (against the current directory); when a
file is not there, DLP also tries the solver file's folder (and for data sources
the net file's folder) and reports where it found it in :attr:`ResolvedSolver.notes`.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlp.engine.solver.lr_policies import check_policy_fields
from dlp.engine.solver.updates import UPDATE_RULES, solver_type_name
from dlp.errors import InputError


@dataclass
class NetSpec:
    """One net to build: its definition, phase and state, and where it came from."""

    param: Any  # caffe_pb2.NetParameter
    phase: str
    stages: tuple[str, ...] = ()
    level: int = 0
    source: str = "<net_param>"


@dataclass
class ResolvedSolver:
    param: Any  # caffe_pb2.SolverParameter
    source: str
    solver_dir: Path
    train_net: NetSpec
    test_nets: list[NetSpec]
    snapshot_prefix: Path
    notes: list[str] = field(default_factory=list)
    weights: list[Path] = field(default_factory=list)  # the solver's `weights` field


def resolve_path(
    value: str, bases: list[tuple[str, Path]], what: str, notes: list[str]
) -> Path:
    """``value`` found against each ``(label, folder)`` in order; the first wins.

    Raises :class:`InputError` ``"<what>: '<value>' not found (looked in ...)"``.
    """
    path = Path(value).expanduser()
    if path.is_absolute():
        if path.exists():
            return path
        raise InputError(f"{what}: {value!r} not found")
    tried = []
    for index, (label, base) in enumerate(bases):
        candidate = (base / path).resolve()
        if candidate.exists():
            if index > 0:
                notes.append(f"{what}: {value!r} not found in {bases[0][0]}; using {candidate}")
            return candidate
        tried.append(f"{label} {base}")
    raise InputError(f"{what}: {value!r} not found (looked in {', '.join(tried)})")


def _state_of(state: Any) -> tuple[tuple[str, ...], int]:
    if state is None:
        return (), 0
    return tuple(state.stage), int(state.level)


def _read_net(path: Path) -> Any:
    from dlp.net.prototxt import read_net

    return read_net(path)


def _filtered(spec: NetSpec) -> Any:
    from dlp.net.filter import filter_net

    return filter_net(spec.param, spec.phase, level=spec.level, stages=spec.stages)


def check_data_sources(spec: NetSpec, bases: list[tuple[str, Path]], notes: list[str]) -> None:
    """Make every data source of ``spec`` absolute, or fail naming the layer and field.

    Only layers that survive phase/stage filtering are checked: a missing validation
    LMDB must not stop a run that has no test net.
    """
    active = {layer.name for layer in _filtered(spec).layer}
    net_bases = list(bases)
    if Path(spec.source).is_file():
        net_bases.append(("the net file's folder", Path(spec.source).resolve().parent))
    for layer in spec.param.layer:
        if layer.name not in active:
            continue
        checks = []
        if layer.HasField("data_param") and layer.data_param.source:
            checks.append(("data_param", "source", layer.data_param))
        if layer.HasField("transform_param") and layer.transform_param.mean_file:
            checks.append(("transform_param", "mean_file", layer.transform_param))
        for group, name, message in checks:
            what = f"{spec.source}: layer {layer.name!r} field {group}.{name}"
            found = resolve_path(getattr(message, name), net_bases, what, notes)
            if name == "source" and found.is_dir() and not (found / "data.mdb").exists():
                raise InputError(f"{what}: {found} is a folder but not an LMDB (no data.mdb)")
            setattr(message, name, str(found))


def _train_net(param: Any, source: str, bases: list[tuple[str, Path]], notes: list[str]) -> NetSpec:
    given = [f for f in ("train_net_param", "train_net", "net_param", "net") if param.HasField(f)]
    if not given:
        raise InputError(
            f"{source}: no train net; set one of the fields net, net_param, train_net, "
            "train_net_param"
        )
    if len(given) > 1:
        raise InputError(
            f"{source}: fields {' and '.join(given)} both give a train net; keep exactly one"
        )
    stages, level = _state_of(param.train_state if param.HasField("train_state") else None)
    chosen = given[0]
    if chosen in ("train_net_param", "net_param"):
        net = type(getattr(param, chosen))()
        net.CopyFrom(getattr(param, chosen))
        return NetSpec(net, "TRAIN", stages, level, f"{source} ({chosen})")
    path = resolve_path(getattr(param, chosen), bases, f"{source}: field {chosen}", notes)
    return NetSpec(_read_net(path), "TRAIN", stages, level, str(path))


def _test_nets(param: Any, source: str, bases: list[tuple[str, Path]], notes: list[str],
               train: NetSpec) -> list[NetSpec]:
    generic = param.HasField("net_param") or param.HasField("net")
    specific: list[tuple[Any, str]] = []
    for i, net_param in enumerate(param.test_net_param):
        copy = type(net_param)()
        copy.CopyFrom(net_param)
        specific.append((copy, f"{source} (test_net_param #{i})"))
    for value in param.test_net:
        path = resolve_path(value, bases, f"{source}: field test_net", notes)
        specific.append((_read_net(path), str(path)))
    count_iters = len(param.test_iter)
    if generic:
        if count_iters < len(specific):
            raise InputError(
                f"{source}: field test_iter: {len(specific)} test nets but {count_iters} "
                "test_iter values (one per test net is needed)"
            )
    elif count_iters != len(specific):
        raise InputError(
            f"{source}: field test_iter: {len(specific)} test nets but {count_iters} "
            "test_iter values (one per test net is needed)"
        )
    instances = len(specific) + (count_iters - len(specific) if generic else 0)
    if param.test_state and len(param.test_state) != instances:
        raise InputError(
            f"{source}: field test_state: give it once per test net ({instances}) or not at all"
        )
    nets = []
    for i in range(instances):
        if i < len(specific):
            net, net_source = specific[i]
        else:
            net = type(train.param)()
            net.CopyFrom(train.param)
            net_source = train.source
        state = param.test_state[i] if param.test_state else None
        stages, level = _state_of(state)
        nets.append(NetSpec(net, "TEST", stages, level, net_source))
    if nets and param.test_interval <= 0:
        raise InputError(f"{source}: field test_interval must be > 0 when there are test nets")
    for i, iters in enumerate(param.test_iter):
        if iters <= 0:
            raise InputError(f"{source}: field test_iter #{i} must be > 0 (got {iters})")
    return nets


def _snapshot_prefix(param: Any, source: str, solver_path: Path | None, cwd: Path,
                     solver_dir: Path, notes: list[str]) -> Path:
    if param.snapshot_prefix:
        prefix = Path(param.snapshot_prefix).expanduser()
    elif solver_path is not None:
        # newer Caffe: the prefix defaults to the solver file name without extension
        prefix = solver_path.with_suffix("")
    else:
        prefix = Path("snapshot")
    if not prefix.is_absolute():
        if (cwd / prefix).parent.is_dir():
            prefix = cwd / prefix
        elif (solver_dir / prefix).parent.is_dir():
            notes.append(
                f"{source}: field snapshot_prefix: folder of {str(prefix)!r} not found in the "
                f"current directory; snapshots go to {solver_dir / prefix}"
            )
            prefix = solver_dir / prefix
        else:
            prefix = cwd / prefix
    folder = prefix.parent
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".dlp-write-probe-"):
            pass
    except OSError as exc:
        raise InputError(
            f"{source}: field snapshot_prefix: cannot write snapshots to folder {folder} "
            f"({exc.strerror or exc}); make sure it exists and is writable"
        ) from None
    return prefix


def resolve_solver(
    param: Any,
    *,
    source: str = "solver",
    solver_dir: str | os.PathLike[str] | None = None,
    solver_path: str | os.PathLike[str] | None = None,
    cwd: str | os.PathLike[str] | None = None,
) -> ResolvedSolver:
    """Check ``param`` and load its nets; raise :class:`InputError` on the first problem."""
    cwd_path = Path(cwd) if cwd is not None else Path.cwd()
    folder = Path(solver_dir) if solver_dir is not None else cwd_path
    bases = [("the current directory", cwd_path), ("the solver's folder", folder)]
    notes: list[str] = []

    name = solver_type_name(param)
    if name not in UPDATE_RULES:
        known = ", ".join(UPDATE_RULES)
        raise InputError(f"{source}: field type: unknown solver {name!r} (expected {known})")
    if not param.HasField("lr_policy"):
        raise InputError(f"{source}: field lr_policy is required (e.g. \"fixed\" or \"step\")")
    check_policy_fields(param, source)
    if param.max_iter <= 0:
        raise InputError(f"{source}: field max_iter must be > 0 (got {param.max_iter})")
    if param.iter_size < 1:
        raise InputError(f"{source}: field iter_size must be >= 1 (got {param.iter_size})")
    if param.average_loss < 1:
        raise InputError(f"{source}: field average_loss must be >= 1 (got {param.average_loss})")
    if param.regularization_type not in ("L1", "L2"):
        raise InputError(
            f"{source}: field regularization_type: {param.regularization_type!r} "
            "(expected \"L1\" or \"L2\")"
        )
    if param.best_mode not in ("max", "min"):
        raise InputError(f"{source}: field best_mode: {param.best_mode!r} (expected max or min)")
    if param.early_stop_rounds and not param.best_metric:
        raise InputError(f"{source}: field early_stop_rounds needs best_metric to be set")
    if param.snapshot_format != param.BINARYPROTO:
        raise InputError(
            f"{source}: field snapshot_format: only BINARYPROTO snapshots are supported"
        )
    for name in ("snapshot_diff", "debug_info"):
        if getattr(param, name):
            notes.append(f"{source}: field {name} is not supported by DLP's engine; ignored")

    train = _train_net(param, source, bases, notes)
    tests = _test_nets(param, source, bases, notes, train)
    for spec in [train, *tests]:
        check_data_sources(spec, bases, notes)
    prefix = _snapshot_prefix(
        param, source, Path(solver_path) if solver_path else None, cwd_path, folder, notes
    )
    weights = [resolve_path(w, bases, f"{source}: field weights", notes) for w in param.weights]
    return ResolvedSolver(param, source, folder, train, tests, prefix, notes, weights)
