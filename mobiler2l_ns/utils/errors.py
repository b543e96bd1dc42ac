"""User-facing errors: one line naming the file or flag and what is expected, no traceback."""

from __future__ import annotations


class InputError(SystemExit):
    """Bad user input. Raised instead of letting torch/nerfstudio fail deep inside.

    A ``SystemExit`` subclass, so command-line tools print only the message (to stderr) and
    exit with status 1; library callers can still catch it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"mobiler2l: {message}")
        self.message = message
