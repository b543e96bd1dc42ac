"""Bad input and interrupted work end in one line, never a traceback or a poisoned run (issue 17's sweep).

Fast cases only (no training): checkpoints a kill truncated, a student passed as a teacher, distillation
switched off by step counts, camera poses that are not rotations, the chain's last line.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
import yaml

from mobiler2l_ns.chain import StageError
from mobiler2l_ns.chain.stage_base import run_showing_stderr
from mobiler2l_ns.chain.training import TeacherStage
from mobiler2l_ns.utils.checkpoints import (
    CORRUPT_FOLDER,
    SafeTrainer,
    checkpoint_problem,
    set_aside_unusable,
    usable_checkpoints,
)
from mobiler2l_ns.utils.errors import InputError
from tests.helpers import save_checkpoint


def test_truncated_checkpoint_is_found_and_set_aside(tmp_path: Path) -> None:
    models = tmp_path / "run" / "nerfstudio_models"
    save_checkpoint(models, 99)
    newest = save_checkpoint(models, 199, truncate=True)
    assert checkpoint_problem(models / "step-000000099.ckpt") is None
    assert "truncated" in checkpoint_problem(newest)
    step, bad = usable_checkpoints(models)
    assert step == 99 and [p for p, _ in bad] == [newest]
    assert set_aside_unusable(models, "teacher") == 99
    assert sorted(p.name for p in models.iterdir()) == ["step-000000099.ckpt"]  # nerfstudio lists every file
    assert (tmp_path / "run" / CORRUPT_FOLDER / newest.name).is_file()
    assert torch.load(models / "step-000000099.ckpt")["step"] == 99
    (models / "step-000000099.ckpt").write_bytes(b"")
    assert set_aside_unusable(models, "teacher") is None  # nothing usable left: training starts again
    assert (tmp_path / "run" / CORRUPT_FOLDER / "step-000000099.ckpt").is_file()


def test_truncated_teacher_checkpoint_is_one_line(tmp_path: Path) -> None:
    from mobiler2l_ns.distill.teacher import TeacherRun
    from mobiler2l_ns.methods.teachers import teacher_method

    config = copy.deepcopy(teacher_method.config)
    run = tmp_path / "teacher"
    run.mkdir()
    (run / "config.yml").write_text(yaml.dump(config))
    save_checkpoint(run / "nerfstudio_models", 299, truncate=True)
    with pytest.raises(InputError, match=r"step-000000299\.ckpt: unusable \(truncated") as err:
        TeacherRun.from_config(run / "config.yml")
    assert "\n" not in str(err.value)
    assert err.value.message.startswith("teacher "), err.value.message  # names whose checkpoint it is


def test_student_run_is_refused_as_a_teacher(tmp_path: Path) -> None:
    from mobiler2l_ns.distill.teacher import TeacherRun
    from mobiler2l_ns.methods.students import mobiler2l_small_config

    (tmp_path / "config.yml").write_text(yaml.dump(copy.deepcopy(mobiler2l_small_config)))
    with pytest.raises(InputError, match=r"a MobileR2L student run \(mobiler2l-small\), not a teacher"):
        TeacherRun.from_config(tmp_path / "config.yml")


class FakeTrainer(SafeTrainer):
    """What nerfstudio's save_checkpoint reads, without building a pipeline."""

    def __init__(self, folder: Path) -> None:  # pylint: disable=super-init-not-called
        self.checkpoint_dir = folder
        self.config = SimpleNamespace(save_only_latest_checkpoint=True)
        self.pipeline = torch.nn.Linear(2, 2)
        self.optimizers = SimpleNamespace(optimizers={}, schedulers={})
        self.grad_scaler = torch.amp.GradScaler("cpu", enabled=False)
        self._start_step, self.step = 0, 0


def test_safe_trainer_saves_atomically_and_on_ctrl_c(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from nerfstudio.engine.trainer import Trainer

    folder = tmp_path / "nerfstudio_models"
    trainer = FakeTrainer(folder)
    trainer.save_checkpoint(10)
    trainer.save_checkpoint(20)
    assert sorted(p.name for p in folder.iterdir()) == ["step-000000020.ckpt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["nerfstudio_models"]  # no staging folder left

    def killed_during_save(*args, **kwargs):
        raise KeyboardInterrupt

    with monkeypatch.context() as patch:
        patch.setattr(torch, "save", killed_during_save)
        with pytest.raises(KeyboardInterrupt):
            trainer.save_checkpoint(30)
    assert sorted(p.name for p in folder.iterdir()) == ["step-000000020.ckpt"]  # the last good one stays
    assert checkpoint_problem(folder / "step-000000020.ckpt") is None

    def interrupted_training(self) -> None:
        self.step = 57
        raise KeyboardInterrupt

    monkeypatch.setattr(Trainer, "train", interrupted_training)
    with pytest.raises(KeyboardInterrupt):
        trainer.train()
    assert sorted(p.name for p in folder.iterdir()) == ["step-000000057.ckpt"]
    assert torch.load(folder / "step-000000057.ckpt", weights_only=False)["step"] == 57


@pytest.mark.parametrize("steps", [50, 200])
def test_chain_refuses_steps_without_distillation(tmp_path: Path, steps: int) -> None:
    from mobiler2l_ns.cli import Run

    scene = tmp_path / "scene"
    scene.mkdir()
    (scene / "transforms_train.json").write_text("{}")
    run = Run(scene, preset="cpu-toy", out=tmp_path / "runs", student_steps=steps)
    with pytest.raises(InputError, match=rf"--student-steps {steps}: not more than preset cpu-toy's 200 real-only"):
        run.main()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scene"]


@pytest.mark.parametrize(
    "pose, message",
    [
        ([0.0] * 12, r"--pose: the camera pose's left 3x3 block is not a rotation \(\|R\^T R - I\| = 1"),
        ([2, 0, 0, 0, 0, 2, 0, 0, 0, 0, 2, 4], r"--pose: .*not a rotation \(\|R\^T R - I\| = 3, det 8\)"),
        ([1, 0, 0, 0, 0, 1, 0, 0, 0, 0, -1, 4], r"--pose: .*not a rotation .*det -1\)"),
    ],
    ids=["zeros", "scaled", "mirrored"],
)
def test_render_pose_must_be_a_rotation(tmp_path: Path, pose, message: str) -> None:
    from mobiler2l_ns.export.runtime import main

    args = [str(tmp_path), "--out", str(tmp_path / "view.png"), "--pose", *map(str, pose)]
    with pytest.raises(InputError, match=message):
        main(args)
    assert not (tmp_path / "view.png").exists()


def test_pose_rounding_is_accepted() -> None:
    from mobiler2l_ns.geometry import as_pose

    angle = 0.3
    c, s = np.cos(angle), np.sin(angle)
    rounded = np.round([[c, -s, 0, 1], [s, c, 0, 2], [0, 0, 1, 3]], 4)  # JSON poses with 4 decimals
    np.testing.assert_array_equal(as_pose(rounded), rounded)


def test_chain_last_line_is_the_tools_own_message(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    script = "import sys; print('working', file=sys.stderr); sys.exit('mobiler2l: --data x: no images found')"
    code, cause = run_showing_stderr([sys.executable, "-c", script])
    assert code == 1 and cause == "--data x: no images found"
    assert "working" in capfd.readouterr().err  # passed through as it came
    code, cause = run_showing_stderr([sys.executable, "-c", "raise RuntimeError('boom')"])
    assert code == 1 and cause is None  # a crash: the chain keeps its resume hint
    # the stage's error: the tool's own line when it gave one, else the resume hint
    with pytest.raises(StageError) as err:
        TeacherStage().command([sys.executable, "-c", script])
    tool = f"`{Path(sys.executable).name} -c {script} ...`"
    assert str(err.value) == f"stage teacher: --data x: no images found ({tool} exited with code 1)"
    with pytest.raises(StageError) as err:
        TeacherStage().command([sys.executable, "-c", "raise RuntimeError('boom')"])
    assert str(err.value) == (
        f"stage teacher: `{Path(sys.executable).name} -c raise RuntimeError('boom') ...` exited with code 1 "
        "(see its output above); rerun the same command to resume"
    )


def test_chain_tools_sleep_idle_threads_unless_told(monkeypatch: pytest.MonkeyPatch) -> None:
    """The chain runs its tools with OpenMP's passive wait policy (benchmarks/shared_cpu.py) unless the
    user chose a policy."""
    script = "import os, sys; sys.exit('mobiler2l: ' + os.environ.get('OMP_WAIT_POLICY', 'unset'))"
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    monkeypatch.delenv("GOMP_SPINCOUNT", raising=False)
    for user, expected in ((None, "PASSIVE"), ("ACTIVE", "ACTIVE")):
        if user is not None:
            monkeypatch.setenv("OMP_WAIT_POLICY", user)
        with pytest.raises(StageError, match=f"^stage teacher: {expected} "):
            TeacherStage().command([sys.executable, "-c", script])


CHILD = """
import os, signal, sys, time, pathlib
signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal, even in a background job
print('ready', os.getpid(), file=sys.stderr, flush=True)
try:
    time.sleep(120)
except KeyboardInterrupt:
    time.sleep(float(sys.argv[2]))  # a checkpoint being saved
    pathlib.Path(sys.argv[1]).write_text('saved')
"""
PARENT = """
import signal, sys
signal.signal(signal.SIGINT, signal.default_int_handler)  # as from a terminal, even in a background job
from mobiler2l_ns.chain.stage_base import run_showing_stderr
try:
    run_showing_stderr([sys.executable, '-c', sys.argv[1], *sys.argv[2:]])
except KeyboardInterrupt:
    print('parent interrupted', flush=True)
"""


@pytest.mark.parametrize("save_s, ctrl_c", [(1.0, 1), (60.0, 2)])
def test_interrupted_chain_waits_for_its_child_to_save(tmp_path: Path, save_s: float, ctrl_c: int) -> None:
    """Ctrl-C on the chain (sent to it alone): the training child gets one SIGINT and the chain waits for
    it to save before it returns; a second Ctrl-C kills a child stuck in its save."""
    import os
    import signal
    import subprocess
    import time

    saved = tmp_path / "saved"
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, CHILD, str(saved), str(save_s)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert parent.stderr is not None
    line = ""
    while not line.startswith("ready"):
        line = parent.stderr.readline()
        assert line, "the parent ended before its child started"
    child = int(line.split()[1])
    os.kill(parent.pid, signal.SIGINT)
    if ctrl_c == 2:
        while "waiting up to" not in parent.stdout.readline():
            pass
        os.kill(parent.pid, signal.SIGINT)
    start = time.monotonic()
    out, _ = parent.communicate(timeout=30)
    assert "parent interrupted" in out
    assert saved.exists() == (ctrl_c == 1)  # saved before the chain returned / killed in its save
    assert ctrl_c == 1 or time.monotonic() - start < 10
    with pytest.raises(ProcessLookupError):
        os.kill(child, 0)  # reaped: nothing left running
