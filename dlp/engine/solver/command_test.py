"""``python -m dlp test``: score a trained net on its TEST-phase data, like ``caffe test``."""

from __future__ import annotations

import argparse

HELP = "score a trained model on its TEST-phase data (like `caffe test`)"


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, help="the net .prototxt (train_val)")
    parser.add_argument("--weights", required=True, help="the trained .caffemodel")
    parser.add_argument("--iterations", type=int, default=50, help="batches to run (default 50)")
    from dlp.engine.solver.tools import add_net_options

    add_net_options(parser, phase="TEST")


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from dlp.engine.solver.logwriter import OutputValues, format_number
    from dlp.engine.solver.solver import output_values
    from dlp.engine.solver.tools import net_from_options

    log, net = net_from_options(args)
    try:
        log.info(f"Running for {args.iterations} iterations.")
        sums: list[np.ndarray] = []
        names: list[OutputValues] = []
        loss_total = 0.0
        with torch.no_grad():
            for batch in range(args.iterations):
                blobs = net()
                loss_total += float(net.loss(blobs))
                outputs = output_values(net, blobs)
                for output in outputs:
                    for value in output.values:
                        log.info(f"Batch {batch}, {output.name} = {format_number(value)}")
                values = [np.asarray(o.values, dtype=np.float64) for o in outputs]
                if not sums:
                    sums, names = values, outputs
                else:
                    sums = [s + v for s, v in zip(sums, values, strict=True)]
        log.info(f"Loss: {format_number(loss_total / args.iterations)}")
        for output, total in zip(names, sums, strict=True):
            for value in total / args.iterations:
                suffix = ""
                if output.loss_weight:
                    weighted = format_number(output.loss_weight * value)
                    suffix = f" (* {format_number(output.loss_weight)} = {weighted} loss)"
                log.info(f"{output.name} = {format_number(float(value))}{suffix}")
    finally:
        close = getattr(net, "close", None)
        if callable(close):
            close()
    return 0
