"""Train tab benchmarks (issue 7), each measured next to its reference in the same run.

- ``train_gui.timer_delay_training_ms``: the worst lateness of a 10 ms QTimer while the
  Train tab follows a real ``dlp train`` whose log streams at >= 50 lines/s (every
  iteration displayed), printed beside the same measurement with the solver paused
  (SIGSTOP), in interleaved 1 s windows; target <= 50 ms.
- ``train_gui.redraw_100k_ms``: paint time of the curves widget holding 4 curves of
  100,000 points each (median of repeats), beside the paint time with 1,000 points;
  target <= 16 ms.
"""

from __future__ import annotations

import os
import signal
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from bench.common import Figure

WINDOWS = 6


def _app():
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from PyQt5.QtWidgets import QApplication

    return QApplication.instance() or QApplication([])


def _timer_delays(app, seconds: float) -> list[float]:
    """Run the event loop ``seconds``; the lateness (ms) of each tick of a 10 ms timer."""
    from PyQt5.QtCore import QEventLoop, Qt, QTimer

    delays: list[float] = []
    last = [time.perf_counter()]

    def tick() -> None:
        now = time.perf_counter()
        delays.append((now - last[0]) * 1000.0 - 10.0)
        last[0] = now

    timer = QTimer()
    timer.setTimerType(Qt.PreciseTimer)
    timer.setInterval(10)
    timer.timeout.connect(tick)
    loop = QEventLoop()
    QTimer.singleShot(int(seconds * 1000), loop.quit)
    last[0] = time.perf_counter()
    timer.start()
    loop.exec_()
    timer.stop()
    return delays[1:]


def _line_count(path: Path) -> int:
    with open(path, "rb") as handle:
        return handle.read().count(b"\n")


def _wait(app, condition, timeout: float) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        app.processEvents()
        if condition():
            return True
        time.sleep(0.01)
    return False


def _responsiveness(work: Path) -> Figure:
    from dlp.gui.qt_project import QtProject
    from dlp.gui.train import QtTrainModule
    from tests.gui.train_support import make_train_project

    app = _app()
    project = make_train_project(work / "project", max_iter=1_000_000, display=1,
                                 test_interval=200, snapshot=0)
    module = QtTrainModule(QtProject(project))
    module.resize(1280, 800)
    module.show()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    run = module.start_training()
    training: list[float] = []
    paused: list[float] = []
    try:
        if run is None or not _wait(app, lambda: module.shown.curves.last_iteration > 20, 120):
            raise RuntimeError("training did not start: " + module.error_banner.label.text())
        pid = int(run.info["pid"])
        streamed_lines, streamed_s = 0, 0.0
        # Interleave 1 s windows with the solver running and stopped (SIGSTOP), so the
        # machine's other load weighs on both measurements alike.
        for _ in range(WINDOWS):
            before = _line_count(run.log_path)
            start = time.perf_counter()
            training += _timer_delays(app, 1.0)
            streamed_s += time.perf_counter() - start
            streamed_lines += _line_count(run.log_path) - before
            os.kill(pid, signal.SIGSTOP)
            try:
                paused += _timer_delays(app, 1.0)
            finally:
                os.kill(pid, signal.SIGCONT)
        rate = streamed_lines / streamed_s
    finally:
        module.stop_training()
        _wait(app, lambda: not module.monitors, 60)
        iterations = module.shown.curves.last_iteration if module.shown else 0
        module.shutdown()
        module.deleteLater()
    worst, idle = max(training), max(paused)
    p99 = float(np.percentile(training, 99))
    return Figure("train_gui.timer_delay_training_ms", worst, 50.0, "<=",
                  f"solver paused {idle:.1f} ms (ratio {worst / max(idle, 0.1):.2f}); "
                  f"p99 {p99:.1f} ms; log streamed {rate:.0f} lines/s; "
                  f"{len(training)} ticks; {iterations} iterations")


def _paint_ms(widget, repeats: int = 15) -> float:
    widget.repaint()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        widget.repaint()
        times.append((time.perf_counter() - start) * 1000.0)
    return statistics.median(times)


def _redraw(points: int, app) -> float:
    from dlp.gui.train.qt_curves import QtCurves
    from dlp.train.curves import GrowingSeries, LiveCurves

    rng = np.random.default_rng(0)
    live = LiveCurves()
    iterations = np.arange(points, dtype=np.float64)
    for name, values in (("loss", np.exp(-iterations / points) + rng.normal(0, .05, points)),
                         ("train/loss", rng.random(points)),
                         ("test/dice", np.linspace(0, 1, points)),
                         ("lr", np.full(points, 0.01))):
        series = live.series[name] = GrowingSeries(points)
        series.extend(iterations, values)
    curves = QtCurves()
    curves.resize(1000, 500)
    curves.show()
    curves.set_smoothing(0.6)
    curves.set_curves(live)
    app.processEvents()
    viewport = curves.plot_widget.viewport()
    result = _paint_ms(viewport)
    curves.deleteLater()
    app.processEvents()
    return result


def _redraw_figure() -> Figure:
    app = _app()
    small = _redraw(1_000, app)
    large = _redraw(100_000, app)
    return Figure("train_gui.redraw_100k_ms", large, 16.0, "<=",
                  f"1,000 points {small:.2f} ms (ratio {large / max(small, 1e-3):.2f}); "
                  "4 curves, peak downsampling + clip to view")


def run() -> list[Figure]:
    figures = [_redraw_figure()]
    with tempfile.TemporaryDirectory(prefix="dlp-bench-train-gui-") as tmp:
        figures.append(_responsiveness(Path(tmp)))
    return figures


if __name__ == "__main__":
    for figure in run():
        print(figure.line())
