"""Errors that reach the user.

Every error meant for a person derives from :class:`DLPError`; its ``str()`` is a
complete one-line message naming the file, line, field, layer or blob at fault and
what was expected.  The CLI prints it on stderr and exits non-zero; the GUI shows it
in a message box or panel.  Anything else escaping is a bug in DLP.
"""

from __future__ import annotations


class DLPError(Exception):
    """A failure whose message is meant for the user (no traceback needed)."""


class InputError(DLPError):
    """The user's input (file, field, option) is wrong; the message says where and why."""


class Cancelled(DLPError):
    """Long work was cancelled by the user."""

    def __init__(self, message: str = "cancelled by the user") -> None:
        super().__init__(message)
