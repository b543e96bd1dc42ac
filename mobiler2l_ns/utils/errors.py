"""User-facing errors: one line naming the file or flag and what is expected, no traceback."""

from __future__ import annotations

import argparse
from typing import NoReturn


class InputError(SystemExit):
    """Bad user input. Raised instead of letting torch/nerfstudio fail deep inside.

    A ``SystemExit`` subclass, so command-line tools print only the message (to stderr) and
    exit with status 1; library callers can still catch it.
    """

    def __init__(self, message: str) -> None:
        super().__init__(f"mobiler2l: {message}")
        self.message = message


class OneLineArgumentParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` whose usage errors are one line, ``PROG: error: MESSAGE``, no usage block.

    ``usage_exit_status`` is the exit status of a usage error (argparse's 2 by default; tools that
    give 2 another meaning, like ``mobiler2l-check-capture``'s severe findings, use 1).
    Sub-command parsers made with ``add_subparsers()`` inherit the class.
    """

    usage_exit_status: int = 2

    def error(self, message: str) -> NoReturn:
        self.exit(self.usage_exit_status, f"{self.prog}: error: {message}\n")


class BadInputArgumentParser(OneLineArgumentParser):
    """:class:`OneLineArgumentParser` whose usage errors exit with status 1, as bad input does."""

    usage_exit_status = 1
