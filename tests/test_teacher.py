"""The teacher trains offline on CPU, beats an untrained model, and its checkpoints reload."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from nerfstudio.utils.eval_utils import eval_setup

from tests.conftest import TEACHER_STEPS as STEPS
from tests.conftest import TINY_TEACHER_FLAGS as TINY_FLAGS
from tests.conftest import TeacherRun, run_offline


def test_trains_offline_and_says_lpips_is_unavailable(teacher_run: TeacherRun):
    assert "LPIPS unavailable" in teacher_run.log
    assert "network disabled" not in teacher_run.log  # nothing tried to connect
    assert (teacher_run.checkpoints / f"step-{STEPS - 1:09d}.ckpt").is_file()


def test_trained_teacher_beats_untrained(teacher_run: TeacherRun, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(teacher_run.root)
    config, trained, _, _ = eval_setup(teacher_run.config, test_mode="test")  # torch>=2.6 safe loading
    trained_psnr = trained.get_average_eval_image_metrics()["psnr"]
    torch.manual_seed(0)
    untrained = config.pipeline.setup(device="cpu", test_mode="test")
    untrained.eval()
    untrained_psnr = untrained.get_average_eval_image_metrics()["psnr"]
    assert trained_psnr > untrained_psnr + 8.0, (trained_psnr, untrained_psnr)
    assert trained_psnr > 20.0


def test_ns_eval_offline_reports_psnr_without_lpips(teacher_run: TeacherRun):
    out = teacher_run.root / "eval.json"
    proc = run_offline(
        ["ns-eval", "--load-config", str(teacher_run.config), "--output-path", str(out)],
        teacher_run.torch_home,
        cwd=teacher_run.root,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    assert results["psnr"] > 20.0 and 0.0 < results["ssim"] <= 1.0
    assert "lpips" not in results
    assert "LPIPS unavailable" in proc.stdout + proc.stderr


def test_load_dir_resumes_training(teacher_run: TeacherRun, tiny_blender: Path):
    root = teacher_run.root / "resume"
    root.mkdir()
    # nerfstudio runs --max-num-iterations more steps after the loaded one.
    args = ["ns-train", "mobiler2l-teacher", *TINY_FLAGS, "--max-num-iterations", "20"]
    args += ["--load-dir", str(teacher_run.checkpoints), "--output-dir", str(root / "outputs")]
    args += ["blender-data", "--data", str(tiny_blender)]
    proc = run_offline(args, teacher_run.torch_home, cwd=root)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Done loading Nerfstudio checkpoint" in proc.stdout + proc.stderr
    resumed = root / "outputs" / "tiny" / "mobiler2l-teacher" / "run" / "nerfstudio_models"
    state = torch.load(resumed / f"step-{STEPS + 19:09d}.ckpt", map_location="cpu")  # weights_only default
    assert state["step"] == STEPS + 19


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cpu_checkpoint_renders_the_same_on_cuda(teacher_run: TeacherRun, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(teacher_run.root)
    _, pipeline, _, _ = eval_setup(teacher_run.config, test_mode="test")
    camera = pipeline.datamanager.eval_dataset.cameras[0:1]
    with torch.no_grad():
        cpu = pipeline.model.to("cpu").get_outputs_for_camera(camera)["rgb"]
        gpu = pipeline.model.to("cuda").get_outputs_for_camera(camera.to("cuda"))["rgb"].cpu()
    assert (cpu - gpu).abs().mean() < 1e-2
