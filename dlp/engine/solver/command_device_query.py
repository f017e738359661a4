"""``python -m dlp device_query``: what the engine can train on (like ``caffe device_query``)."""

from __future__ import annotations

import argparse

HELP = "show the compute devices DLP can use (like `caffe device_query`)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--gpu", default=None,
                        help="CUDA device id(s), comma-separated, or 'all' (default: all)")


def device_lines(gpu: str | None = None) -> list[str]:
    """One ``Field: value`` line per property, Caffe's layout, for the CPU and each GPU."""
    import os
    import platform

    import torch

    from dlp.errors import InputError

    lines = [
        f"PyTorch version:               {torch.__version__}",
        f"CPU:                           {platform.processor() or platform.machine()}",
        f"CPU cores available:           {len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()}",  # noqa: E501
        f"Torch CPU threads:             {torch.get_num_threads()}",
        f"CUDA available:                {'yes' if torch.cuda.is_available() else 'no'}",
    ]
    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if gpu in (None, "all"):
        ids = list(range(count))
    else:
        try:
            ids = [int(g) for g in gpu.split(",") if g]
        except ValueError:
            raise InputError(f"--gpu {gpu}: expected device ids like 0 or 0,1, or 'all'") from None
        for device_id in ids:
            if device_id >= count:
                raise InputError(f"--gpu {gpu}: device {device_id} not found ({count} CUDA "
                                 "device(s) on this machine)")
    for device_id in ids:
        props = torch.cuda.get_device_properties(device_id)
        lines += [
            f"Device id:                     {device_id}",
            f"Major revision number:         {props.major}",
            f"Minor revision number:         {props.minor}",
            f"Name:                          {props.name}",
            f"Total global memory:           {props.total_memory}",
            f"Number of multiprocessors:     {props.multi_processor_count}",
        ]
    return lines


def run(args: argparse.Namespace) -> int:
    import sys

    from dlp.engine.solver.logwriter import LogWriter

    log = LogWriter(sys.stderr)
    for line in device_lines(args.gpu):
        log.info(line)
    return 0
