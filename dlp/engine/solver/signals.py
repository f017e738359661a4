"""Signals tell the solver to stop or snapshot between iterations (Caffe's SignalHandler).

SIGINT and SIGTERM follow ``--sigint_effect`` (default ``stop``: DLP always
snapshots before stopping, so the GUI's Stop loses at most the current iteration);
SIGHUP, where the platform has it, follows ``--sighup_effect`` (default
``snapshot``, as Caffe).  The handler only records the request; the solver acts on
it after the iteration in progress, never in the middle of an update.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from types import FrameType, TracebackType

EFFECTS = ("stop", "snapshot", "none")


class SignalHandler:
    """Context manager routing SIGINT/SIGTERM/SIGHUP to ``request(action)``."""

    def __init__(
        self,
        request: Callable[[str], None],
        sigint_effect: str = "stop",
        sighup_effect: str = "snapshot",
    ) -> None:
        for name, effect in (("sigint_effect", sigint_effect), ("sighup_effect", sighup_effect)):
            if effect not in EFFECTS:
                from dlp.errors import InputError

                raise InputError(f"--{name}: {effect!r} (expected one of {', '.join(EFFECTS)})")
        self._request = request
        self._effects: dict[int, str] = {
            signal.SIGINT: sigint_effect,
            signal.SIGTERM: sigint_effect,
        }
        if hasattr(signal, "SIGHUP"):
            self._effects[signal.SIGHUP] = sighup_effect
        self._previous: dict[int, object] = {}

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        effect = self._effects.get(signum, "none")
        if effect != "none":
            self._request(effect)

    def __enter__(self) -> SignalHandler:
        # signal handlers can only be installed from the main thread (the GUI runs
        # the solver in a subprocess, tests may run it in a thread: then do nothing)
        if threading.current_thread() is threading.main_thread():
            for signum in self._effects:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)  # type: ignore[arg-type]
        self._previous.clear()
