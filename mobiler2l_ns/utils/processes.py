"""Ending a tool the chain or the capture step started in its own process group."""

from __future__ import annotations

import os
import signal
import subprocess
from typing import Optional


def stop_group(proc: subprocess.Popen, term_wait_s: Optional[float] = 5.0) -> None:
    """End ``proc``'s process group (``proc`` leads its own session) and reap ``proc``.

    SIGTERM first and SIGKILL if the group is still there after ``term_wait_s`` seconds; SIGKILL at once
    when ``term_wait_s`` is None. A group already gone is nothing to do.
    """
    steps = [(signal.SIGKILL, None)] if term_wait_s is None else [(signal.SIGTERM, term_wait_s), (signal.SIGKILL, None)]
    for sig, wait_s in steps:
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue
    proc.wait()
