"""`mobiler2l run`: the whole chain on a tiny scene, end to end on CPU, resumable stage by stage."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobiler2l_ns.chain import Chain, ChainPreset, Decision
from mobiler2l_ns.chain.stages import STEP_FLAGS, changed_settings, data_kind, flag_values, latest_step
from mobiler2l_ns.export.runtime import OnnxLightField
from mobiler2l_ns.utils.errors import InputError
from tests.conftest import TINY_TEACHER_FLAGS

pytestmark = pytest.mark.usefixtures("single_thread")

MODEL_FLAGS = tuple(
    flag
    for i, flag in enumerate(TINY_TEACHER_FLAGS)
    if flag.startswith("--pipeline.") or (i > 0 and TINY_TEACHER_FLAGS[i - 1].startswith("--pipeline."))
)
TINY = ChainPreset(
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


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10 * np.log10(np.mean((a - b) ** 2)))


def test_data_kinds_and_bad_data(tiny_blender: Path, tmp_path: Path) -> None:
    assert data_kind(tiny_blender) == "blender"
    (tmp_path / "capture").mkdir()
    (tmp_path / "capture" / "transforms.json").write_text("{}")
    assert data_kind(tmp_path / "capture") == "nerfstudio"
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "a.jpg")
    assert data_kind(tmp_path / "photos") == "images"
    (tmp_path / "clip.mp4").write_bytes(b"")
    assert data_kind(tmp_path / "clip.mp4") == "video"
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    for bad, expected in (
        (tmp_path / "missing", "no such file or folder"),
        (tmp_path / "empty", "expected a Blender scene"),
        (tmp_path / "notes.txt", "not a video"),
    ):
        with pytest.raises(InputError, match=expected) as err:
            data_kind(bad)
        assert "\n" not in str(err.value) and str(bad) in str(err.value)


def test_plan_of_a_new_folder_trains_everything(tiny_blender: Path, tmp_path: Path) -> None:
    plan = Chain(tiny_blender, tmp_path, "new", TINY).plan()
    assert plan == {
        "teacher": Decision("train", "no checkpoint yet"),
        "teacher-eval": Decision("run", "after teacher"),
        "student": Decision("train", "no checkpoint yet"),
        "student-eval": Decision("run", "after student"),
        "export": Decision("run", "after student"),
        "preview": Decision("run", "after export, teacher-eval, student-eval"),
    }
    assert not (tmp_path / "new").exists()  # planning writes nothing


@pytest.fixture(scope="module")
def chain(tiny_blender: Path, tmp_path_factory: pytest.TempPathFactory) -> Chain:
    out = tmp_path_factory.mktemp("chain")
    chain = Chain(tiny_blender, out, "tiny", TINY)
    chain.run()
    return chain


def test_whole_chain_exports_an_onnx_student_that_renders_the_held_out_views(chain: Chain, tiny_blender: Path):
    record = json.loads(chain.record_path.read_text())
    assert list(record["stages"]) == ["teacher", "teacher-eval", "student", "student-eval", "export", "preview"]
    assert all(stage["status"] == "done" for stage in record["stages"].values())
    teacher_psnr = record["stages"]["teacher-eval"]["detail"]["results"]["psnr"]
    assert teacher_psnr > 20.0, record["stages"]["teacher-eval"]
    for name in ("strip.png", "onnx-view.png", "onnx-orbit.gif"):
        assert (chain.renders / name).stat().st_size > 0
    # The exported graphs, run by onnxruntime on the held-out test poses (capture coordinates).
    field = OnnxLightField(chain.export_dir)
    meta = json.loads((tiny_blender / "transforms_test.json").read_text())
    margins = []
    for frame in meta["frames"]:
        rgba = np.asarray(Image.open(tiny_blender / f"{frame['file_path']}.png"), dtype=np.float32) / 255.0
        gt = rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:])
        image = field.render(np.asarray(frame["transform_matrix"]), original_coords=True)
        assert image.shape == gt.shape
        best_blank = max(psnr(np.ones_like(gt), gt), psnr(np.broadcast_to(gt.mean((0, 1)), gt.shape), gt))
        margins.append(psnr(image, gt) - best_blank)
    # clearly better than the best constant image on average, and better on every view
    assert np.mean(margins) > 3.0 and min(margins) > 1.0, margins


def test_rerun_skips_finished_stages_and_redoes_a_missing_one(chain: Chain) -> None:
    checkpoint = next((chain.student_config.parent / "nerfstudio_models").glob("*.ckpt"))
    before = checkpoint.stat().st_mtime
    for graph in chain.export_dir.iterdir():
        graph.unlink()
    plan = Chain(chain.data, chain.out, chain.name, TINY).plan()
    assert {name: decision.action for name, decision in plan.items()} == {
        "teacher": "skip",
        "teacher-eval": "skip",
        "student": "skip",
        "student-eval": "skip",
        "export": "run",
        "preview": "run",
    }
    assert plan["export"].reason == "missing sampler.onnx, embedder.onnx, model.onnx, metadata.json"
    assert plan["preview"].reason == "after export"
    records = Chain(chain.data, chain.out, chain.name, TINY).run()
    status = {name: record.status for name, record in records.items()}
    assert status == {
        "teacher": "skipped",
        "teacher-eval": "skipped",
        "student": "skipped",
        "student-eval": "skipped",
        "export": "done",
        "preview": "done",
    }
    assert checkpoint.stat().st_mtime == before
    plan = Chain(chain.data, chain.out, chain.name, replace(TINY, eval_views=2)).plan()
    assert plan["teacher-eval"] == Decision("run", "evaluated views changed: None -> 2")
    assert plan["student"].action == "skip" and plan["preview"] == Decision("run", "after teacher-eval, student-eval")


def test_more_student_steps_resume_from_the_last_checkpoint(chain: Chain, capfd: pytest.CaptureFixture) -> None:
    """A larger student step count continues the finished run (ns-train --load-dir), keeping the teacher."""
    steps = TINY.student_steps + 40
    checkpoints = chain.student_config.parent / "nerfstudio_models"
    records = Chain(chain.data, chain.out, chain.name, TINY.with_steps(student=steps)).run(until="student")
    assert f"resuming from step {TINY.student_steps - 1}" in capfd.readouterr().out
    assert latest_step(checkpoints) == steps - 1
    assert records["teacher"].status == "skipped" and records["student"].status == "done"
    assert records["student"].detail["resumed_from"] == TINY.student_steps - 1


def test_cli_plan_names_changed_settings_and_runs_nothing(chain: Chain, tmp_path: Path) -> None:
    """Another preset on the same folder: the teacher is retrained (not resumed with flags it was not
    trained with), everything after it reruns; --plan says so and touches nothing."""
    checkpoints = chain.teacher_config.parent / "nerfstudio_models"
    before = {p: p.stat().st_mtime for p in checkpoints.iterdir()}
    args = [sys.executable, "-m", "mobiler2l_ns.cli", "run", str(chain.data), "--out", str(chain.out)]
    args += ["--name", chain.name, "--preset", "cpu-toy", "--teacher-steps", str(TINY.teacher_steps)]
    proc = subprocess.run([*args, "--plan"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = dict(line.split(": ", 1) for line in proc.stdout.splitlines() if ": " in line)
    assert lines["teacher"].startswith("retrain (settings changed: "), proc.stdout
    assert f"{MODEL_FLAGS[0]} {MODEL_FLAGS[1]} -> (unset)" in lines["teacher"]
    assert lines["student"] == "retrain (after teacher)" and lines["export"] == "run (after student)"
    assert {p: p.stat().st_mtime for p in checkpoints.iterdir()} == before
    bad = subprocess.run([*args[:4], str(tmp_path / "nope")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1
    assert bad.stderr.strip().splitlines()[-1] == f"mobiler2l: DATA {tmp_path / 'nope'}: no such file or folder"


def test_settings_of_a_run_and_what_changed() -> None:
    args = ["--a", "1", "--pipeline.model.x", "2", "3", "--optimizers.student.scheduler.max-steps", "10"]
    args += ["--optimizers.grids.scheduler.max-steps", "10"]  # schedules follow the steps: not settings
    flags = flag_values(args, ignore=STEP_FLAGS)
    assert flags == {"--a": "1", "--pipeline.model.x": "2 3"}
    old = {"method": "m", "data": "d", "flags": flags}
    assert changed_settings(old, {"method": "m", "data": "d", "flags": dict(flags)}) == ""
    assert changed_settings(None, old) == ""
    new = {"method": "m", "data": "e", "flags": {"--a": "4", "--b": "5"}}
    assert changed_settings(old, new) == "data d -> e; --a 1 -> 4; --b (unset) -> 5; --pipeline.model.x 2 3 -> (unset)"
