"""What every benchmark shares: the figure it reports and a robust timer.

Absolute times on shared machines are noise, so each figure is a ratio of two
measurements taken in the same run, interleaved, with the median of repeats.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass


@dataclass(frozen=True)
class Figure:
    """One benchmark result: ``value`` compared with ``target`` (``<=`` or ``>=``)."""

    name: str
    value: float
    target: float | None = None
    direction: str = "<="  # "<=" when smaller is better, ">=" when larger is
    detail: str = ""

    @property
    def met(self) -> bool | None:
        if self.target is None:
            return None
        return self.value <= self.target if self.direction == "<=" else self.value >= self.target

    def line(self) -> str:
        verdict = {None: "", True: "  [met]", False: "  [MISSED]"}[self.met]
        target = f"  (target {self.direction} {self.target:g})" if self.target is not None else ""
        detail = f"  — {self.detail}" if self.detail else ""
        return f"{self.name}: {self.value:.3f}{target}{verdict}{detail}"


def median_time(fn: Callable[[], object], repeats: int = 5, warmup: int = 1) -> float:
    """Median wall time of ``fn()`` in seconds over ``repeats`` calls after ``warmup``."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def interleaved_ratio(
    candidate: Callable[[], object], reference: Callable[[], object], repeats: int = 5
) -> tuple[float, float, float]:
    """Time ``candidate`` and ``reference`` alternately; return (ratio, t_cand, t_ref).

    Alternating the two cancels drift from other load on the machine.
    """
    candidate()
    reference()
    cand, ref = [], []
    for _ in range(repeats):
        start = time.perf_counter()
        candidate()
        cand.append(time.perf_counter() - start)
        start = time.perf_counter()
        reference()
        ref.append(time.perf_counter() - start)
    t_cand, t_ref = statistics.median(cand), statistics.median(ref)
    return t_cand / t_ref, t_cand, t_ref
