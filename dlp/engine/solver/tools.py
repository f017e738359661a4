"""What ``dlp test`` and ``dlp time`` share: building one net from a prototxt on a device."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from dlp.errors import InputError


def add_net_options(parser: argparse.ArgumentParser, *, phase: str) -> None:
    """The options ``dlp test`` and ``dlp time`` share to pick the net and its device."""
    parser.add_argument("--gpu", default=None, help="CUDA device id (default: CPU)")
    parser.add_argument("--phase", default=phase, choices=("TRAIN", "TEST"))
    parser.add_argument("--stage", default="", help="comma-separated net stages")
    parser.add_argument("--level", type=int, default=0, help="net level")


def net_from_options(args: argparse.Namespace) -> tuple[Any, Any]:
    """``(log, net)`` for ``dlp test``/``dlp time``: the options checked, the net built
    on its device with its weights, the log on stderr."""
    import sys

    from dlp.engine.solver.logwriter import LogWriter

    if args.iterations <= 0:
        raise InputError(f"--iterations must be > 0 (got {args.iterations})")
    log = LogWriter(sys.stderr)
    net = build_net(args.model, args.phase, args.stage, args.level, device_for(args.gpu),
                    weights=args.weights, log=log)
    return log, net


def device_for(gpu: str | None) -> str:
    """``--gpu N`` -> ``cuda:N`` (checked); no flag -> the CPU."""
    import torch

    if gpu is None:
        return "cpu"
    if not torch.cuda.is_available():
        raise InputError(f"--gpu {gpu}: no CUDA device on this machine (omit --gpu for CPU)")
    if not gpu.isdigit() or int(gpu) >= torch.cuda.device_count():
        raise InputError(f"--gpu {gpu}: expected a device id below {torch.cuda.device_count()}")
    return f"cuda:{gpu}"


def build_net(
    model: str | os.PathLike[str],
    phase: str,
    stage: str,
    level: int,
    device: str,
    *,
    weights: str | os.PathLike[str] | None = None,
    log: Any = None,
) -> Any:
    """Read ``model``, check its data sources, build it and copy ``weights`` into it."""
    from dlp.engine.net import Net
    from dlp.engine.solver.resolve import NetSpec, check_data_sources
    from dlp.memory import tune_allocator
    from dlp.net.prototxt import read_net

    tune_allocator()  # `dlp test` and `dlp time` loop over the net like training does
    path = Path(model)
    if not path.exists():
        raise InputError(f"--model: file {str(path)!r} not found")
    stages = tuple(s for s in stage.split(",") if s)
    spec = NetSpec(read_net(path), phase, stages, level, str(path))
    notes: list[str] = []
    check_data_sources(spec, [("the current directory", Path.cwd())], notes)
    for note in notes:
        if log is not None:
            log.warning(note)
    net = Net(spec.param, phase, stages=stages, level=level, device=device, source=str(path))
    if weights is not None:
        from dlp.engine.weights import load_weights

        if not Path(weights).exists():
            raise InputError(f"--weights: file {str(weights)!r} not found")
        report = load_weights(net, weights)  # refuses weights that fit no layer
        if report.mismatched:
            layer, index, expected, got = report.mismatched[0]
            raise InputError(
                f"{weights}: layer {layer!r} blob #{index} has shape {tuple(got)}, the net "
                f"expects {tuple(expected)}"
            )
        if log is not None:
            log.info(f"Copying weights from {weights}: {report.summary()}")
    return net
