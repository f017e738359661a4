"""Per-layer forward/backward times of a net (what ``caffe time`` reports).

Forward time is measured around each layer module's ``forward`` with hooks.  The
backward pass runs inside autograd, so a layer's backward is timed from the moment
the gradient of its top arrives (a tensor hook) to the moment the next layer's
gradient arrives — on a sequential CPU (or synchronised GPU) backward that is the
time spent in that layer's backward.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import torch


@dataclass(frozen=True)
class NetTiming:
    """Average milliseconds per iteration; ``layers`` is ``(name, forward, backward)``."""

    layers: list[tuple[str, float, float]]
    forward: float
    backward: float
    total: float


def _layer_modules(net: Any) -> list[tuple[str, torch.nn.Module]]:
    found = [
        (str(module.layer_name), module)
        for module in net.modules()
        if module is not net and isinstance(getattr(module, "layer_name", None), str)
    ]
    order = {name: i for i, name in enumerate(getattr(net, "layer_names", []))}
    return sorted(found, key=lambda item: order.get(item[0], len(order)))


def time_net(net: Any, iterations: int, log: Any = None) -> NetTiming:
    """Run ``iterations`` forward+backward passes of ``net`` and time every layer."""
    sync = torch.cuda.synchronize if any(
        p.is_cuda for p in net.parameters()
    ) else (lambda: None)
    layers = _layer_modules(net)
    forward_ms: dict[str, float] = defaultdict(float)
    backward_ms: dict[str, float] = defaultdict(float)
    starts: dict[str, float] = {}
    grad_events: list[tuple[float, str]] = []
    seen_grad: set[str] = set()

    def pre(name: str):
        def hook(module: torch.nn.Module, inputs: Any) -> None:
            sync()
            starts[name] = time.perf_counter()
        return hook

    def post(name: str):
        def on_grad(grad: torch.Tensor) -> None:
            if name not in seen_grad:
                seen_grad.add(name)
                sync()
                grad_events.append((time.perf_counter(), name))

        def hook(module: torch.nn.Module, inputs: Any, outputs: Any) -> None:
            sync()
            forward_ms[name] += (time.perf_counter() - starts[name]) * 1000
            tops = outputs if isinstance(outputs, (tuple, list)) else (outputs,)
            for top in tops:
                if isinstance(top, torch.Tensor) and top.requires_grad:
                    top.register_hook(on_grad)
        return hook

    # Input blobs (a deploy net) get zeros of their declared shape, as Caffe's are.
    inputs = {
        name: torch.zeros(net.blob_shapes[name], device=net.device)
        for name in getattr(net, "input_names", [])
    } or None
    # Caffe's "Initial loss" pass, untimed: it also starts the data prefetch.
    blobs = net(inputs)
    loss = net.loss(blobs)
    if log is not None:
        log.info(f"Initial loss: {float(loss.detach()):.6g}")
        log.info("Performing Backward")
    if loss.requires_grad:
        loss.backward()
    if log is not None:
        log.info("*** Benchmark begins ***")
        log.info(f"Testing for {iterations} iterations.")

    handles = []
    for name, module in layers:
        handles.append(module.register_forward_pre_hook(pre(name)))
        handles.append(module.register_forward_hook(post(name)))
    total_forward = total_backward = 0.0
    try:
        for iteration in range(iterations):
            net.zero_grad(set_to_none=True)
            grad_events.clear()
            seen_grad.clear()
            sync()
            start = time.perf_counter()
            blobs = net(inputs)
            loss = net.loss(blobs)
            sync()
            middle = time.perf_counter()
            if loss.requires_grad:
                loss.backward()
            sync()
            end = time.perf_counter()
            total_forward += (middle - start) * 1000
            total_backward += (end - middle) * 1000
            events = sorted(grad_events)
            for i, (stamp, name) in enumerate(events):
                until = events[i + 1][0] if i + 1 < len(events) else end
                backward_ms[name] += (until - stamp) * 1000
            if log is not None:
                log.info(
                    f"Iteration: {iteration + 1} forward-backward time: "
                    f"{(end - start) * 1000:.6g} ms."
                )
    finally:
        for handle in handles:
            handle.remove()
    n = float(iterations)
    return NetTiming(
        [(name, forward_ms[name] / n, backward_ms[name] / n) for name, _ in layers],
        total_forward / n,
        total_backward / n,
        (total_forward + total_backward) / n,
    )
