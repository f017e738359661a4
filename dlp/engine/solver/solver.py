"""The solver: Caffe's ``Solver::Step``/``Solve``/``Test`` loop on the PyTorch engine.

The loop, the order of testing/display/update/snapshot, the log lines and the
snapshot files are Caffe's, so a ``solver.prototxt`` trains here as in ``caffe
train``.  DLP adds: resume that is exact (random generators and data positions are
saved beside the ``.solverstate``), a stop on NaN/Inf loss, best-metric tracking
with pruning of old snapshots, and early stopping.
"""

from __future__ import annotations

import math
import os
import random
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from dlp.engine.runtime import denormals_flushed
from dlp.engine.solver.logwriter import WHERE, LogWriter, OutputValues, format_number
from dlp.engine.solver.lr_policies import learning_rate
from dlp.engine.solver.resolve import NetSpec, ResolvedSolver, resolve_solver
from dlp.engine.solver.snapshot import (
    SnapshotError,
    SnapshotFiles,
    learned_net_path,
    read_dlpstate,
    read_solverstate,
    remove_snapshot,
    rng_state,
    set_rng_state,
    snapshot_files,
    write_dlpstate,
    write_solverstate,
)
from dlp.engine.solver.updates import (
    Hyper,
    UpdateParam,
    apply_update,
    clip_gradients,
    make_rule,
    solver_type_name,
)
from dlp.errors import DLPError, InputError
from dlp.memory import tune_allocator
from dlp.progress import ProgressCallback, report


class TrainingDiverged(DLPError):
    """The loss became NaN or infinite; the message names the iteration."""


ACTIONS = ("stop", "snapshot")


class SmoothedLoss:
    """Caffe's ``UpdateSmoothedLoss``: the mean of the last ``average_loss`` losses."""

    def __init__(self, window: int) -> None:
        self.window = window
        self.losses: list[float] = []
        self.value = 0.0
        self.start_iter = 0

    def update(self, loss: float, iteration: int) -> float:
        if len(self.losses) < self.window:
            self.losses.append(loss)
            size = len(self.losses)
            self.value = (self.value * (size - 1) + loss) / size
        else:
            index = (iteration - self.start_iter) % self.window
            self.value += (loss - self.losses[index]) / self.window
            self.losses[index] = loss
        return self.value

    def state(self) -> dict[str, Any]:
        return {"losses": list(self.losses), "value": self.value, "start_iter": self.start_iter}

    def load(self, state: dict[str, Any]) -> None:
        self.losses = list(state["losses"])
        self.value = float(state["value"])
        self.start_iter = int(state["start_iter"])


@dataclass
class BestMetric:
    """The best value of ``solver.best_metric`` seen in the test rounds so far."""

    name: str
    mode: str = "max"
    value: float | None = None
    iteration: int | None = None
    rounds_without_improvement: int = 0

    def better(self, value: float) -> bool:
        if math.isnan(value):
            return False
        if self.value is None:
            return True
        return value > self.value if self.mode == "max" else value < self.value


@dataclass
class DataParallel:
    """This process's place in a data-parallel run (see :mod:`.distributed`)."""

    rank: int = 0
    world_size: int = 1
    device: str | None = None  # the device this rank trains on (None: choose normally)

    @property
    def is_root(self) -> bool:
        return self.rank == 0


@dataclass
class SolveResult:
    iteration: int
    reason: str  # "max_iter" | "stopped" | "early_stop"
    snapshots: list[SnapshotFiles] = field(default_factory=list)
    best: BestMetric | None = None


def output_values(net: Any, blobs: dict[str, torch.Tensor]) -> list[OutputValues]:
    """The net's output blobs as flat values with their loss weights (Caffe's order)."""
    outputs = []
    for name in net.output_names:
        values = blobs[name].detach().reshape(-1).double().cpu().tolist()
        outputs.append(
            OutputValues(name, tuple(values), float(net.loss_weights.get(name, 0.0)))
        )
    return outputs


def metric_value(outputs: Sequence[OutputValues], metric: str) -> float | None:
    """``dice`` (a scalar output, or the mean of a vector one) or ``dice[1]``."""
    name, _, rest = metric.partition("[")
    for output in outputs:
        if output.name != name:
            continue
        if rest:
            index = int(rest.rstrip("]"))
            return output.values[index] if index < len(output.values) else None
        return float(np.mean(output.values))
    return None


def data_feed(net: Any) -> Any:
    """The net's lock-step Data feed (None for nets without Data layers)."""
    ctx = getattr(net, "ctx", None)
    return ctx.shared.get("data_feed") if ctx is not None else None


def skip_rounds(net: Any, rounds: int) -> None:
    """Consume ``rounds`` batches of ``net``'s Data layers without running the net.

    Used to put a resumed run's data where the snapshot left it, and by data-parallel
    ranks to read only their part of each global batch.
    """
    feed = data_feed(net)
    if feed is None:
        return
    for _ in range(rounds):
        for index in range(len(feed.members)):
            feed.fetch(index)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class Solver:
    """Trains ``solver_param``'s net with Caffe's semantics.

    ``solver_dir`` is the folder of the solver file (relative paths are tried against
    the current directory first, like Caffe, then against it).  ``weights`` are
    ``.caffemodel`` files to fine-tune from.  Logging goes to ``log``.
    """

    def __init__(
        self,
        solver_param: Any,
        *,
        solver_dir: str | os.PathLike[str] | None = None,
        device: str | torch.device = "cpu",
        weights: Sequence[str | os.PathLike[str]] | None = None,
        log: LogWriter | None = None,
        solver_path: str | os.PathLike[str] | None = None,
        cwd: str | os.PathLike[str] | None = None,
        progress: ProgressCallback | None = None,
        parallel: DataParallel | None = None,
    ) -> None:
        from dlp.proto import caffe_pb2

        param = caffe_pb2.SolverParameter()
        param.CopyFrom(solver_param)
        self.param = param
        self.log = log if log is not None else LogWriter()
        self.progress = progress
        self.parallel = parallel or DataParallel()
        self.device = torch.device(device)
        source = Path(solver_path).name if solver_path else "solver"
        self.source = source
        self.resolved: ResolvedSolver = resolve_solver(
            param, source=source, solver_dir=solver_dir, solver_path=solver_path, cwd=cwd
        )
        for note in self.resolved.notes:
            self.log.warning(note)
        self.seed: int | None = int(param.random_seed) if param.random_seed >= 0 else None
        if self.seed is not None:
            seed_everything(self.seed)
        tune_allocator()

        self.net = self._build(self.resolved.train_net)
        self.test_nets = (
            [self._build(spec) for spec in self.resolved.test_nets] if self.parallel.is_root
            else []
        )
        for test_net in self.test_nets:
            # Caffe's ShareTrainedLayersWith: the test nets see the train net's blobs
            test_net.share_weights_with(self.net)
        self.train_module: torch.nn.Module = self.net
        # --weights wins over the solver's own `weights` field (as in caffe train)
        for path in weights or self.resolved.weights:
            self.copy_weights(path)
        self.params = [
            UpdateParam(e.tensor, float(e.lr_mult), float(e.decay_mult), f"{e.layer}[{e.index}]")
            for e in self.net.learnable_params()
        ]
        self.rule = make_rule(solver_type_name(param), self.params, Hyper.from_solver(param))
        self.iter = 0
        self.current_step = 0
        self.smoothed = SmoothedLoss(param.average_loss)
        self.best = (
            BestMetric(param.best_metric, param.best_mode) if param.best_metric else None
        )
        if self.best is not None:
            self._check_best_metric()
        self.snapshots: list[int] = []
        self._last_snapshot: int | None = None
        self._requests: set[str] = set()
        self._lock = threading.Lock()
        self._stop_reason: str | None = None
        #: batches read so far by the train net and each test net (restored on resume)
        self.train_rounds = 0
        self.test_rounds = [0] * len(self.test_nets)
        #: data-parallel ranks skip the other ranks' parts of each global batch
        self.skip_before = self.skip_after = 0

    # -- construction ---------------------------------------------------------------
    def _build(self, spec: NetSpec) -> Any:
        from dlp.engine.net import Net

        return Net(spec.param, spec.phase, stages=spec.stages, level=spec.level,
                   device=self.device, seed=self.seed, source=spec.source)

    def _check_best_metric(self) -> None:
        assert self.best is not None
        name = self.best.name.partition("[")[0]
        if not self.test_nets and self.parallel.is_root:
            raise InputError(f"{self.source}: field best_metric needs a test net (set test_iter)")
        outputs = [o for net in self.test_nets for o in net.output_names]
        if self.test_nets and name not in outputs:
            raise InputError(
                f"{self.source}: field best_metric: {self.best.name!r} is not a test net output "
                f"(outputs: {', '.join(outputs) or 'none'})"
            )

    def copy_weights(self, path: str | os.PathLike[str]) -> Any:
        """Fine-tune: copy same-named layers' blobs from a ``.caffemodel`` (Caffe's rule)."""
        from dlp.engine.weights import read_caffemodel

        weights = read_caffemodel(path)
        report = self.net.copy_from(weights)
        if report.mismatched:
            layer, index, expected, got = report.mismatched[0]
            raise InputError(
                f"{path}: layer {layer!r} blob #{index} has shape {tuple(got)} but the net "
                f"expects {tuple(expected)} (rename the layer to train it from scratch)"
            )
        if not report.matched and report.missing:
            raise InputError(
                f"--weights: {path}: no layer name matches net {self.net_name!r} (the file has "
                f"{', '.join(report.unused[:6]) or 'no weights'}); weights for another net?"
            )
        self.log.info(f"Copying weights from {path}: {report.summary()}")
        return report

    # -- requests from outside (signals, the GUI) -------------------------------------
    def request(self, action: str) -> None:
        """Ask for ``"stop"`` or ``"snapshot"`` after the current iteration (thread-safe)."""
        if action not in ACTIONS:
            raise ValueError(f"unknown solver action {action!r}; expected one of {ACTIONS}")
        with self._lock:
            self._requests.add(action)

    def _take_requests(self) -> set[str]:
        with self._lock:
            taken, self._requests = self._requests, set()
        return taken

    def _stop_pending(self) -> bool:
        with self._lock:
            return "stop" in self._requests

    # -- the loop -------------------------------------------------------------------
    def _zero_grads(self) -> None:
        for p in self.params:
            p.tensor.grad = None

    def _train_forward(self) -> dict[str, torch.Tensor]:
        if self.skip_before:
            skip_rounds(self.net, self.skip_before)
        blobs = self.train_module()
        if self.skip_after:
            skip_rounds(self.net, self.skip_after)
        self.train_rounds += 1 + self.skip_before + self.skip_after
        return blobs

    def _forward_backward(self) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        blobs = self._train_forward()
        loss = self.net.loss(blobs)
        if loss.requires_grad:
            loss.backward()
        return loss.detach(), blobs

    def _agree(self, stop: bool, snapshot: bool = False) -> tuple[bool, bool]:
        """Data-parallel ranks act together: a request on any rank (a signal, the
        root's early stop) applies to all, or DDP would wait forever for a rank."""
        if self.parallel.world_size == 1:
            return stop, snapshot
        import torch.distributed as dist

        flags = torch.tensor([int(stop), int(snapshot)], dtype=torch.int32, device=self.device)
        dist.all_reduce(flags, op=dist.ReduceOp.MAX)
        return bool(flags[0]), bool(flags[1])

    def _mean_over_ranks(self, value: torch.Tensor) -> torch.Tensor:
        """The loss averaged over data-parallel ranks (what one big batch would give)."""
        import torch.distributed as dist

        reduced = value.to(self.device, torch.float64)
        dist.all_reduce(reduced)
        return reduced.cpu() / self.parallel.world_size

    def _apply_update(self, display: bool) -> None:
        param = self.param
        rate, step = learning_rate(param, self.iter, self.current_step)
        if param.lr_policy == "multistep" and step != self.current_step:
            self.log.info(f"MultiStep Status: Iteration {self.iter}, step = {step}")
        self.current_step = step
        if display:
            self.log.lr(self.iter, rate)
        norm = clip_gradients(self.params, float(param.clip_gradients))
        if norm is not None:
            self.log.clipped(norm, float(param.clip_gradients))
        apply_update(
            self.params, self.rule, rate, self.iter,
            weight_decay=float(param.weight_decay),
            regularization=param.regularization_type,
            iter_size=int(param.iter_size),
        )

    def _diverged(self, loss: float) -> TrainingDiverged:
        last = (
            snapshot_files(self.resolved.snapshot_prefix, self._last_snapshot).caffemodel
            if self._last_snapshot is not None else None
        )
        kept = f"; the last good snapshot is {last}" if last else "; no snapshot was written"
        message = (
            f"Iteration {self.iter}: loss is {format_number(loss)}; training stopped "
            f"(lower base_lr or check the data){kept}"
        )
        return TrainingDiverged(message)

    def step(self, iters: int) -> None:
        """Run ``iters`` iterations (Caffe's ``Solver::Step``)."""
        with denormals_flushed():
            self._step(iters)

    def _step(self, iters: int) -> None:
        param = self.param
        stop_iter = self.iter + iters
        self.smoothed.start_iter = self.smoothed.start_iter if self.smoothed.losses else self.iter
        while self.iter < stop_iter:
            self._zero_grads()
            if (
                param.test_interval and self.iter % param.test_interval == 0
                and (self.iter > 0 or param.test_initialization)
            ):
                self.test_all()
                if self._agree(self._stop_reason is not None)[0]:
                    self._stop_reason = self._stop_reason or "early_stop"
                    break
            display = bool(param.display) and self.iter % param.display == 0
            total = torch.zeros((), dtype=torch.float64)
            blobs: dict[str, torch.Tensor] = {}
            for _ in range(param.iter_size):
                loss, blobs = self._forward_backward()
                total += loss.double().cpu()
            if self.parallel.world_size > 1:
                total = self._mean_over_ranks(total)
            loss_value = float(total) / param.iter_size
            if not math.isfinite(loss_value):
                raise self._diverged(loss_value)
            smoothed = self.smoothed.update(loss_value, self.iter)
            if display:
                self.log.train(self.iter, smoothed, output_values(self.net, blobs))
            self._apply_update(display)
            self.iter += 1
            report(self.progress, self.iter, param.max_iter, f"loss {smoothed:.4g}")
            requests = self._take_requests()
            stop, snapshot = self._agree("stop" in requests, "snapshot" in requests)
            if self.parallel.is_root and (
                (param.snapshot and self.iter % param.snapshot == 0) or snapshot
            ):
                self.snapshot()
            if stop:
                self._stop_reason = "stopped"
                break

    def solve(self, resume_from: str | os.PathLike[str] | None = None) -> SolveResult:
        """Train to ``max_iter`` (Caffe's ``Solver::Solve``), resuming from a snapshot."""
        param = self.param
        self.log.start(self.net_name, param.lr_policy, param.max_iter, iteration=self.iter)
        if resume_from is not None:
            self.log.info(f"Restoring previous solver status from {resume_from}")
            self.restore(resume_from)
            self.log.event("resume", self.iter, solverstate=str(resume_from))
        self._stop_reason = None
        self.step(param.max_iter - self.iter)
        stopped = self._stop_reason is not None
        if self.parallel.is_root and (
            (param.snapshot_after_train and (not param.snapshot or self.iter % param.snapshot))
            or stopped
        ):
            self.snapshot()
        if stopped:
            self.log.done(self.iter, self._stop_reason or "stopped")
            return self._result(self._stop_reason or "stopped")
        if param.display and self.iter % param.display == 0:
            with torch.no_grad():
                final = self.net.loss(self._train_forward()).detach().double().cpu()
            if self.parallel.world_size > 1:
                final = self._mean_over_ranks(final)
            loss = float(final)
            self.smoothed.update(loss, self.iter)
            self.log.line(f"Iteration {self.iter}, loss = {format_number(self.smoothed.value)}",
                          WHERE["solve"])
            self.log.event("train", self.iter, loss=self.smoothed.value, outputs={})
        if param.test_interval and self.iter % param.test_interval == 0:
            self.test_all()
        self.log.done(self.iter)
        return self._result("max_iter")

    def _result(self, reason: str) -> SolveResult:
        prefix = self.resolved.snapshot_prefix
        return SolveResult(self.iter, reason, [snapshot_files(prefix, i) for i in self.snapshots],
                           self.best)

    @property
    def net_name(self) -> str:
        return self.resolved.train_net.param.name or "net"

    # -- testing --------------------------------------------------------------------
    def test_all(self) -> list[list[OutputValues] | None]:
        results = []
        for net_id in range(len(self.test_nets)):
            if self._stop_pending():
                break
            results.append(self.test(net_id))
        if self.best is not None and results and self._stop_reason is None:
            self._track_best(results)
        return results

    def test(self, net_id: int = 0) -> list[OutputValues] | None:
        """Run test net ``net_id`` for its ``test_iter`` batches; log the mean outputs."""
        param = self.param
        net = self.test_nets[net_id]
        self.log.test_start(self.iter, net_id)
        iters = int(param.test_iter[net_id])
        sums: list[np.ndarray] | None = None
        names: list[str] = []
        weights: list[float] = []
        loss_sum = 0.0
        with torch.no_grad():
            for _ in range(iters):
                if self._stop_pending():
                    self.log.info("Test interrupted.")
                    return None
                blobs = net()
                self.test_rounds[net_id] += 1
                if param.test_compute_loss:
                    loss_sum += float(net.loss(blobs))
                outputs = output_values(net, blobs)
                values = [np.asarray(o.values, dtype=np.float64) for o in outputs]
                if sums is None:
                    sums = values
                    names = [o.name for o in outputs]
                    weights = [o.loss_weight for o in outputs]
                else:
                    sums = [s + v for s, v in zip(sums, values, strict=True)]
        means = [
            OutputValues(n, tuple((s / iters).tolist()), w)
            for n, s, w in zip(names, sums or [], weights, strict=True)
        ]
        self.log.test(self.iter, net_id, means,
                      loss=loss_sum / iters if param.test_compute_loss else None)
        return means

    def _track_best(self, results: list[list[OutputValues] | None]) -> None:
        best = self.best
        assert best is not None
        value = None
        for outputs in results:
            if outputs is not None:
                value = metric_value(outputs, best.name)
                if value is not None:
                    break
        if value is None:
            return
        if best.better(value):
            best.value, best.iteration = value, self.iter
            best.rounds_without_improvement = 0
            files = None
            if self.iter > 0 and self.parallel.is_root:
                files = self.snapshot()
            self.log.best(self.iter, best.name, value, files.caffemodel if files else None)
            return
        best.rounds_without_improvement += 1
        if self.param.early_stop_rounds and (
            best.rounds_without_improvement >= self.param.early_stop_rounds
        ):
            self.log.info(
                f"Early stop: {best.name} did not improve for "
                f"{best.rounds_without_improvement} test rounds (best "
                f"{format_number(best.value or 0.0)} at iteration {best.iteration})"
            )
            self._stop_reason = "early_stop"

    # -- snapshots ------------------------------------------------------------------
    def snapshot(self) -> SnapshotFiles:
        """Write ``PREFIX_iter_N.caffemodel`` + ``.solverstate`` (+ ``.dlpstate``)."""
        from dlp.engine.weights import write_caffemodel

        files = snapshot_files(self.resolved.snapshot_prefix, self.iter)
        if self._last_snapshot == self.iter:
            return files
        self.log.snapshot_model(files.caffemodel)
        write_caffemodel(self.net.to_net_parameter(with_weights=True), files.caffemodel)
        self.log.snapshot_state(files.solverstate)
        if self.iter not in self.snapshots:
            self.snapshots.append(self.iter)
        write_dlpstate(files.dlpstate, self._resume_state())
        write_solverstate(files.solverstate, self.iter, files.caffemodel, self.rule.history,
                          self.current_step)
        self._last_snapshot = self.iter
        self.log.snapshot(self.iter, files.caffemodel, files.solverstate)
        self._prune()
        return files

    def _prune(self) -> None:
        keep = self.param.keep_last_snapshots
        if keep <= 0 or len(self.snapshots) <= keep:
            return
        best_iter = self.best.iteration if self.best is not None else None
        recent = set(self.snapshots[-keep:])
        for iteration in list(self.snapshots):
            if iteration in recent or iteration == best_iter:
                continue
            remove_snapshot(snapshot_files(self.resolved.snapshot_prefix, iteration))
            self.snapshots.remove(iteration)

    def _resume_state(self) -> dict[str, Any]:
        best = self.best
        return {
            "format": 1,
            "iter": self.iter,
            "net": self.net_name,
            "rng": rng_state(),
            "train_rounds": self.train_rounds,
            "test_rounds": list(self.test_rounds),
            "smoothed_loss": self.smoothed.state(),
            "best": None if best is None else {
                "name": best.name, "value": best.value, "iteration": best.iteration,
                "rounds": best.rounds_without_improvement,
            },
            "snapshots": list(self.snapshots),
        }

    def restore(self, path: str | os.PathLike[str]) -> None:
        """Continue from a ``.solverstate`` (Caffe's ``Restore``), exactly if it has a
        ``.dlpstate`` beside it.  A snapshot of a different net is refused, naming
        the first blob that does not fit."""
        from dlp.engine.weights import blob_to_array, read_caffemodel

        path = Path(path)
        state = read_solverstate(path)
        model_path = learned_net_path(state, path)
        weights = read_caffemodel(model_path)
        report = self.net.copy_from(weights)
        if report.mismatched or report.missing:
            detail = (
                f"layer {report.mismatched[0][0]!r} has other shapes" if report.mismatched
                else f"layer {report.missing[0]!r} has no weights in it"
            )
            raise SnapshotError(
                f"{path}: field learned_net: {model_path.name} is a snapshot of a different "
                f"net ({detail}); resume needs the net it was trained with"
            )
        history = list(state.history)
        if len(history) != len(self.rule.history):
            raise SnapshotError(
                f"{path}: field history: {len(history)} blobs, but the "
                f"{solver_type_name(self.param)} solver of this net keeps "
                f"{len(self.rule.history)}; the snapshot is from a different net or solver type"
            )
        arrays = [blob_to_array(blob) for blob in history]
        for index, (array, tensor) in enumerate(zip(arrays, self.rule.history, strict=True)):
            if array.size != tensor.numel():
                raise SnapshotError(
                    f"{path}: field history: blob #{index} has {array.size} values but the "
                    f"net's parameter expects {tensor.numel()}; the snapshot is from a "
                    "different net"
                )
        with torch.no_grad():
            for array, tensor in zip(arrays, self.rule.history, strict=True):
                tensor.copy_(torch.from_numpy(array).reshape(tensor.shape))
        self.iter = int(state.iter)
        self.current_step = int(state.current_step)
        self._last_snapshot = self.iter
        side = read_dlpstate(path.with_suffix(".dlpstate"))
        if side is None:
            self.log.warning(
                f"{path}: no .dlpstate beside it; data order and random state start afresh"
            )
            self.smoothed = SmoothedLoss(self.param.average_loss)
            self.smoothed.start_iter = self.iter
            return
        set_rng_state(side["rng"])
        self.train_rounds = int(side["train_rounds"])
        skip_rounds(self.net, self.train_rounds)
        for index, rounds in enumerate(side.get("test_rounds", [])[: len(self.test_nets)]):
            self.test_rounds[index] = int(rounds)
            skip_rounds(self.test_nets[index], int(rounds))
        self.smoothed.load(side["smoothed_loss"])
        self.snapshots = [int(i) for i in side.get("snapshots", [])]
        if self.best is not None and side.get("best"):
            saved = side["best"]
            self.best.value, self.best.iteration = saved["value"], saved["iteration"]
            self.best.rounds_without_improvement = int(saved["rounds"])

    def close(self) -> None:
        """Stop the nets' data prefetch workers."""
        for net in [self.net, *self.test_nets]:
            close = getattr(net, "close", None)
            if callable(close):
                close()
