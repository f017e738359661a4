"""``python -m dlp time``: per-layer forward/backward times, printed as ``caffe time`` does."""

from __future__ import annotations

import argparse

HELP = "time a net's forward and backward passes per layer (like `caffe time`)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="the net .prototxt")
    parser.add_argument("--iterations", type=int, default=50, help="timed iterations (default 50)")
    parser.add_argument("--weights", default=None, help="optional .caffemodel to load first")
    from dlp.engine.solver.tools import add_net_options

    add_net_options(parser, phase="TRAIN")


def run(args: argparse.Namespace) -> int:
    from dlp.engine.solver.logwriter import format_number
    from dlp.engine.solver.timing import time_net
    from dlp.engine.solver.tools import net_from_options

    log, net = net_from_options(args)
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
