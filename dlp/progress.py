"""Progress reporting and cancellation shared by the CLI and the GUI (Qt-free).

Long operations take an optional ``progress`` callback and an optional
:class:`CancelToken`.  The CLI passes :func:`terminal_progress` (a tqdm bar on a
terminal, nothing otherwise); the GUI passes a callback that emits a Qt signal from
its worker thread.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass

from dlp.errors import Cancelled


@dataclass(frozen=True)
class ProgressEvent:
    """``done`` of ``total`` units finished (``total`` is None when unknown)."""

    done: int
    total: int | None
    message: str = ""


ProgressCallback = Callable[[ProgressEvent], None]


class CancelToken:
    """A thread-safe flag a long operation polls between units of work."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def raise_if_cancelled(self) -> None:
        if self._event.is_set():
            raise Cancelled()


def report(
    progress: ProgressCallback | None, done: int, total: int | None, message: str = ""
) -> None:
    """Call ``progress`` if there is one (saves an ``if`` at every call site)."""
    if progress is not None:
        progress(ProgressEvent(done, total, message))


class terminal_progress:  # noqa: N801 - used like a function
    """A progress callback drawing a tqdm bar on a terminal and nothing elsewhere.

    Use as a context manager so the bar is closed::

        with terminal_progress("Building dataset") as progress:
            build(..., progress=progress)
    """

    def __init__(self, description: str, unit: str = "it", stream=None) -> None:
        self._description = description
        self._unit = unit
        self._stream = stream if stream is not None else sys.stderr
        self._bar = None

    def __enter__(self) -> terminal_progress:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __call__(self, event: ProgressEvent) -> None:
        if not getattr(self._stream, "isatty", lambda: False)():
            return
        if self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(
                total=event.total, desc=self._description, unit=self._unit, file=self._stream
            )
        if event.total is not None and self._bar.total != event.total:
            self._bar.total = event.total
        self._bar.n = event.done
        if event.message:
            self._bar.set_postfix_str(event.message, refresh=False)
        self._bar.refresh()
