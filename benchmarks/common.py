"""Helpers shared by the benchmark scripts."""

from __future__ import annotations

import os
import platform
from pathlib import Path

import numpy as np
import torch
from numpy.typing import NDArray
from PIL import Image

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


def read_on_white(path: Path) -> NDArray[np.float32]:
    """An image file as float32 ``[H, W, 3]`` in [0, 1], RGBA composited on white (Blender ground truth)."""
    with Image.open(path) as image:
        rgba = np.asarray(image.convert("RGBA"), dtype=np.float32) / 255.0
    return rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])


class NoLPIPS(torch.nn.Module):
    """Stand-in for nerfacto's LPIPS metric, whose construction downloads AlexNet weights (offline machine):
    ``torchmetrics.image.lpip.LearnedPerceptualImagePatchSimilarity = NoLPIPS`` before building nerfacto."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()
