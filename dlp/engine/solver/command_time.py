"""``python -m dlp time``: per-layer forward/backward times, printed as ``caffe time`` does."""

from __future__ import annotations

import argparse

HELP = "time a net's forward and backward passes per layer (like `caffe time`)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="the net .prototxt")
    parser.add_argument("--iterations", type=int, default=50, help="timed iterations (default 50)")
    parser.add_argument("--weights", default=None, help="optional .caffemodel to load first")
    parser.add_argument("--gpu", default=None, help="CUDA device id (default: CPU)")
    parser.add_argument("--phase", default="TRAIN", choices=("TRAIN", "TEST"))
    parser.add_argument("--stage", default="", help="comma-separated net stages")
    parser.add_argument("--level", type=int, default=0, help="net level")


def run(args: argparse.Namespace) -> int:
    import sys

    from dlp.engine.solver.logwriter import LogWriter, format_number
    from dlp.engine.solver.timing import time_net
    from dlp.engine.solver.tools import build_net, device_for
    from dlp.errors import InputError

    if args.iterations <= 0:
        raise InputError(f"--iterations must be > 0 (got {args.iterations})")
    log = LogWriter(sys.stderr)
    net = build_net(args.model, args.phase, args.stage, args.level, device_for(args.gpu),
                    weights=args.weights, log=log)
    try:
        log.info("Performing Forward")
        timing = time_net(net, args.iterations, log=log)
        ms = format_number
        log.info("Average time per layer: ")
        for name, forward, backward in timing.layers:
            log.info(f"{name:>10}\tforward: {ms(forward)} ms.")
            log.info(f"{name:>10}\tbackward: {ms(backward)} ms.")
        log.info(f"Average Forward pass: {ms(timing.forward)} ms.")
        log.info(f"Average Backward pass: {ms(timing.backward)} ms.")
        log.info(f"Average Forward-Backward: {ms(timing.total)} ms.")
        log.info(f"Total Time: {ms(timing.total * args.iterations)} ms.")
        log.info("*** Benchmark ends ***")
    finally:
        close = getattr(net, "close", None)
        if callable(close):
            close()
    return 0
