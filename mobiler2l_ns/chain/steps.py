"""The stages that do not train: process a raw capture, evaluate a run, export ONNX, render previews."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path
from typing import ClassVar, Dict, List

from nerfstudio.utils.rich_utils import CONSOLE

from mobiler2l_ns.chain.layout import ChainLayout
from mobiler2l_ns.chain.stage_base import Decision, Stage, StageRecord, read_json, tool
from mobiler2l_ns.utils.io import write_json_atomic

ONNX_GRAPHS = ("sampler", "embedder", "model")


def summary(result: Dict[str, object]) -> Dict[str, float]:
    """The headline numbers of an evaluation result (metrics available, views, seconds per view)."""
    keys = ("psnr", "ssim", "lpips", "views", "seconds_per_view")
    return {k: result[k] for k in keys if isinstance(result.get(k), (int, float))}  # type: ignore[misc]


class ProcessStage(Stage):
    """``ns-process-data`` (COLMAP) on raw photos or a video; done once: an existing processed capture
    is kept whatever its age (the photos are not compared by time)."""

    name = "process"

    def needed(self, chain: ChainLayout) -> bool:
        return chain.kind in ("images", "video")

    def inputs(self, chain: ChainLayout) -> List[Path]:
        return [chain.data]

    def outputs(self, chain: ChainLayout) -> List[Path]:
        return [chain.dataset / "transforms.json"]

    def decide(self, chain: ChainLayout) -> Decision:
        transforms = self.outputs(chain)[0]
        if transforms.is_file():
            return Decision("skip", f"{transforms} exists")
        return Decision("run", "no processed capture yet")

    def run(self, chain: ChainLayout) -> StageRecord:
        if self.decide(chain).action == "skip":
            return StageRecord("skipped", 0.0, [str(chain.dataset)])
        from mobiler2l_ns.capture.process import process_capture  # pylint: disable=import-outside-toplevel

        process_capture(chain.data, chain.dataset, max_photo_size=chain.preset.max_photo_size)
        return StageRecord("done", 0.0, [str(chain.dataset)])


class EvalStage(Stage):
    """Test-view metrics and renders of a run: ``eval/WHO.json``, ``renders/WHO/test/``; rerun when the
    preset asks for another number of views."""

    who: ClassVar[str]

    def config(self, chain: ChainLayout) -> Path:
        return chain.teacher_config if self.who == "teacher" else chain.student_config

    def inputs(self, chain: ChainLayout) -> List[Path]:
        return [self.config(chain).parent / "nerfstudio_models"]

    def outputs(self, chain: ChainLayout) -> List[Path]:
        return [chain.eval_path(self.who)]

    def decide(self, chain: ChainLayout) -> Decision:
        out = chain.eval_path(self.who)
        if out.is_file():
            requested = read_json(out).get("requested_views", chain.preset.eval_views)
            if requested != chain.preset.eval_views:
                return Decision("run", f"evaluated views changed: {requested} -> {chain.preset.eval_views}")
        return super().decide(chain)

    def run(self, chain: ChainLayout) -> StageRecord:
        out = chain.eval_path(self.who)
        if self.decide(chain).action == "skip":
            return StageRecord("skipped", 0.0, [str(out)], {"results": summary(json.loads(out.read_text()))})
        from mobiler2l_ns.chain.evaluate import evaluate_run  # pylint: disable=import-outside-toplevel

        renders = chain.renders / self.who
        shutil.rmtree(renders, ignore_errors=True)
        result = evaluate_run(self.config(chain), renders, chain.preset.eval_views, save_gt=self.who == "teacher")
        write_json_atomic(out, {**result, "requested_views": chain.preset.eval_views})
        CONSOLE.print(f"{self.who}: " + ", ".join(f"{k} {v:.4g}" for k, v in summary(result).items()))
        return StageRecord("done", 0.0, [str(out)], {"results": summary(result)})


class TeacherEvalStage(EvalStage):
    name = "teacher-eval"
    depends = ("teacher",)
    who = "teacher"


class StudentEvalStage(EvalStage):
    name = "student-eval"
    depends = ("student",)
    who = "student"


class ExportStage(Stage):
    """``ns-export mobiler2l-onnx``: the student's three ONNX graphs and metadata.json."""

    name = "export"
    depends = ("student",)

    def inputs(self, chain: ChainLayout) -> List[Path]:
        return [chain.student_config.parent / "nerfstudio_models"]

    def outputs(self, chain: ChainLayout) -> List[Path]:
        return [*(chain.export_dir / f"{g}.onnx" for g in ONNX_GRAPHS), chain.export_dir / "metadata.json"]

    def run(self, chain: ChainLayout) -> StageRecord:
        if self.decide(chain).action == "skip":
            return StageRecord("skipped", 0.0, [str(chain.export_dir)])
        args = [tool("ns-export"), "mobiler2l-onnx", "--load-config", str(chain.student_config)]
        self.command([*args, "--output-dir", str(chain.export_dir)])
        return StageRecord("done", 0.0, [str(chain.export_dir)])


class PreviewStage(Stage):
    """The export rendered by onnxruntime (``mobiler2l-render``: a view and an orbit GIF) and the
    comparison strip of the evaluations' renders."""

    name = "preview"
    depends = ("export", "teacher-eval", "student-eval")

    def inputs(self, chain: ChainLayout) -> List[Path]:
        return [chain.export_dir, chain.root / "eval"]

    def outputs(self, chain: ChainLayout) -> List[Path]:
        return [chain.renders / "strip.png", chain.renders / "onnx-view.png", chain.renders / "onnx-orbit.gif"]

    def run(self, chain: ChainLayout) -> StageRecord:
        strip, view, orbit = self.outputs(chain)
        if self.decide(chain).action == "skip":
            return StageRecord("skipped", 0.0, [str(p) for p in (strip, view, orbit)])
        onnx = [tool("mobiler2l-render"), str(chain.export_dir)]
        self.command([*onnx, "--out", str(view)])
        self.command([*onnx, "--orbit", str(chain.preset.orbit_frames), "--out", str(orbit)])
        self.command([sys.executable, "-m", "mobiler2l_ns.utils.strip", str(chain.renders), "--out", str(strip)])
        return StageRecord("done", 0.0, [str(p) for p in (strip, view, orbit)])
