"""Logging helpers."""

from __future__ import annotations

from nerfstudio.utils.rich_utils import CONSOLE

_SEEN: set = set()


def log_once(message: str) -> None:
    """Print ``message`` on nerfstudio's console the first time it is seen in this process."""
    if message in _SEEN:
        return
    _SEEN.add(message)
    CONSOLE.print(f"[yellow]{message}")
