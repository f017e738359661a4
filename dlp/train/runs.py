"""Training runs kept in the project: ``runs/<name>/`` folders (Qt-free, torch-free).

A run folder holds everything needed to understand, resume or deploy it::

    runs/run-20261123-110000/
      run.json              status, engine, pid of the training process, history
      train_val.prototxt    the net as trained (Data sources absolute)
      solver.prototxt       net: "train_val.prototxt", snapshot_prefix: "snapshots/snapshot"
      deploy.prototxt       derived from the net, for Deploy
      train.log             Caffe-format log (the GUI follows it)
      train.log.jsonl       DLP's JSON events (built-in engine only)
      stderr.txt            the training process's stderr (its last lines explain a crash)
      snapshots/            snapshot_iter_N.caffemodel + .solverstate

Training runs as a detached process that writes into the folder, so a run outlives
the GUI: ``run.json`` records its pid (and the process start time, so a recycled pid
is not mistaken for it) and a later session re-attaches by following ``train.log``.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlp.errors import InputError
from dlp.fsutil import atomic_write_text
from dlp.train.curves import LiveCurves, best_point
from dlp.train.log import LogParser

RUN_JSON = "run.json"
NET_FILE = "train_val.prototxt"
SOLVER_FILE = "solver.prototxt"
DEPLOY_FILE = "deploy.prototxt"
LOG_FILE = "train.log"
STDERR_FILE = "stderr.txt"
STDOUT_FILE = "stdout.txt"
SNAPSHOT_DIR = "snapshots"
SNAPSHOT_PREFIX = "snapshots/snapshot"

#: run.json ``status`` values
STATUSES = ("created", "running", "stopping", "stopped", "done", "failed", "interrupted")

_SNAPSHOT_NAME = re.compile(r"_iter_(\d+)\.caffemodel$")


class RunError(InputError):
    """A run folder is missing, damaged or cannot be written."""


@dataclass(frozen=True)
class SnapshotInfo:
    """One snapshot of a run: its files and the test metrics logged at its iteration."""

    iteration: int
    caffemodel: Path
    solverstate: Path | None
    metrics: dict[str, float] = field(default_factory=dict)


class Run:
    """A run folder; ``info`` is the content of ``run.json``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.info: dict[str, Any] = {}
        self.reload()

    # ---- files

    @property
    def name(self) -> str:
        return self.path.name

    @property
    def net_path(self) -> Path:
        return self.path / NET_FILE

    @property
    def solver_path(self) -> Path:
        return self.path / SOLVER_FILE

    @property
    def deploy_path(self) -> Path:
        return self.path / DEPLOY_FILE

    @property
    def log_path(self) -> Path:
        return self.path / LOG_FILE

    @property
    def jsonl_path(self) -> Path:
        return self.path / (LOG_FILE + ".jsonl")

    @property
    def stderr_path(self) -> Path:
        return self.path / STDERR_FILE

    @property
    def stdout_path(self) -> Path:
        return self.path / STDOUT_FILE

    @property
    def snapshot_dir(self) -> Path:
        return self.path / SNAPSHOT_DIR

    # ---- run.json

    def reload(self) -> None:
        path = self.path / RUN_JSON
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            data = {}
        except (OSError, ValueError) as exc:
            raise RunError(f"{path}: cannot read run metadata: {exc}") from exc
        self.info = data if isinstance(data, dict) else {}

    def update(self, **fields: Any) -> None:
        """Change fields of ``run.json`` and write it atomically."""
        self.info.update(fields)
        atomic_write_text(self.path / RUN_JSON, json.dumps(self.info, indent=2) + "\n")

    @property
    def status(self) -> str:
        return str(self.info.get("status", "created"))

    @property
    def max_iter(self) -> int:
        return int(self.info.get("max_iter", 0))

    @property
    def best_metric(self) -> str:
        return str(self.info.get("best_metric", ""))

    @property
    def best_mode(self) -> str:
        return str(self.info.get("best_mode", "max"))

    # ---- snapshots and metrics

    def snapshots(self, curves: LiveCurves | None = None) -> list[SnapshotInfo]:
        """Snapshots on disk, oldest first, with the test metrics of their iteration.

        ``curves`` (already parsed from the log) saves re-reading it.
        """
        if not self.snapshot_dir.is_dir():
            return []
        if curves is None:
            curves = self.read_curves()
        found = []
        for model in self.snapshot_dir.glob("*.caffemodel"):
            match = _SNAPSHOT_NAME.search(model.name)
            if not match:
                continue
            iteration = int(match.group(1))
            state = model.with_suffix(".solverstate")
            metrics = {}
            for name, _series in curves.series.items():
                if name.startswith("test"):
                    value = curves.value_at(name, iteration)
                    if value is not None:
                        metrics[name.split("/", 1)[1] if name.startswith("test/") else name] = \
                            value
            found.append(SnapshotInfo(iteration, model, state if state.is_file() else None,
                                      metrics))
        return sorted(found, key=lambda s: s.iteration)

    def latest_solverstate(self) -> Path | None:
        """The newest ``.solverstate`` (what Resume continues from), or None."""
        states = [s for s in self.snapshots(LiveCurves()) if s.solverstate is not None]
        return states[-1].solverstate if states else None

    def best_snapshot(self, metric: str | None = None, mode: str | None = None,
                      curves: LiveCurves | None = None) -> SnapshotInfo | None:
        """The snapshot with the best ``metric`` (default: the run's ``best_metric``).

        Without a metric, or when no snapshot has it, the latest snapshot.
        """
        metric = metric if metric is not None else self.best_metric
        mode = mode or self.best_mode
        snapshots = self.snapshots(curves)
        if not snapshots:
            return None
        scored = [s for s in snapshots if metric and metric in s.metrics]
        if not scored:
            return snapshots[-1]
        x = [s.iteration for s in scored]
        y = [s.metrics[metric] for s in scored]
        best = best_point((x, y), mode)
        if best is None:
            return snapshots[-1]
        return next(s for s in scored if s.iteration == best[0])

    def read_curves(self) -> LiveCurves:
        """The curves of the whole log (empty when there is no log yet)."""
        curves = LiveCurves()
        if self.log_path.is_file():
            parser = LogParser()
            with open(self.log_path, encoding="utf-8", errors="replace") as handle:
                for line in handle:
                    curves.feed(parser.feed(line))
        curves.flush()
        return curves

    def last_stderr_lines(self, count: int = 12) -> list[str]:
        """The last lines the training process wrote to stderr (explain a crash)."""
        if not self.stderr_path.is_file():
            return []
        with open(self.stderr_path, "rb") as handle:
            handle.seek(0, os.SEEK_END)
            size = handle.tell()
            handle.seek(max(0, size - 16384))
            text = handle.read().decode("utf-8", errors="replace")
        return [line for line in text.splitlines() if line.strip()][-count:]

    # ---- the training process

    def process_alive(self) -> bool:
        """True while the process recorded in ``run.json`` still runs."""
        return process_alive(self.info.get("pid"), self.info.get("pid_started"))

    def clear_outputs(self) -> None:
        """Forget the log and snapshots (Restart from iteration 0)."""
        for path in (self.log_path, self.jsonl_path, self.stderr_path, self.stdout_path):
            path.unlink(missing_ok=True)
        shutil.rmtree(self.snapshot_dir, ignore_errors=True)
        self.snapshot_dir.mkdir(parents=True, exist_ok=True)

    def __repr__(self) -> str:
        return f"Run({str(self.path)!r}, status={self.status!r})"


def process_alive(pid: Any, started: Any = None) -> bool:
    """Is ``pid`` running (and, when ``started`` is given, the same process as then)?"""
    if not isinstance(pid, int) or pid <= 0:
        return False
    import psutil

    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE:
            return False
        return not (started is not None and abs(process.create_time() - float(started)) > 1.0)
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return False


def process_start_time(pid: int) -> float | None:
    import psutil

    try:
        return psutil.Process(pid).create_time()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def list_runs(runs_dir: str | os.PathLike[str]) -> list[Run]:
    """The runs under ``runs_dir``, oldest first (hidden folders skipped)."""
    runs_dir = Path(runs_dir)
    if not runs_dir.is_dir():
        return []
    runs = []
    for folder in sorted(p for p in runs_dir.iterdir() if p.is_dir()):
        if folder.name.startswith("."):
            continue
        try:
            runs.append(Run(folder))
        except RunError:
            continue  # a damaged run.json: the folder is still listed by the project
    return runs


def delete_run(run: Run) -> None:
    """Remove a run folder; refuses while its training process is alive."""
    if run.process_alive():
        raise RunError(f"{run.path}: the run is still training (pid {run.info.get('pid')}); "
                       "stop it first")
    shutil.rmtree(run.path)


def create_run(run_dir: str | os.PathLike[str], net: Any, solver: Any, *,
               engine: str = "builtin", weights: Iterable[str] = (),
               device: str = "cpu") -> Run:
    """Fill the (new, empty) ``run_dir`` with the net, solver, deploy net and ``run.json``.

    ``net`` and ``solver`` are ``NetParameter``/``SolverParameter`` messages (copied,
    not changed).  For ``engine="caffe"`` DLP's extension fields and its Dice metric
    layers are removed, so a BVLC ``caffe train`` reads the files; a net that trains
    on a DLP-only loss is refused (:class:`~dlp.net.bvlc.NotRunnableInCaffeError`).
    """
    from dlp.net.bvlc import for_bvlc_caffe
    from dlp.net.deploy import derive_deploy_net
    from dlp.net.prototxt import strip_extensions, write_net, write_solver

    run_solver = type(solver)()
    run_solver.CopyFrom(solver)
    best_metric, best_mode = run_solver.best_metric, run_solver.best_mode or "max"
    if engine == "caffe":
        run_net = for_bvlc_caffe(net, "the net").net
        strip_extensions(run_solver)
        kept_tops = {top for layer in run_net.layer for top in layer.top}
        if best_metric.split("[")[0] not in kept_tops:
            best_metric = ""  # its layer (a DLP Dice metric) is not in Caffe's net
    else:
        run_net = type(net)()
        run_net.CopyFrom(net)
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / SNAPSHOT_DIR).mkdir(exist_ok=True)
    for name in ("net_param", "train_net", "train_net_param"):
        run_solver.ClearField(name)
    run_solver.net = NET_FILE
    run_solver.snapshot_prefix = SNAPSHOT_PREFIX
    write_net(run_net, run_dir / NET_FILE)
    write_solver(run_solver, run_dir / SOLVER_FILE)
    deploy_error = None
    try:
        write_net(derive_deploy_net(net, base_dir=run_dir), run_dir / DEPLOY_FILE)
    except InputError as exc:
        # Training can go ahead; Deploy will say why it has no net for this run.
        deploy_error = str(exc)
    run = Run(run_dir)
    run.update(
        name=run_dir.name, created=time.time(), status="created", engine=engine,
        device=device, net_name=net.name, max_iter=int(solver.max_iter),
        best_metric=best_metric, best_mode=best_mode, weights=list(weights),
        deploy_error=deploy_error, starts=[],
    )
    return run


def train_arguments(run: Run, *, resume_from: str | os.PathLike[str] | None = None,
                    device: str = "cpu") -> list[str]:
    """Arguments of ``dlp train`` for ``run`` (the process runs in the run folder)."""
    args = ["train", "--solver", SOLVER_FILE, "--log", LOG_FILE, "--sigint_effect", "stop"]
    if resume_from is not None:
        args += ["--snapshot", _relative(resume_from, run.path)]
    elif run.info.get("weights"):
        args += ["--weights", ",".join(run.info["weights"])]
    if device.startswith("cuda"):
        args += ["--gpu", device.partition(":")[2] or "0"]
    return args


def caffe_arguments(run: Run, *, resume_from: str | os.PathLike[str] | None = None,
                    device: str = "cpu") -> list[str]:
    """Arguments of an external ``caffe train`` (its glog lines go to stderr = the log)."""
    args = ["train", f"--solver={SOLVER_FILE}", "--sigint_effect=stop"]
    if resume_from is not None:
        args.append(f"--snapshot={_relative(resume_from, run.path)}")
    elif run.info.get("weights"):
        args.append("--weights=" + ",".join(run.info["weights"]))
    if device.startswith("cuda"):
        args.append(f"--gpu={device.partition(':')[2] or '0'}")
    return args


def _relative(path: str | os.PathLike[str], base: Path) -> str:
    path = Path(path)
    try:
        return path.resolve().relative_to(base.resolve()).as_posix()
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- following a log


class LogFollower:
    """Reads the lines appended to a growing file since the last call (``tail -f``).

    A partial last line is kept until its newline arrives; a file that shrank
    (Restart cleared it) is read again from the start.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._offset = 0
        self._partial = b""

    def read_lines(self, max_bytes: int = 4 << 20) -> list[str]:
        try:
            size = self.path.stat().st_size
        except FileNotFoundError:
            return []
        if size < self._offset:
            self._offset, self._partial = 0, b""
        if size == self._offset:
            return []
        with open(self.path, "rb") as handle:
            handle.seek(self._offset)
            data = handle.read(max_bytes)
        self._offset += len(data)
        data = self._partial + data
        lines = data.split(b"\n")
        self._partial = lines.pop()
        return [line.decode("utf-8", errors="replace").rstrip("\r") for line in lines]

    def read_rest(self) -> list[str]:
        """Everything left, including an unterminated last line (the writer has exited)."""
        lines = self.read_lines()
        while True:
            more = self.read_lines()
            if not more:
                break
            lines += more
        if self._partial:
            lines.append(self._partial.decode("utf-8", errors="replace"))
            self._partial = b""
        return lines


# --------------------------------------------------------------------------- lr preview


def lr_schedule(solver: Any, points: int = 200) -> tuple[list[int], list[float]]:
    """The learning rate over ``0…max_iter`` sampled at ``points`` iterations.

    Computed with the solver's own lr policy table (``dlp.engine.solver.lr_policies``,
    torch-free), so the preview is what training will use.
    """
    from dlp.engine.solver.lr_policies import check_policy_fields, get_policy

    check_policy_fields(solver, "solver")
    policy = get_policy(solver.lr_policy)
    max_iter = max(1, int(solver.max_iter))
    count = max(2, min(points, max_iter + 1))
    iterations = sorted({round(i * max_iter / (count - 1)) for i in range(count)})
    rates, step = [], 0
    for it in iterations:
        # multistep advances one step per call: settle it for sparse samples
        while True:
            rate, new_step = policy(solver, it, step)
            if new_step == step or solver.lr_policy != "multistep":
                step = new_step
                break
            step = new_step
        rates.append(float(rate))
    return iterations, rates
