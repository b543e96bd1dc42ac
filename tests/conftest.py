"""Shared fixtures: the tiny scene rendered by the project's own renderer, ONE tiny teacher per test
session (every test that needs a trained ``mobiler2l-teacher`` on the tiny scene uses it) and ONE
whole ``mobiler2l run`` chain on it (``tests/test_chain.py``, ``tests/test_ns_viewer.py``)."""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mobiler2l_ns.chain import Chain, ChainPreset
from mobiler2l_ns.scenes.synthetic import render_blender_scene
from mobiler2l_ns.utils.runs import read_run_config
from tests.helpers import OFFLINE_RUNNER, offline_env, run_offline

__all__ = [
    "OFFLINE_RUNNER", "TEACHER_STEPS", "TINY_CHAIN", "TINY_TEACHER_FLAGS", "TinyTeacher", "offline_env", "run_offline"
]  # fmt: skip


@pytest.fixture(scope="session")
def tiny_blender(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 32x32 Blender-format scene: 24 train, 2 val, 4 test views."""
    return render_blender_scene(tmp_path_factory.mktemp("tiny-blender"), 32, 24, 2, 4, seed=1)


TEACHER_STEPS = 250
# CPU-small settings for a 32x32 scene: ~24 dB on its test views after 250 steps (~23.5 after 150),
# and a 32x32 view renders in a fraction of a second on one thread (pseudo-view tests render hundreds).
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
    "--pipeline.model.steps-per-diagonal", "64",
    "--pipeline.model.num-levels", "8",
    "--pipeline.model.log2-hashmap-size", "13",
    "--pipeline.model.max-resolution", "64",
    "--pipeline.model.hidden-dim", "32",
    "--pipeline.model.hidden-dim-color", "32",
]  # fmt: skip


@dataclass
class TinyTeacher:
    """The session's trained teacher run (launched from ``root``, saved with relative paths)."""

    root: Path
    config: Path
    log: str
    torch_home: Path
    scene: Path
    """The tiny scene it was trained on."""

    @property
    def checkpoints(self) -> Path:
        return self.config.parent / "nerfstudio_models"


@pytest.fixture(scope="session")
def teacher_run(tiny_blender: Path, tmp_path_factory: pytest.TempPathFactory) -> TinyTeacher:
    """`ns-train mobiler2l-teacher` on the tiny scene, network disabled, empty torch hub cache.

    Launched from ROOT with a relative ``--output-dir`` and ``--data``, so the saved config.yml holds
    relative paths (loading it from another folder is then a real test of the run loader).
    """
    root = tmp_path_factory.mktemp("teacher")
    torch_home = root / "torch-home"
    data = os.path.relpath(tiny_blender, root)
    args = ["ns-train", "mobiler2l-teacher", *TINY_TEACHER_FLAGS, "--max-num-iterations", str(TEACHER_STEPS)]
    args += ["--output-dir", "outputs", "blender-data", "--data", data]
    proc = run_offline(args, torch_home, cwd=root, threads=1)  # tiny batches: a second thread only contends
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    config = root / "outputs" / "tiny" / "mobiler2l-teacher" / "run" / "config.yml"
    saved = read_run_config(config)
    assert not saved.output_dir.is_absolute() and not saved.pipeline.datamanager.dataparser.data.is_absolute()
    return TinyTeacher(root, config, proc.stdout + proc.stderr, torch_home, tiny_blender)


MODEL_FLAGS = tuple(
    flag
    for i, flag in enumerate(TINY_TEACHER_FLAGS)
    if flag.startswith("--pipeline.") or (i > 0 and TINY_TEACHER_FLAGS[i - 1].startswith("--pipeline."))
)
TINY_CHAIN = ChainPreset(
    description="tiny test scene",
    teacher_steps=150,
    student_method="mobiler2l-small",
    student_steps=300,
    pseudo_count=16,
    real_share=0.25,
    finetune_steps=30,
    teacher_args=MODEL_FLAGS,
    student_args=("--pipeline.datamanager.pseudo-shard-size", "4"),
    orbit_frames=4,
)


@pytest.fixture(scope="session")
def chain(tiny_blender: Path, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    """``mobiler2l run`` (all stages) on the tiny scene with :data:`TINY_CHAIN`, one intra-op thread."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny ops: a second thread only contends (session scope: before "single_thread")
    try:
        chain = Chain(tiny_blender, tmp_path_factory.mktemp("chain"), "tiny", TINY_CHAIN)
        chain.run()
    finally:
        torch.set_num_threads(threads)
    return chain


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
