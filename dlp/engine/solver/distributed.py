"""Data-parallel training with PyTorch's DistributedDataParallel.

Two ways in: ``dlp train --gpu all`` spawns one process per CUDA device, or an
external ``torchrun --nproc_per_node N -m dlp train ...`` launch (detected from its
``WORLD_SIZE``/``RANK`` environment).  NCCL is used on GPUs, gloo on the CPU.

Like Caffe's multi-GPU training, each process runs the net with the solver's
``batch_size`` and the effective batch is ``batch_size * world_size``: process r
reads the r-th part of every global batch, the gradients are averaged by DDP, and
only rank 0 tests, logs and snapshots.
"""

from __future__ import annotations

import argparse
import os
import socket

import torch
import torch.distributed as dist

from dlp.engine.solver.solver import DataParallel, Solver
from dlp.errors import InputError


def wants_all_gpus(gpu: str | None) -> bool:
    return gpu is not None and gpu.strip().lower() == "all"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def init_process(gpu: str | None = None) -> DataParallel:
    """Join the process group when launched by torchrun or :func:`launch_all_gpus`."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DataParallel()
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", str(rank)))
    use_cuda = torch.cuda.is_available() and os.environ.get("DLP_DIST_BACKEND") != "gloo"
    backend = "nccl" if use_cuda else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend=backend, rank=rank, world_size=world)
    device = f"cuda:{local_rank}" if use_cuda else "cpu"
    if use_cuda:
        torch.cuda.set_device(local_rank)
    return DataParallel(rank=rank, world_size=world, device=device)


def shutdown_process(parallel: DataParallel) -> None:
    if parallel.world_size > 1 and dist.is_initialized():
        dist.destroy_process_group()


def wrap_data_parallel(solver: Solver, parallel: DataParallel) -> None:
    """Give this rank its part of each global batch and route the net through DDP.

    Every rank walks the same seeded record stream; rank r trains on batch r of each
    group of ``world_size`` consecutive batches and skips the others, so together the
    ranks see exactly the batches one process with ``batch_size * world_size`` would.
    """
    from torch.nn.parallel import DistributedDataParallel

    if solver.param.random_seed < 0:
        raise InputError(
            f"{solver.source}: field random_seed: data-parallel training needs a fixed "
            "random_seed so every process reads the same record order"
        )
    solver.skip_before = parallel.rank
    solver.skip_after = parallel.world_size - 1 - parallel.rank
    device_ids = [solver.device.index] if solver.device.type == "cuda" else None
    solver.train_module = DistributedDataParallel(solver.net, device_ids=device_ids)


def _spawned(index: int, args: argparse.Namespace, world: int, port: int) -> None:
    from dlp.engine.solver.command_train import train

    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), WORLD_SIZE=str(world),
        RANK=str(index), LOCAL_RANK=str(index),
    )
    code = train(args)
    if code:
        raise SystemExit(code)


def launch_all_gpus(args: argparse.Namespace, world: int | None = None) -> int:
    """``--gpu all``: one process per CUDA device (or ``world`` CPU processes on gloo)."""
    import sys

    import torch.multiprocessing as mp

    from dlp.engine.solver.command_train import train

    if world is None:
        world = torch.cuda.device_count()
    if world <= 1:
        if world == 0:
            print("dlp train: --gpu all: no CUDA device; training on the CPU", file=sys.stderr)
        args.gpu = "0" if world == 1 else None
        return train(args)
    args.gpu = None
    mp.spawn(_spawned, args=(args, world, _free_port()), nprocs=world, join=True)
    return 0
