"""Rehearsal of the prepared GPU run (benchmarks/device_run.py) on the CPU with tiny budgets, so the
script that a lent GPU machine runs once cannot rot between loans (~2 minutes)."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mobiler2l_ns.utils.runs import pick_checkpoint, read_run_config

REPO = Path(__file__).resolve().parents[1]
SCRIPT = REPO / "benchmarks" / "device_run.py"
STUDENTS = ("paper", "paper-volume", "small")


@pytest.fixture(scope="module")
def report(tiny_blender: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("device-run")
    env = {**os.environ, "OMP_NUM_THREADS": "2", "PYTHONUNBUFFERED": "1"}
    args = [
        sys.executable,
        str(SCRIPT),
        "--out",
        str(out),
        "--data",
        str(tiny_blender),
        "--scale",
        "tiny",
        "--device",
        "cpu",
    ]
    proc = subprocess.run(args, cwd=out, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert (out / "device-report.md").is_file()
    return json.loads((out / "device-report.json").read_text())


def test_every_stage_runs_and_reports(report: dict) -> None:
    stages = report["stages"]
    assert list(stages) == ["env", "student-speed", "teacher", "pseudo", "students", "export"]
    assert all(stage["status"] == "ok" for stage in stages.values()), stages
    assert stages["env"]["device"] == "cpu" and stages["env"]["nerfacc_kernels"].startswith("no CUDA")
    assert stages["teacher"]["marcher"] == "torch" and stages["teacher"]["hash_grid"] == "torch"


def student_parameters(name: str) -> int:
    """Parameters of student ``name``'s network and embedder, counted here from its preset."""
    from nerfstudio.data.scene_box import SceneBox

    from mobiler2l_ns.methods.students import STUDENT_RECIPES, mobiler2l_config

    config = mobiler2l_config if name == "paper" else STUDENT_RECIPES[name]
    model = copy.deepcopy(config.pipeline.model).setup(
        scene_box=SceneBox(aabb=torch.tensor([[-1.5] * 3, [1.5] * 3])), num_train_data=1
    )
    return sum(p.numel() for module in (model.network, model.embedder) for p in module.parameters())


def test_figures_are_measured(report: dict) -> None:
    stages = report["stages"]
    speed = stages["student-speed"]
    for name in STUDENTS:
        timings = (speed[name]["render_ms"], speed[name]["train_step_ms"])
        assert all(math.isfinite(t) and t > 0 for t in timings), timings
        assert speed[name]["parameters"] == student_parameters(name)
    assert speed["paper"]["parameters"] == 4_305_539  # the paper's network
    teacher = stages["teacher"]
    assert teacher["steps"] > 0 and math.isfinite(teacher["psnr_after_budget"]) and len(teacher["curve"]) == 4
    assert stages["pseudo"]["cache_views"] == 6 and math.isfinite(stages["pseudo"]["views_per_s_32"])
    for name in STUDENTS:
        student = stages["students"][name]
        assert len(student["psnr_25_50_100"]) == 3 and all(math.isfinite(v) for v in student["psnr_25_50_100"])
        # the saved run is a loadable nerfstudio run whose checkpoint is the reported step count
        config_path = Path(student["config"])
        assert pick_checkpoint(config_path, read_run_config(config_path))[1] == student["steps"] > 0


def test_exported_student_matches_pytorch(report: dict) -> None:
    export = report["stages"]["export"]
    assert export["files"] == ["embedder.onnx", "metadata.json", "model.onnx", "sampler.onnx"]
    assert export["onnxruntime_cpu_vs_torch_db_min"] >= 60.0
