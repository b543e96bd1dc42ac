"""`mobiler2l run` end to end on a tiny scene on CPU: real training, export and previews, then a resume.

The planner's decisions (skip, rerun, retrain, resume, ``--until``, stub and truncated runs) are unit
tested on hand-made folders in ``tests/test_chain_plan.py``; here the real tools make the files.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobiler2l_ns.chain import Chain
from mobiler2l_ns.export.runtime import OnnxLightField
from mobiler2l_ns.utils.checkpoints import usable_checkpoints
from mobiler2l_ns.utils.io import read_rgb, to_uint8
from mobiler2l_ns.utils.strip import COLUMNS, comparison_strip
from tests.conftest import TINY_CHAIN as TINY
from tests.helpers import blender_views, psnr

pytestmark = pytest.mark.usefixtures("single_thread")

STAGES = ["teacher", "teacher-eval", "student", "student-eval", "export", "preview"]


def rendered(folder: Path) -> list:
    """The PNG renders of an evaluation, by test view, as float ``[H, W, 3]``."""
    return [read_rgb(p) for p in sorted(folder.glob("*.png"))]


def test_whole_chain_exports_an_onnx_student_that_renders_the_held_out_views(chain: Chain, tiny_blender: Path):
    record = json.loads(chain.record_path.read_text())
    assert list(record["stages"]) == STAGES
    assert all(stage["status"] == "done" for stage in record["stages"].values())
    _, truths = blender_views(tiny_blender, "test")
    truths = truths.numpy()
    # the best constant image per view: what a model that learnt nothing scores (~13-14 dB here; measured
    # with 2 cores under load: teacher +8.7 to +11 dB on every view, ONNX student +7.2 to +9.1 dB)
    blank = [max(psnr(np.ones_like(gt), gt), psnr(np.broadcast_to(gt.mean((0, 1)), gt.shape), gt)) for gt in truths]

    # evaluations: the recorded PSNR is the renders' against the ground truth, and well above a blank image
    for who in ("teacher", "student"):
        results = record["stages"][f"{who}-eval"]["detail"]["results"]
        images = rendered(chain.renders / who / "test" / "rgb")
        assert results["views"] == len(images) == len(truths)
        scores = [psnr(image, gt) for image, gt in zip(images, truths)]
        assert abs(np.mean(scores) - results["psnr"]) < 0.1, (scores, results)  # 8-bit PNGs vs float renders
        assert min(s - b for s, b in zip(scores, blank)) > 3.0, (who, scores, blank)
    teacher_margin = record["stages"]["teacher-eval"]["detail"]["results"]["psnr"] - np.mean(blank)
    assert teacher_margin > 5.0, (teacher_margin, blank)

    # the exported graphs, run by onnxruntime on the held-out test poses (capture coordinates), render
    # what the trained student renders in PyTorch, clearly better than the best constant image
    field = OnnxLightField(chain.export_dir)
    meta = json.loads((tiny_blender / "transforms_test.json").read_text())
    student = rendered(chain.renders / "student" / "test" / "rgb")
    margins = []
    for frame, gt, torch_render, floor in zip(meta["frames"], truths, student, blank):
        image = field.render(np.asarray(frame["transform_matrix"]), original_coords=True)
        assert image.shape == gt.shape
        assert psnr(image, torch_render) > 40.0  # the export is faithful (measured ~63 dB: 8-bit PNG rounding)
        margins.append(psnr(image, gt) - floor)
    assert np.mean(margins) > 5.0 and min(margins) > 3.0, margins

    # previews: the strip of the evaluations' renders, the reference view and an orbit of the export
    columns = [sorted((chain.renders / name).glob("*.png")) for name in COLUMNS]
    strip = np.asarray(Image.open(chain.renders / "strip.png").convert("RGB"))
    np.testing.assert_array_equal(strip, to_uint8(comparison_strip(columns, 4)))
    view = read_rgb(chain.renders / "onnx-view.png")
    assert psnr(view, field.render(field.reference_pose)) > 45.0
    with Image.open(chain.renders / "onnx-orbit.gif") as gif:
        assert gif.n_frames == TINY.orbit_frames and gif.size == view.shape[1::-1]

    # a rerun of the same command has nothing to do
    plan = Chain(chain.data, chain.out, chain.name, TINY).plan()
    assert {name: d.action for name, d in plan.items()} == dict.fromkeys(STAGES, "skip"), plan


def test_more_student_steps_resume_from_the_last_checkpoint(chain: Chain, capfd: pytest.CaptureFixture) -> None:
    """A larger student step count continues the finished run (ns-train --load-dir) to its new end,
    keeping the teacher."""
    steps = TINY.student_steps + 40
    checkpoints = chain.student_config.parent / "nerfstudio_models"
    teacher_checkpoints = {p: p.stat().st_mtime for p in (chain.teacher_config.parent / "nerfstudio_models").iterdir()}
    records = Chain(chain.data, chain.out, chain.name, TINY.with_steps(student=steps)).run(until="student")
    assert f"resuming from step {TINY.student_steps - 1}" in capfd.readouterr().out
    assert usable_checkpoints(checkpoints) == (steps - 1, [])
    assert records["teacher"].status == "skipped" and records["student"].status == "done"
    assert records["student"].detail["resumed_from"] == TINY.student_steps - 1
    assert {p: p.stat().st_mtime for p in (chain.teacher_config.parent / "nerfstudio_models").iterdir()} == (
        teacher_checkpoints
    )
