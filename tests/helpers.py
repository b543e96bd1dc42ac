"""Scaffolding shared by the tests (not fixtures: those are in conftest.py)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch

from mobiler2l_ns.utils.metrics import psnr  # noqa: F401  (the tests' PSNR is the package's)

def blender_views(scene, split: str):
    """``(cameras [N], images [N, H, W, 3])`` of a Blender-format split (``transforms_{split}.json``),
    RGBA composited on white, float32 in [0, 1]."""
    import json
    import math
    from pathlib import Path

    from nerfstudio.cameras.cameras import Cameras
    from PIL import Image

    scene = Path(scene)
    meta = json.loads((scene / f"transforms_{split}.json").read_text())
    images, c2w = [], []
    for frame in meta["frames"]:
        rgba = np.asarray(Image.open(scene / f"{frame['file_path']}.png").convert("RGBA")).astype(np.float32) / 255.0
        images.append(rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:]))
        c2w.append(torch.tensor(frame["transform_matrix"], dtype=torch.float32)[:3])
    height, width = images[0].shape[:2]
    focal = 0.5 * width / math.tan(0.5 * meta["camera_angle_x"])
    cameras = Cameras(
        camera_to_worlds=torch.stack(c2w),
        fx=focal,
        fy=focal,
        cx=width / 2.0,
        cy=height / 2.0,
        width=width,
        height=height,
    )
    return cameras, torch.from_numpy(np.stack(images))


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def save_checkpoint(folder, step: int, truncate: bool = False):
    """A small ``torch.save`` checkpoint ``folder/step-NNNNNNNNN.ckpt`` (made on the way); ``truncate``: cut
    to half its size, what a kill during nerfstudio's in-place save leaves. Returns its path."""
    from pathlib import Path

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"step-{step:09d}.ckpt"
    torch.save({"step": step, "pipeline": {"w": torch.full((64, 64), float(step))}}, path)
    if truncate:
        path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return path


# --------------------------------------------------------------------------- console scripts offline

OFFLINE_RUNNER = Path(__file__).with_name("offline_run.py")
"""``python offline_run.py SCRIPT ARGS``: an installed console script with every socket connection refused."""


def offline_env(torch_home: Path) -> Dict[str, str]:
    """Environment for a subprocess with an empty torch hub cache (so no LPIPS weights)."""
    env = dict(os.environ)
    env.update(TORCH_HOME=str(torch_home), PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    return env


def run_offline(
    args: List[str], torch_home: Path, cwd: Path, timeout: int = 900, threads: Optional[int] = None
) -> subprocess.CompletedProcess:
    """Run an installed console script (``args[0]``) with every socket connection refused.

    ``threads``: the child's OpenMP threads (OMP_NUM_THREADS); None: the default.
    """
    env = offline_env(torch_home)
    if threads is not None:
        env["OMP_NUM_THREADS"] = str(threads)
    return subprocess.run(
        [sys.executable, str(OFFLINE_RUNNER), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
