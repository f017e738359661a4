"""dlp.gui.workers.Worker: progress crosses to the GUI thread, and exactly one of
succeeded / failed / cancelled is reported, then done."""

from __future__ import annotations

import threading

from dlp.errors import InputError
from dlp.gui.widgets.progress_panel import ProgressPanel
from dlp.gui.workers import Worker
from dlp.progress import CancelToken, report


def counting(n: int, *, progress=None, cancel: CancelToken | None = None) -> int:
    for i in range(n):
        if cancel is not None:
            cancel.raise_if_cancelled()
        report(progress, i + 1, n, f"item {i + 1}")
    return threading.get_ident()


def run(qtbot, worker: Worker) -> list[tuple]:
    events: list[tuple] = []
    worker.progressed.connect(lambda d, t, m: events.append(("progress", d, t, m)))
    worker.succeeded.connect(lambda r: events.append(("succeeded", r)))
    worker.failed.connect(lambda m, d: events.append(("failed", m, d)))
    worker.cancelled.connect(lambda: events.append(("cancelled",)))
    with qtbot.waitSignal(worker.done, timeout=10000):
        worker.start()
    worker.wait()
    return events


def test_result_and_progress_arrive_in_order(qtbot) -> None:
    events = run(qtbot, Worker(counting, 3))
    assert events[:3] == [("progress", 1, 3, "item 1"), ("progress", 2, 3, "item 2"),
                          ("progress", 3, 3, "item 3")]
    assert events[3][0] == "succeeded"
    assert events[3][1] != threading.get_ident()  # it ran off the GUI thread
    assert len(events) == 4


def test_a_user_error_is_one_line_without_traceback(qtbot) -> None:
    def bad(*, progress=None, cancel=None):
        raise InputError("images folder /x: does not exist")

    events = run(qtbot, Worker(bad))
    assert events == [("failed", "images folder /x: does not exist", "")]


def test_a_bug_is_reported_with_its_traceback_and_the_gui_survives(qtbot) -> None:
    def buggy(*, progress=None, cancel=None):
        return {}["missing"]

    (kind, message, details), = run(qtbot, Worker(buggy))
    assert kind == "failed" and message == "KeyError: 'missing'"
    assert "Traceback" in details and "buggy" in details


def test_cancel_before_the_first_check_reports_cancelled(qtbot) -> None:
    worker = Worker(counting, 1000)
    worker.cancel()
    assert run(qtbot, worker) == [("cancelled",)]


def test_functions_without_progress_or_cancel_keywords(qtbot) -> None:
    events = run(qtbot, Worker(sum, [1, 2, 3], pass_progress=False, pass_cancel=False))
    assert events == [("succeeded", 6)]


def test_progress_panel_follows_a_worker_and_hides_when_done(qtbot) -> None:
    panel = ProgressPanel()
    qtbot.addWidget(panel)
    worker = Worker(counting, 2)
    panel.attach(worker, "Counting")
    assert not panel.isHidden()
    run(qtbot, worker)
    assert panel.isHidden()
    assert panel.bar.maximum() == 2 and panel.bar.value() == 2
    assert panel.label.text() == "Counting: item 2"
