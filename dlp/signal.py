"""A plain-Python observer list, for Qt-free models that views subscribe to.

The core's models (the net document, the project) announce changes through these;
``dlp.gui`` forwards them to Qt signals.  Blocking is counted so nested ``blocked()``
scopes compose.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any


class Signal:
    """``connect(callback)``, ``emit(*args)``, ``disconnect(callback)``, ``blocked()``."""

    def __init__(self) -> None:
        self._callbacks: list[Callable[..., Any]] = []
        self._blocked = 0

    def connect(self, callback: Callable[..., Any]) -> None:
        """Subscribe ``callback``; subscribing it twice still calls it once per emit."""
        if callback not in self._callbacks:
            self._callbacks.append(callback)

    def disconnect(self, callback: Callable[..., Any]) -> None:
        """Unsubscribe ``callback``; one that is not subscribed is ignored."""
        with contextlib.suppress(ValueError):
            self._callbacks.remove(callback)

    def emit(self, *args: Any) -> None:
        if self._blocked:
            return
        # a copy: a callback may disconnect itself or others while we iterate
        for callback in list(self._callbacks):
            callback(*args)

    @contextlib.contextmanager
    def blocked(self) -> Iterator[None]:
        """Silence emits in this scope, e.g. while a view writes back what it shows."""
        self._blocked += 1
        try:
            yield
        finally:
            self._blocked -= 1
