"""Students trained for the same wall-clock budget from one teacher and one pseudo-view cache.

    python benchmarks/student_convergence.py --teacher-config RUN/config.yml [--budget-min 10]
        [--students paper planes] [--pseudo-count 300] [--eval-views 20] [--out benchmarks/results]
        [--set planes.grid_levels=4 ...]

Fills the pseudo-view cache of the teacher first (untimed; reused when complete), then trains each
student with the project's own pipeline (its preset's datamanager, model and optimisers) for
``--budget-min`` minutes of training time, one after another, alone on the machine. Learning rates
follow the preset's warm-up and exponential decay over the *time* budget (so every student ends its
schedule at the budget); BatchNorm is frozen for the last 5 % and the last 5 % train on real images
only (the presets' recipe). Test PSNR / SSIM (torchmetrics) against the ground truth of evenly
spaced test views after 25 / 50 / 100 % of the budget (evaluation time excluded), and the teacher's
on the same views. Prints a table and writes ``NAME.json`` and a learning-curve ``NAME.png`` (PSNR
against training minutes, the teacher as a line) into ``--out`` (``--name``, default
``student-convergence``).

Students (``--students``): ``paper`` is the ``mobiler2l`` preset unchanged (positional encoding,
depth 29, width 256, x8 super-resolution); the others are the recipes of
:data:`mobiler2l_ns.methods.students.STUDENT_RECIPES` (``small``: the ``mobiler2l-small`` preset;
``small-pe``: the CPU student before learned features). ``--set NAME.FIELD=VALUE`` overrides a model / datamanager field of one student.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import numpy as np
import torch
import tyro
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.engine.trainer import TrainerConfig
from rich.console import Console
from rich.table import Table

from common import LEGO, machine_description, require_lego
from timed_training import Budget, fill_cache, setup_pipeline, test_views, train_timed

import mobiler2l_ns  # noqa: F401  (safe globals for nerfstudio checkpoints)
from mobiler2l_ns.distill.teacher import TeacherRun
from mobiler2l_ns.methods.students import STUDENT_RECIPES, mobiler2l_config
from mobiler2l_ns.student.embedders import embedder_flops, embedder_parameters
from mobiler2l_ns.student.network import count_parameters, frame_flops
from mobiler2l_ns.utils.metrics import ImageMetrics

CONSOLE = Console(width=140)
MARKS = (0.25, 0.5, 1.0)
FROZEN_SHARE = 0.05
FINETUNE_SHARE = 0.05


@dataclass
class Args:
    teacher_config: Optional[Path] = None
    """The teacher run's config.yml (trained on --data); None: real images only, no teacher row."""
    data: Path = LEGO
    """Blender scene (default ../shared/data/blender-lego-400)."""
    budget_min: float = 10.0
    """Training minutes per student."""
    budget_steps: Optional[int] = None
    """Budget in steps instead of minutes (experiments on a busy machine); the report's ratios then
    compare steps, not time."""
    students: Tuple[str, ...] = ("paper", "planes")
    """Students to train: paper or a recipe of STUDENT_RECIPES; ``RECIPE:LABEL`` names a variant (see --set)."""
    pseudo_count: int = 300
    """Pseudo views in the shared cache."""
    real_share: float = 0.3
    """Share of real images in the batches."""
    pseudo_patch: Optional[Tuple[int, int]] = None
    """(height, width) of pseudo patches instead of whole pseudo views (see --pipeline.datamanager.pseudo-patch-size)."""
    eval_views: int = 20
    """Test views, evenly spaced over the test split."""
    out: Path = Path("benchmarks/results")
    """Folder of the JSON / Markdown / PNG outputs."""
    name: str = "student-convergence"
    """Base name of the output files."""
    set: Tuple[str, ...] = ()
    """Overrides ``NAME.FIELD=VALUE`` (model or datamanager field of student NAME)."""
    threads: Optional[int] = None
    """torch threads (default: torch's)."""


def student_config(name: str, args: Args, cache: Optional[Path]) -> TrainerConfig:
    """The trainer config of student ``name`` on ``args.data`` with the shared pseudo cache."""
    recipe = name.split(":")[0]  # "planes:wide" is a variant of the planes recipe (see --set)
    if recipe == "paper":
        config = copy.deepcopy(mobiler2l_config)
    elif recipe in STUDENT_RECIPES:
        config = copy.deepcopy(STUDENT_RECIPES[recipe])
    else:
        raise SystemExit(f"--students: unknown student {name!r} (known: paper, {', '.join(STUDENT_RECIPES)})")
    dm = config.pipeline.datamanager
    dm.data = args.data
    dm.dataparser = BlenderDataParserConfig(data=args.data, alpha_color="white")
    if args.teacher_config is not None:
        dm.teacher_config = args.teacher_config.resolve()
        dm.pseudo_count = args.pseudo_count
        dm.pseudo_cache = cache
        dm.pseudo_progress = False
        dm.real_share = args.real_share
        dm.pseudo_patch_size = args.pseudo_patch
    config.pipeline.model.report_cost = False
    for item in args.set:
        key, value = item.split("=", 1)
        student, field_name = key.split(".", 1)
        if student != name:
            continue
        if field_name.startswith("lr."):  # lr.GROUP=VALUE: an optimiser group's rate (and its final rate)
            spec = config.optimizers[field_name[3:]]
            factor = float(eval(value)) / spec["optimizer"].lr  # noqa: S307
            spec["optimizer"].lr *= factor
            spec["scheduler"].lr_final *= factor
            continue
        target = config.pipeline.model if hasattr(config.pipeline.model, field_name) else dm
        current = getattr(target, field_name)
        setattr(target, field_name, type(current)(eval(value)) if current is not None else eval(value))  # noqa: S307
    config.machine.device_type = "cpu" if not torch.cuda.is_available() else "cuda"
    return config


def evaluate(render, views, metrics: ImageMetrics) -> Dict[str, float]:
    """Mean PSNR / SSIM of ``render(camera)`` ([H, W, 3]) over ``views``."""
    scores = [metrics(render(camera).clamp(0, 1).cpu(), image) for camera, image in views]
    return {key: float(np.mean([s[key] for s in scores])) for key in ("psnr", "ssim")}


@dataclass
class Curve:
    name: str
    steps: List[int] = field(default_factory=list)
    minutes: List[float] = field(default_factory=list)
    psnr: List[float] = field(default_factory=list)
    ssim: List[float] = field(default_factory=list)
    info: Dict[str, float] = field(default_factory=dict)


def train_student(name: str, config: TrainerConfig, budget: Budget, views, metrics: ImageMetrics) -> Curve:
    """Train one student for ``budget``; test PSNR / SSIM at its marks."""
    pipeline = setup_pipeline(config, config.machine.device_type)
    model, datamanager = pipeline.model, pipeline.datamanager
    camera = datamanager.train_dataset.cameras[0:1]
    h, w = -(-int(camera.height) // model.config.sr_factor), -(-int(camera.width) // model.config.sr_factor)
    curve = Curve(name)
    curve.info = {
        "network_parameters": count_parameters(model.network),
        "embedder_parameters": embedder_parameters(model.embedder),
        "gflops_per_frame": (frame_flops(model.network, h, w) + embedder_flops(model.embedder, h, w)) / 1e9,
        "embedder": model.config.embedder,
    }
    if datamanager.config.teacher_config is not None and datamanager.config.real_share < 1.0:
        datamanager.start_pseudo()  # the cache is complete: nothing is rendered while timed

    def score(p) -> Dict[str, float]:
        return evaluate(lambda c: p.model.get_outputs_for_camera(c.to(p.model.device))["rgb"], views, metrics)

    def report(mark) -> None:
        curve.steps.append(mark.step)
        curve.minutes.append(mark.seconds / 60.0)
        curve.psnr.append(mark.scores["psnr"])
        curve.ssim.append(mark.scores["ssim"])
        CONSOLE.print(
            f"{name}: step {mark.step}, {mark.seconds / 60:.1f} min: "
            f"PSNR {mark.scores['psnr']:.2f} dB, SSIM {mark.scores['ssim']:.3f} (training PSNR {mark.scores['train_psnr']:.2f})"
        )

    run = train_timed(config, budget, evaluate=score, pipeline=pipeline, on_mark=report)
    datamanager.close()
    curve.info["steps_per_s"] = run.steps_per_s
    return curve


def plot(curves: List[Curve], teacher_psnr: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=120)
    for curve in curves:
        ax.plot([0.0] + curve.minutes, [float("nan")] + curve.psnr, marker="o", label=curve.name)
    ax.axhline(teacher_psnr, color="k", linestyle="--", label=f"teacher {teacher_psnr:.2f} dB")
    ax.set_xlabel("training minutes (same budget each)")
    ax.set_ylabel("test PSNR (dB, vs ground truth)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(args: Args) -> None:
    require_lego(args.data)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    views = test_views(args.data, args.eval_views)
    metrics = ImageMetrics()
    cache = None
    teacher_scores = {"psnr": float("nan"), "ssim": float("nan")}
    if args.teacher_config is not None:
        run = TeacherRun.from_config(args.teacher_config)
        patch = "" if args.pseudo_patch is None else f"-patch{args.pseudo_patch[0]}x{args.pseudo_patch[1]}"
        cache = run.config_path.parent / f"pseudo-convergence-{args.pseudo_count}{patch}"
        if args.real_share < 1.0:
            CONSOLE.print(f"[bold]Pseudo-view cache {cache} ({args.pseudo_count} views)")
            fill_cache(student_config(args.students[0], args, cache), progress=True)
        teacher = run.load("cuda" if torch.cuda.is_available() else "cpu")
        with torch.no_grad():
            teacher_scores = evaluate(lambda c: teacher.render(c.to(teacher.device)), views, metrics)
        del teacher
        CONSOLE.print(f"teacher: PSNR {teacher_scores['psnr']:.2f} dB, SSIM {teacher_scores['ssim']:.3f}")

    curves = []
    for name in args.students:
        torch.manual_seed(0)
        config = student_config(name, args, cache)
        budget = Budget(args.budget_min * 60.0, args.budget_steps, MARKS, FROZEN_SHARE,
                        FINETUNE_SHARE if args.teacher_config is not None else 0.0)  # fmt: skip
        curves.append(train_student(name, config, budget, views, metrics))

    base = curves[0]
    table = Table(title=f"Students after the same {args.budget_min:g} training minutes ({machine_description()})")
    for column in ("student", "embedder", "params (net + grids)", "GFLOPs", "steps/s", "x steps/s",
                   "PSNR 25 %", "PSNR 50 %", "PSNR 100 %", "SSIM", "vs teacher"):  # fmt: skip
        table.add_column(column)
    for curve in curves:
        info = curve.info
        table.add_row(
            curve.name,
            str(info["embedder"]),
            f"{info['network_parameters'] / 1e6:.3f} M + {info['embedder_parameters'] / 1e6:.3f} M",
            f"{info['gflops_per_frame']:.2f}",
            f"{info['steps_per_s']:.2f}",
            f"{info['steps_per_s'] / base.info['steps_per_s']:.2f}",
            *(f"{p:.2f}" for p in curve.psnr),
            f"{curve.ssim[-1]:.3f}",
            f"{curve.psnr[-1] - teacher_scores['psnr']:+.2f} dB",
        )
    CONSOLE.print(table)
    CONSOLE.print(f"teacher: PSNR {teacher_scores['psnr']:.2f} dB, SSIM {teacher_scores['ssim']:.3f} "
                  f"({len(views)} test views vs ground truth)")  # fmt: skip

    args.out.mkdir(parents=True, exist_ok=True)
    report = {
        "machine": machine_description(),
        "budget_min": args.budget_min,
        "pseudo_count": args.pseudo_count,
        "real_share": args.real_share,
        "eval_views": len(views),
        "teacher": teacher_scores,
        "students": [curve.__dict__ for curve in curves],
        "overrides": list(args.set),
    }
    (args.out / f"{args.name}.json").write_text(json.dumps(report, indent=2) + "\n")
    plot(curves, teacher_scores["psnr"], args.out / f"{args.name}.png")
    CONSOLE.print(f"wrote {args.out / args.name}.json / .png")


if __name__ == "__main__":
    main(tyro.cli(Args))
