"""``python -m dlp train``: train a net from a solver file, like ``caffe train``."""

from __future__ import annotations

import argparse

HELP = "train a net from a solver.prototxt (like `caffe train`)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--solver", required=True, help="the solver.prototxt")
    parser.add_argument(
        "--weights", default=None,
        help="comma-separated .caffemodel files to fine-tune from (same-named layers copied)",
    )
    parser.add_argument("--snapshot", default=None, help="a .solverstate to resume from")
    parser.add_argument(
        "--gpu", default=None,
        help="CUDA device id, or 'all' for data-parallel training on every GPU "
        "(default: the solver's solver_mode/device_id)",
    )
    parser.add_argument("--sigint_effect", default="stop", choices=("stop", "snapshot", "none"),
                        help="on SIGINT/SIGTERM: stop (after a snapshot), snapshot, or none")
    parser.add_argument("--sighup_effect", default="snapshot",
                        choices=("stop", "snapshot", "none"), help="on SIGHUP")
    parser.add_argument("--log", default=None,
                        help="also write the log to this file and events to LOG.jsonl")
    parser.add_argument("--stage", default="",
                        help="comma-separated train net stages (added to train_state)")
    parser.add_argument("--level", type=int, default=None, help="train net level")


def run(args: argparse.Namespace) -> int:
    import sys

    from dlp.engine.solver.distributed import launch_all_gpus, wants_all_gpus

    if args.snapshot and args.weights:
        from dlp.errors import InputError

        raise InputError("give either --snapshot (resume) or --weights (fine-tune), not both")
    if wants_all_gpus(args.gpu):
        return launch_all_gpus(args)
    return train(args, stream=sys.stderr)


def train(args: argparse.Namespace, stream=None) -> int:
    """One training process (the only one, one rank of torchrun, or one spawned GPU)."""
    import sys
    from pathlib import Path

    from dlp.engine.solver.distributed import init_process, shutdown_process
    from dlp.engine.solver.logwriter import LogWriter
    from dlp.engine.solver.signals import SignalHandler
    from dlp.errors import DLPError
    from dlp.net.prototxt import read_solver
    from dlp.progress import terminal_progress

    solver_path = Path(args.solver)
    parallel = init_process(args.gpu)
    log = LogWriter(stream if stream is not None else sys.stderr, args.log,
                    enabled=parallel.is_root)
    solver = None
    try:
        if not solver_path.exists():
            raise DLPError(f"--solver: file {str(solver_path)!r} not found")
        param = read_solver(solver_path)
        # caffe train's --stage/--level go into the solver's train_state
        for stage in (s for s in getattr(args, "stage", "").split(",") if s):
            param.train_state.stage.append(stage)
        if getattr(args, "level", None) is not None:
            param.train_state.level = args.level
        device = parallel.device or select_device(param, args.gpu, log)
        weights = [w for w in (args.weights or "").split(",") if w]
        with terminal_progress("Training", stream=sys.stdout) as progress:
            from dlp.engine.solver.solver import Solver

            solver = Solver(
                param, solver_dir=solver_path.resolve().parent, solver_path=solver_path,
                device=device, weights=weights, log=log,
                progress=progress if parallel.is_root else None, parallel=parallel,
            )
            if parallel.world_size > 1:
                from dlp.engine.solver.distributed import wrap_data_parallel

                wrap_data_parallel(solver, parallel)
            with SignalHandler(solver.request, args.sigint_effect, args.sighup_effect):
                solver.solve(resume_from=args.snapshot)
        return 0
    except DLPError as exc:
        log.failure(solver.iter if solver is not None else 0, str(exc), to_stream=False)
        raise
    finally:
        if solver is not None:
            solver.close()
        log.close()
        shutdown_process(parallel)


def select_device(param, gpu: str | None, log) -> str:
    """``--gpu N`` > the solver's ``solver_mode``/``device_id`` > CPU, as ``caffe train``."""
    import torch

    from dlp.errors import InputError

    if gpu is not None:
        ids = [g for g in gpu.split(",") if g]
        if not torch.cuda.is_available():
            raise InputError(f"--gpu {gpu}: no CUDA device on this machine (omit --gpu for CPU)")
        if len(ids) != 1 or not ids[0].isdigit():
            raise InputError(f"--gpu {gpu}: expected one device id or 'all'")
        if int(ids[0]) >= torch.cuda.device_count():
            raise InputError(
                f"--gpu {gpu}: only {torch.cuda.device_count()} CUDA device(s) available"
            )
        return f"cuda:{ids[0]}"
    if param.solver_mode == param.GPU:
        if torch.cuda.is_available():
            return f"cuda:{param.device_id}"
        if param.HasField("solver_mode"):
            log.warning("solver_mode GPU but no CUDA device is available; training on the CPU")
    return "cpu"
