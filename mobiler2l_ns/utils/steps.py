"""The step range of an ``ns-train`` run, for phases counted from its end."""

from __future__ import annotations

from typing import Any


def run_steps(trainer: Any) -> range:
    """Steps the nerfstudio ``Trainer`` will take in this run: ``max_num_iterations`` steps from its start
    step (0, or the loaded checkpoint's step + 1 after ``--load-dir``)."""
    first = int(getattr(trainer, "_start_step", 0))
    return range(first, first + int(trainer.config.max_num_iterations))
