"""Live curves equal the parser's whole-log curves; smoothing; CSV round trip."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from dlp.train.curves import (
    GrowingSeries,
    LiveCurves,
    Smoother,
    best_point,
    read_curves_csv,
    smooth,
    write_curves_csv,
)
from dlp.train.log import LogParser, curves, parse_log

SAMPLE = Path(__file__).parent / "data" / "caffe_train_two_test_nets_restart.log"

# Our solver's format with per-class outputs, a NaN and a resumed segment.
OWN_LOG = """\
I1123 10:00:00.000001  7 solver.cpp:310] Solving tiny
I1123 10:00:00.000002  7 solver.cpp:362] Iteration 0, Testing net (#0)
I1123 10:00:00.000003  7 solver.cpp:429]     Test net output #0: dice = 0.1
I1123 10:00:00.000004  7 solver.cpp:429]     Test net output #1: dice_per_class = 0.9
I1123 10:00:00.000005  7 solver.cpp:429]     Test net output #2: dice_per_class = 0.1
I1123 10:00:00.000006  7 solver.cpp:243] Iteration 0, loss = 0.7
I1123 10:00:00.000007  7 solver.cpp:259]     Train net output #0: loss = 0.7 (* 1 = 0.7 loss)
I1123 10:00:00.000008  7 sgd_solver.cpp:138] Iteration 0, lr = 0.01
I1123 10:00:00.000009  7 solver.cpp:243] Iteration 10, loss = nan
I1123 10:00:00.000010  7 solver.cpp:362] Iteration 20, Testing net (#0)
I1123 10:00:00.000011  7 solver.cpp:429]     Test net output #0: dice = 0.5
I1123 10:00:00.000012  7 solver.cpp:429]     Test net output #1: dice_per_class = 0.95
I1123 10:00:00.000013  7 solver.cpp:429]     Test net output #2: dice_per_class = 0.5
I1123 10:00:00.000014  7 solver.cpp:243] Iteration 20, loss = 0.4
I1123 10:00:00.000015  7 solver.cpp:310] Solving tiny
I1123 10:00:00.000016  7 solver.cpp:243] Iteration 20, loss = 0.35
I1123 10:00:00.000017  7 solver.cpp:243] Iteration 30, loss = 0.3
"""


def _live(lines: list[str], chunk: int) -> LiveCurves:
    """Feed lines in chunks, flushing between chunks as the GUI does when a poll is idle."""
    live, parser = LiveCurves(), LogParser()
    for start in range(0, len(lines), chunk):
        for line in lines[start:start + chunk]:
            live.feed(parser.feed(line))
    live.flush()
    return live


def _same(a: dict, b: dict) -> None:
    assert set(a) == set(b)
    for name in a:
        assert a[name][0] == b[name][0], name
        assert a[name][1] == pytest.approx(b[name][1], nan_ok=True), name


@pytest.mark.parametrize("chunk", [1, 7, 10_000])
def test_live_curves_equal_the_parsers_curves_on_a_real_caffe_log(chunk):
    lines = SAMPLE.read_text().splitlines()
    _same(_live(lines, chunk).as_dict(), curves(parse_log(SAMPLE)))


def test_live_curves_name_per_class_outputs_and_follow_a_restart():
    lines = OWN_LOG.splitlines()
    live = _live(lines, 3)
    expected = curves(LogParser().feed_lines(lines))
    _same(live.as_dict(), expected)
    # the resumed segment starts at 20: everything logged at >= 20 before it is dropped
    assert live.as_dict()["test/dice_per_class[1]"] == ([0], [0.1])
    assert live.as_dict()["loss"][0] == [0, 10, 20, 30]  # the resumed 20 replaced the old
    assert live.as_dict()["loss"][1][2] == 0.35
    assert live.value_at("test/dice", 0) == 0.1 and live.value_at("test/dice", 20) is None


def test_growing_series_doubles_and_truncates():
    series = GrowingSeries(capacity=2)
    for i in range(1000):
        series.append(i, i * 2.0)
    assert len(series) == 1000 and series.y[-1] == 1998.0
    generation = series.generation
    series.truncate_from(500)
    assert len(series) == 500 and series.x[-1] == 499 and series.generation == generation + 1


def test_smoothing_is_a_debiased_ema_that_skips_nan():
    values = np.array([1.0, 2.0, math.nan, 4.0])
    out = smooth(values, 0.5)
    assert out[0] == pytest.approx(1.0)  # debiased: the first point is itself
    assert out[1] == pytest.approx((0.25 * 1 + 0.5 * 2) / 0.75)
    assert math.isnan(out[2])
    ema = 0.5 * (0.25 * 1 + 0.5 * 2) + 0.5 * 4
    assert out[3] == pytest.approx(ema / (1 - 0.5 ** 3))
    assert list(smooth(values, 0.0)[[0, 1, 3]]) == [1.0, 2.0, 4.0]


def test_incremental_smoothing_equals_smoothing_everything():
    rng = np.random.default_rng(0)
    values = rng.normal(size=500)
    smoother = Smoother(0.9)
    for end in (1, 10, 250, 500):
        partial = smoother.update(values[:end])
    assert partial == pytest.approx(smooth(values, 0.9))
    # a truncated curve (generation bumped) is smoothed again from its start
    other = rng.normal(size=100)
    assert smoother.update(other, generation=1) == pytest.approx(smooth(other, 0.9))
    with pytest.raises(ValueError):
        Smoother(1.0)


def test_best_point_by_mode():
    assert best_point(([0, 10, 20], [0.2, float("nan"), 0.9]), "max") == (20, 0.9)
    assert best_point(([0, 10, 20], [0.2, 0.1, 0.9]), "min") == (10, 0.1)
    assert best_point(([0], [float("nan")]), "max") is None


def test_csv_round_trip(tmp_path):
    data = curves(parse_log(SAMPLE))
    path = write_curves_csv(data, tmp_path / "out" / "curves.csv")
    back = read_curves_csv(path)
    _same({k: v for k, v in back.items() if v[0]}, data)
    header = path.read_text().splitlines()[0]
    assert header.startswith("iteration,") and "test/accuracy" in header
