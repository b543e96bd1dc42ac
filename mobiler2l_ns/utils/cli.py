"""Command lines: tyro dataclasses, as nerfstudio's own ``ns-*`` tools, with our error conventions.

A tool is a dataclass whose fields are its flags (docstrings become the help) and whose
``main()`` runs it; :func:`run_cli` parses ``argv`` into it and runs it. Bad input raised as
:class:`~mobiler2l_ns.utils.errors.InputError` ends the process with one line and status 1; a
usage error (unknown flag, wrong type) is tyro's message with ``usage_exit_status``.
"""

from __future__ import annotations

from typing import Any, Callable, Optional, Sequence, Type, TypeVar

import tyro

T = TypeVar("T")


def parse_cli(
    cls: Type[T] | Callable[..., T],
    args: Optional[Sequence[str]] = None,
    prog: Optional[str] = None,
    description: Optional[str] = None,
    usage_exit_status: int = 2,
    return_unknown_args: bool = False,
) -> Any:
    """``tyro.cli(cls)``; a usage error exits with ``usage_exit_status`` (tyro: 2) after tyro's message.

    Tools that give status 2 another meaning (``mobiler2l-check-capture``: severe findings) pass 1.
    ``return_unknown_args``: return ``(parsed, unknown flags)`` for a tool that passes them on.
    """
    try:
        return tyro.cli(cls, args=args, prog=prog, description=description, return_unknown_args=return_unknown_args)
    except SystemExit as exit_:
        if exit_.code not in (0, None) and usage_exit_status != exit_.code:
            raise SystemExit(usage_exit_status) from None
        raise


def run_cli(
    cls: Type,
    args: Optional[Sequence[str]] = None,
    prog: Optional[str] = None,
    description: Optional[str] = None,
    usage_exit_status: int = 2,
) -> int:
    """Parse ``args`` into the dataclass ``cls`` and return its ``main()``'s exit status (None -> 0)."""
    command = parse_cli(cls, args, prog, description, usage_exit_status)
    status = command.main()
    return 0 if status is None else int(status)
