"""User-facing errors.

Anything the user can fix (a bad config key, a missing data file, malformed input) raises
:class:`UserError` with a message naming the file, line or key. The command line catches it,
prints the message on one line and exits with status 2 -- never a traceback.
"""

from __future__ import annotations


class UserError(Exception):
    """An error caused by the user's input, reported without a traceback (exit status 2)."""

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.hint = hint

    def __str__(self) -> str:
        text = super().__str__()
        return f"{text}\n  hint: {self.hint}" if self.hint else text
