"""Shared fixtures: tiny scenes rendered by the project's own renderer, and an offline runner."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from dataclasses import dataclass
from typing import Dict, List

import pytest

from mobiler2l_ns.scenes.synthetic import render_blender_scene

OFFLINE_RUNNER = Path(__file__).with_name("offline_run.py")


@pytest.fixture(scope="session")
def tiny_blender(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32x32 Blender-format scene: 24 train, 2 val, 4 test views."""
    return render_blender_scene(tmp_path_factory.mktemp("tiny-blender"), 32, 24, 2, 4, seed=1)


def offline_env(torch_home: Path) -> Dict[str, str]:
    """Environment for a subprocess with an empty torch hub cache (so no LPIPS weights)."""
    env = dict(os.environ)
    env.update(TORCH_HOME=str(torch_home), PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1")
    return env


def run_offline(args: List[str], torch_home: Path, cwd: Path, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run an installed console script (``args[0]``) with every socket connection refused."""
    return subprocess.run(
        [sys.executable, str(OFFLINE_RUNNER), *args],
        cwd=cwd,
        env=offline_env(torch_home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )


TEACHER_STEPS = 250
# CPU-small settings for a 32x32 scene.
TINY_TEACHER_FLAGS = [
    "--vis", "tensorboard",
    "--experiment-name", "tiny",
    "--timestamp", "run",
    "--steps-per-save", str(TEACHER_STEPS),
    "--steps-per-eval-batch", "100",
    "--steps-per-eval-image", "100000",
    "--steps-per-eval-all-images", "100000",
    "--pipeline.datamanager.train-num-rays-per-batch", "1024",
    "--pipeline.model.grid-resolution", "32",
    "--pipeline.model.grid-warmup-steps", "64",
    "--pipeline.model.steps-per-diagonal", "128",
    "--pipeline.model.log2-hashmap-size", "15",
    "--pipeline.model.max-resolution", "128",
]  # fmt: skip


@dataclass
class TeacherRun:
    root: Path
    config: Path
    log: str
    torch_home: Path

    @property
    def checkpoints(self) -> Path:
        return self.config.parent / "nerfstudio_models"


@pytest.fixture(scope="session")
def teacher_run(tiny_blender: Path, tmp_path_factory: pytest.TempPathFactory) -> TeacherRun:
    """`ns-train mobiler2l-teacher` on the tiny scene, network disabled, empty torch hub cache."""
    root = tmp_path_factory.mktemp("teacher")
    torch_home = root / "torch-home"
    args = ["ns-train", "mobiler2l-teacher", *TINY_TEACHER_FLAGS, "--max-num-iterations", str(TEACHER_STEPS)]
    args += ["--output-dir", str(root / "outputs"), "blender-data", "--data", str(tiny_blender)]
    proc = run_offline(args, torch_home, cwd=root)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    config = root / "outputs" / "tiny" / "mobiler2l-teacher" / "run" / "config.yml"
    return TeacherRun(root, config, proc.stdout + proc.stderr, torch_home)


@pytest.fixture(autouse=True)
def isolated_nerfstudio_writers():
    """nerfstudio keeps its event writers in module globals: an in-process training run would leave
    a tensorboard writer (with a cwd-relative path) that later runs keep writing to. Reset them."""
    yield
    writer = sys.modules.get("nerfstudio.utils.writer")  # importing it first is circular; unloaded = nothing to reset
    if writer is None:
        return
    for event_writer in writer.EVENT_WRITERS:
        inner = getattr(event_writer, "tb_writer", None)
        if inner is not None:
            try:
                inner.close()
            except OSError:
                pass
    writer.EVENT_WRITERS.clear()
    writer.EVENT_STORAGE.clear()
    writer.GLOBAL_BUFFER.clear()


@pytest.fixture(scope="module")
def single_thread():
    """One intra-op thread for modules of many tiny ops: OpenMP threads contending for 2 cores make
    them far slower (use with ``pytestmark = pytest.mark.usefixtures("single_thread")``)."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
