"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
LEGO = REPO.parent / "shared" / "data" / "blender-lego-400"


def machine_description() -> str:
    """One line: CPU model, cores, torch threads, GPU if any."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return f"{cpu}, {os.cpu_count()} cores, torch {torch.__version__} ({torch.get_num_threads()} threads), {gpu}"


def require_lego(path: Path) -> Path:
    if not (path / "transforms_train.json").is_file():
        raise SystemExit(f"--data {path}: lego-400 not found (expected ../shared/data/blender-lego-400)")
    return path
