"""Run long core functions off the GUI thread, with progress and cancel.

Any core function following DLP's convention (``progress=`` a
:data:`dlp.progress.ProgressCallback`, ``cancel=`` a :class:`dlp.progress.CancelToken`)
runs in a :class:`Worker`::

    worker = Worker(build_dataset, source, out_dir, options)
    worker.progressed.connect(panel.set_progress)
    worker.succeeded.connect(self._on_built)
    worker.failed.connect(self._on_failed)
    worker.start()
    ...
    worker.cancel()

Signals cross from the worker thread to the GUI thread as queued connections, so
slots run in the GUI thread.  Exactly one of ``succeeded``, ``failed`` or
``cancelled`` is emitted, then ``done``.
"""

from __future__ import annotations

import traceback
from collections.abc import Callable
from typing import Any

from PyQt5.QtCore import QThread, pyqtSignal

from dlp.errors import Cancelled, DLPError
from dlp.progress import CancelToken, ProgressEvent


class Worker(QThread):
    """Calls ``fn(*args, progress=..., cancel=..., **kwargs)`` in its own thread.

    ``pass_progress=False`` / ``pass_cancel=False`` for functions that do not take
    those keywords (they then cannot report progress or stop early).
    """

    progressed = pyqtSignal(int, int, str)  # done, total (-1 = unknown), message
    succeeded = pyqtSignal(object)  # the function's return value
    failed = pyqtSignal(str, str)  # one-line message for the user, details (traceback or "")
    cancelled = pyqtSignal()
    done = pyqtSignal()

    def __init__(self, fn: Callable[..., Any], *args: Any, pass_progress: bool = True,
                 pass_cancel: bool = True, **kwargs: Any) -> None:
        super().__init__()
        self._fn = fn
        self._args = args
        self._kwargs = kwargs
        self._pass_progress = pass_progress
        self._pass_cancel = pass_cancel
        self.token = CancelToken()
        self.result: Any = None
        self.error: str | None = None

    def cancel(self) -> None:
        """Ask the function to stop at its next check; ``cancelled`` follows."""
        self.token.cancel()

    @property
    def is_cancelled(self) -> bool:
        return self.token.cancelled

    def _on_progress(self, event: ProgressEvent) -> None:
        total = -1 if event.total is None else int(event.total)
        self.progressed.emit(int(event.done), total, event.message)

    def run(self) -> None:
        kwargs = dict(self._kwargs)
        if self._pass_progress:
            kwargs["progress"] = self._on_progress
        if self._pass_cancel:
            kwargs["cancel"] = self.token
        try:
            self.result = self._fn(*self._args, **kwargs)
        except Cancelled:
            self.cancelled.emit()
        except DLPError as exc:
            if self.token.cancelled:
                self.cancelled.emit()
            else:
                self.error = str(exc)
                self.failed.emit(str(exc), "")
        except Exception as exc:  # a bug in DLP: show it, keep the GUI alive
            self.error = f"{type(exc).__name__}: {exc}"
            self.failed.emit(self.error, traceback.format_exc())
        else:
            if self.token.cancelled and self.result is None:
                self.cancelled.emit()
            else:
                self.succeeded.emit(self.result)
        finally:
            self.done.emit()

    def stop_and_wait(self, msecs: int = 30000) -> bool:
        """Cancel and wait for the thread to end (window closing); True when it ended."""
        self.cancel()
        return self.wait(msecs)
