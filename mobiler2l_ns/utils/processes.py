"""Ending a tool the chain or the capture step started in its own process group."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from typing import Optional


def stop_group(proc: subprocess.Popen, term_wait_s: Optional[float] = 5.0) -> None:
    """End ``proc``'s process group (``proc`` leads its own session) and reap ``proc``.

    SIGTERM first and SIGKILL if ``proc`` is still there after ``term_wait_s`` seconds; SIGKILL at once
    when ``term_wait_s`` is None. A group already gone is nothing to do.
    """
    with contextlib.suppress(ProcessLookupError, subprocess.TimeoutExpired):
        if term_wait_s is not None:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=term_wait_s)
            return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
