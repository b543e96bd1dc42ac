"""The teacher trains offline on CPU, beats an untrained model, and its checkpoints reload.

Every test uses the session's one tiny teacher (``teacher_run`` in conftest.py).
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np

import pytest
import torch
from nerfstudio.utils.eval_utils import eval_setup
from PIL import Image

from mobiler2l_ns.utils.runs import load_pipeline, read_run_config

from tests.conftest import TEACHER_STEPS as STEPS
from tests.conftest import TINY_TEACHER_FLAGS as TINY_FLAGS
from tests.conftest import TinyTeacher
from tests.helpers import free_port, psnr, run_offline


@dataclass
class Evaluated:
    """The trained teacher evaluated in-process on the test split."""

    metrics: Dict[str, float]
    renders: List[torch.Tensor]
    """[H, W, 3] renders of the test cameras, in the dataset's order."""
    image_names: List[str]


@pytest.fixture(scope="module")
def evaluated(teacher_run: TinyTeacher) -> Evaluated:
    pipeline, _, _ = load_pipeline(teacher_run.config, "cpu", test_mode="test")  # relative paths made absolute
    metrics = pipeline.get_average_eval_image_metrics()
    dataset = pipeline.datamanager.eval_dataset
    pipeline.eval()
    with torch.no_grad():
        renders = [
            pipeline.model.get_outputs_for_camera(dataset.cameras[i : i + 1])["rgb"] for i in range(len(dataset))
        ]
    return Evaluated(metrics, renders, [Path(name).stem for name in dataset.image_filenames])


def test_trains_offline_and_says_lpips_is_unavailable(teacher_run: TinyTeacher):
    assert "LPIPS unavailable" in teacher_run.log
    assert "network disabled" not in teacher_run.log  # nothing tried to connect
    assert (teacher_run.checkpoints / f"step-{STEPS - 1:09d}.ckpt").is_file()


def test_trained_teacher_beats_untrained(
    teacher_run: TinyTeacher, evaluated: Evaluated, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.chdir(teacher_run.root)  # the run's relative data path
    config = read_run_config(teacher_run.config)
    trained_psnr = evaluated.metrics["psnr"]
    torch.manual_seed(0)
    untrained = config.pipeline.setup(device="cpu", test_mode="test")
    untrained.eval()
    untrained_psnr = untrained.get_average_eval_image_metrics()["psnr"]
    assert trained_psnr > untrained_psnr + 8.0, (trained_psnr, untrained_psnr)
    assert trained_psnr > 20.0


def test_inference_single_pass_renders_what_the_two_pass_path_renders(
    teacher_run: TinyTeacher, monkeypatch: pytest.MonkeyPatch
):
    """Eval renders evaluate the field once per sample; the training-style path (density pass in the
    marcher, field on the survivors) must give the same rgb / depth / accumulation."""
    monkeypatch.chdir(teacher_run.root)
    _, pipeline, _, _ = eval_setup(teacher_run.config, test_mode="test")
    model = pipeline.model
    camera = pipeline.datamanager.eval_dataset.cameras[0:1]
    bundle = camera.generate_rays(camera_indices=0, keep_shape=False)
    with torch.no_grad():
        single = model.get_outputs(bundle)
    model.config.single_pass_inference = False  # the training-style path
    with torch.no_grad():
        double = model.get_outputs(bundle)
    assert double["accumulation"].mean() > 0.05  # the view shows the object
    for key in ("rgb", "accumulation", "depth"):
        torch.testing.assert_close(single[key], double[key], atol=1e-5, rtol=1e-5, msg=key)
    assert torch.equal(single["num_samples_per_ray"], double["num_samples_per_ray"])


def test_ns_eval_offline_reports_psnr_without_lpips(teacher_run: TinyTeacher, evaluated: Evaluated):
    out = teacher_run.root / "eval.json"
    proc = run_offline(
        ["ns-eval", "--load-config", str(teacher_run.config), "--output-path", str(out)],
        teacher_run.torch_home,
        cwd=teacher_run.root,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    results = json.loads(out.read_text())["results"]
    # ns-eval's figures are the pipeline's own evaluation of the trained checkpoint
    assert results["psnr"] == pytest.approx(evaluated.metrics["psnr"], abs=0.01)
    assert results["ssim"] == pytest.approx(evaluated.metrics["ssim"], abs=1e-3)
    assert "lpips" not in results
    assert "LPIPS unavailable" in proc.stdout + proc.stderr


def test_load_dir_resumes_training(teacher_run: TinyTeacher, tiny_blender: Path):
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
def test_cpu_checkpoint_renders_the_same_on_cuda(teacher_run: TinyTeacher, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.chdir(teacher_run.root)
    _, pipeline, _, _ = eval_setup(teacher_run.config, test_mode="test")
    camera = pipeline.datamanager.eval_dataset.cameras[0:1]
    with torch.no_grad():
        cpu = pipeline.model.to("cpu").get_outputs_for_camera(camera)["rgb"]
        gpu = pipeline.model.to("cuda").get_outputs_for_camera(camera.to("cuda"))["rgb"].cpu()
    assert (cpu - gpu).abs().mean() < 1e-2


def test_ns_render_writes_the_models_renders_of_the_test_views(teacher_run: TinyTeacher, evaluated: Evaluated):
    out = teacher_run.root / "renders"
    proc = run_offline(
        ["ns-render", "dataset", "--load-config", str(teacher_run.config), "--split", "test"]
        + ["--image-format", "png", "--rendered-output-names", "rgb", "gt-rgb", "--output-path", str(out)],
        teacher_run.torch_home,
        cwd=teacher_run.root,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    renders = {p.stem: p for p in (out / "test" / "rgb").glob("*.png")}
    truths = {p.stem: p for p in (out / "test" / "gt-rgb").glob("*.png")}
    assert sorted(renders) == sorted(truths) == sorted(evaluated.image_names)
    scores = []
    for name, expected in zip(evaluated.image_names, evaluated.renders):
        pred = np.asarray(Image.open(renders[name]), dtype=np.float64) / 255.0
        gt = np.asarray(Image.open(truths[name]), dtype=np.float64) / 255.0
        assert pred.shape == gt.shape == (32, 32, 3)
        assert np.abs(pred - expected.double().numpy()).max() <= 0.5 / 255 + 1e-4  # that view's render, uint8-rounded
        scores.append(psnr(pred, gt))
    # the saved ground truth is the evaluation's: the mean PSNR matches the pipeline's own
    assert float(np.mean(scores)) == pytest.approx(evaluated.metrics["psnr"], abs=0.1)


def test_ns_viewer_loads_the_checkpoint(teacher_run: TinyTeacher):
    """ns-viewer (viser on loopback) loads the run and serves it; stopped once it is up."""
    port = free_port()
    cmd = [str(Path(sys.executable).with_name("ns-viewer")), "--load-config", str(teacher_run.config)]
    cmd += ["--viewer.websocket-host", "127.0.0.1", "--viewer.websocket-port", str(port)]
    proc = subprocess.Popen(
        cmd, cwd=teacher_run.root, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, bufsize=1
    )
    lines, page = [], ""
    try:
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if not line:
                break
            lines.append(line)
            if f"ws://127.0.0.1:{port}" in line:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}", timeout=30) as response:
                    page = response.read().decode("utf-8", "replace")
                break
    finally:
        proc.terminate()
        proc.wait(timeout=30)
    log = "".join(lines)
    assert "Done loading checkpoint" in log, log[-3000:]
    assert "<html" in page.lower()  # the viewer page is served on loopback
