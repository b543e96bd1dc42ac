"""Real-capture teachers (and nerfstudio's ``nerfacto``) trained for the same minutes on a processed capture.

    python benchmarks/real_teacher.py --data runs/eth/data [--minutes 4] [--variants preset levels2 ...]
        [--nerfacto] [--eval-views 7] [--marks 0.5 1.0] [--name real-teacher]

``--data`` is an ``ns-process-data`` folder (``mobiler2l-process`` / ``mobiler2l run`` make one). Each
variant is the ``mobiler2l-teacher-real`` preset with some model fields changed (:data:`VARIANTS`),
trained in this process for ``--minutes`` of training time (evaluation excluded; learning rate decays
over the budget), one after another, alone on the machine. Printed per variant: steps, rays per
second, mean samples per ray that the trained teacher shades (one training batch, inference), and PSNR / SSIM (torchmetrics) on the held-out views
(nerfstudio-data's eval split, views the teacher never trained on: ``--eval-views`` of them, evenly
spaced, rendered at ``--eval-scale`` of their size against the area-downsampled photos) and the rays per
second of those renders, with the preset's rays/s as the baseline ratio. ``--nerfacto`` adds nerfstudio's
``nerfacto`` on the same data for the same minutes (its own batch size and optimisers). Writes
``NAME.json``, ``NAME.png`` (held-out PSNR against minutes) and ``NAME-views.png`` (each held-out view's
photo, then every run's final render, side by side) into ``--out``.
"""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
import tyro
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.trainer import TrainerConfig
from rich.console import Console
from rich.table import Table

from common import NoLPIPS, machine_description
from timed_training import Budget, Mark, train_timed

import mobiler2l_ns  # noqa: F401  (safe globals for nerfstudio checkpoints)
from mobiler2l_ns.chain.evaluate import spaced_indices
from mobiler2l_ns.methods.teachers import teacher_real_method
from mobiler2l_ns.utils.io import write_json_atomic, write_png
from mobiler2l_ns.utils.metrics import ImageMetrics

CONSOLE = Console(width=140)

VARIANTS: Dict[str, Dict[str, object]] = {
    "preset": {},
    "ngp": {"grid_levels": 4, "cone_angle": 0.004, "steps_per_diagonal": 300, "rays": 2048},
    "levels2-cone": {"grid_levels": 2, "cone_angle": 0.016, "steps_per_diagonal": 300, "rays": 2048},
    "levels2-cone-step": {"grid_levels": 2, "cone_angle": 0.016, "steps_per_diagonal": 150, "rays": 2048},
    "lean": {"grid_levels": 2, "cone_angle": 0.03, "steps_per_diagonal": 100, "rays": 2048},
    "box": {"grid_levels": 1, "cone_angle": 0.0, "steps_per_diagonal": 300, "rays": 2048},
    "box-lean": {"grid_levels": 1, "cone_angle": 0.0, "steps_per_diagonal": 150, "rays": 2048},
    "leaner": {"grid_levels": 2, "cone_angle": 0.05, "steps_per_diagonal": 64, "rays": 2048},
    "lean-1024": {"grid_levels": 2, "cone_angle": 0.03, "steps_per_diagonal": 100, "rays": 1024},
}
"""Model fields changed from the ``mobiler2l-teacher-real`` preset (its CPU values; ``rays``: rays per batch).
``ngp`` is the preset before these measurements: Instant-NGP's unbounded marching (4 grid levels, cone 0.004)."""


@dataclass
class Args:
    data: Path
    """An ns-process-data folder (transforms.json)."""
    minutes: float = 4.0
    """Training minutes per variant."""
    variants: List[str] = field(default_factory=lambda: ["preset", "ngp"])
    nerfacto: bool = False
    """Also train nerfstudio's nerfacto for the same minutes."""
    marks: List[float] = field(default_factory=lambda: [0.5, 1.0])
    """Shares of the budget at which the held-out views are evaluated (the last must be 1)."""
    eval_views: int = 7
    """Held-out views evaluated (evenly spaced over the eval split)."""
    eval_scale: float = 0.25
    """Held-out views are rendered at this share of their resolution (a CPU teacher renders ~10k rays/s)."""
    downscale: int = 1
    """Training images downscaled by this factor (nerfstudio-data's downscale_factor); held-out views too."""
    out: Path = Path("benchmarks/results")
    name: str = "real-teacher"


def teacher_config(args: Args, overrides: Dict[str, object]) -> TrainerConfig:
    config = copy.deepcopy(teacher_real_method.config)
    config.pipeline.datamanager.dataparser = NerfstudioDataParserConfig(data=args.data, downscale_factor=args.downscale)
    for key, value in overrides.items():
        if key == "rays":
            config.pipeline.datamanager.train_num_rays_per_batch = int(value)
        else:
            setattr(config.pipeline.model, key, value)
    return config


def nerfacto_config(args: Args) -> TrainerConfig:
    import torchmetrics.image.lpip
    from nerfstudio.configs.method_configs import method_configs

    torchmetrics.image.lpip.LearnedPerceptualImagePatchSimilarity = NoLPIPS  # its AlexNet weights would download
    config = copy.deepcopy(method_configs["nerfacto"])
    config.pipeline.datamanager.data = None
    config.pipeline.datamanager.dataparser = NerfstudioDataParserConfig(data=args.data, downscale_factor=args.downscale)
    config.machine.device_type = "cpu" if not torch.cuda.is_available() else "cuda"
    config.mixed_precision = False
    return config


def held_out(pipeline, count: int, scale: float, renders: List[np.ndarray]) -> Dict[str, float]:
    """Mean PSNR / SSIM over ``count`` evenly spaced views of the eval split (never trained on), rendered
    at ``scale`` of their resolution against area-downsampled photos; and the render's rays per second.
    ``renders`` is refilled with ``[photo, render]`` pairs (H W 3 arrays in [0, 1]) of those views."""
    renders.clear()
    dataset = pipeline.datamanager.eval_dataset
    metrics = ImageMetrics()
    scores: List[Dict[str, float]] = []
    rays, seconds = 0, 0.0
    for index in spaced_indices(len(dataset), count):
        camera = dataset.cameras[index : index + 1].to(pipeline.device)
        camera.rescale_output_resolution(scale)
        height, width = int(camera.height), int(camera.width)
        photo = dataset[index]["image"][..., :3].permute(2, 0, 1)[None].to(pipeline.device)
        truth = torch.nn.functional.interpolate(photo, size=(height, width), mode="area")[0].permute(1, 2, 0)
        start = time.perf_counter()
        rgb = pipeline.model.get_outputs_for_camera(camera)["rgb"]
        seconds += time.perf_counter() - start
        rays += height * width
        scores.append({k: float(v) for k, v in metrics(rgb, truth).items() if k in ("psnr", "ssim")})
        renders.extend(image.clamp(0, 1).cpu().numpy() for image in (truth, rgb))
    means = {key: sum(s[key] for s in scores) / len(scores) for key in ("psnr", "ssim")}
    return {**means, "render_rays_per_s": rays / seconds}


def run_one(name: str, config: TrainerConfig, args: Args) -> Dict[str, object]:
    CONSOLE.print(f"[bold]{name}[/]: {args.minutes:g} min of training")
    rays_per_step = config.pipeline.datamanager.train_num_rays_per_batch
    renders: List[np.ndarray] = []  # the latest evaluation's [photo, render] pairs

    def evaluate(pipeline) -> Dict[str, float]:
        start = time.perf_counter()
        scores = held_out(pipeline, args.eval_views, args.eval_scale, renders)
        scores["eval_s"] = time.perf_counter() - start
        return scores

    def on_mark(mark: Mark) -> None:
        CONSOLE.print(f"  step {mark.step}, {mark.seconds / 60:.1f} min: {mark.scores}")

    start = time.perf_counter()
    run = train_timed(
        config, Budget(seconds=60 * args.minutes, marks=tuple(args.marks)), evaluate=evaluate, on_mark=on_mark
    )
    final = run.marks[-1].scores
    ray_bundle, _ = run.pipeline.datamanager.next_train(run.steps)
    with torch.no_grad():
        per_ray = run.pipeline.model(ray_bundle).get("num_samples_per_ray")  # forward: nerfacto's collider
    return {
        "name": name,
        "steps": run.steps,
        "train_s": run.seconds,
        "rays_per_s": run.steps * rays_per_step / run.seconds,
        "samples_per_ray": None if per_ray is None else float(per_ray.float().mean()),
        "psnr": final["psnr"],
        "ssim": final["ssim"],
        "render_rays_per_s": final["render_rays_per_s"],
        "wall_s": time.perf_counter() - start,
        "marks": [{"step": m.step, "minutes": m.seconds / 60, **m.scores} for m in run.marks],
        "renders": renders,
    }


def main(args: Args) -> None:
    unknown = [v for v in args.variants if v not in VARIANTS]
    if unknown:
        raise SystemExit(f"--variants: unknown {unknown}; expected some of {', '.join(VARIANTS)}")
    if not (args.data / "transforms.json").is_file():
        raise SystemExit(f"--data {args.data}: expected an ns-process-data folder with transforms.json")
    torch.manual_seed(0)
    results = [run_one(v, teacher_config(args, VARIANTS[v]), args) for v in args.variants]
    if args.nerfacto:
        results.append(run_one("nerfacto", nerfacto_config(args), args))
    base = results[0]["rays_per_s"]
    table = Table(title=f"{args.data} ({args.minutes:g} min each; {machine_description()})")
    columns = (
        "run",
        "steps",
        "train rays/s",
        f"x {results[0]['name']}",
        "samples/ray",
        "render rays/s",
        "held-out PSNR",
        "SSIM",
    )
    for column in columns:
        table.add_column(column)
    for r in results:
        per_ray = "-" if r["samples_per_ray"] is None else f"{r['samples_per_ray']:.1f}"
        table.add_row(r["name"], str(r["steps"]), f"{r['rays_per_s']:.0f}", f"{r['rays_per_s'] / base:.2f}",
                      per_ray, f"{r['render_rays_per_s']:.0f}", f"{r['psnr']:.2f}", f"{r['ssim']:.3f}")  # fmt: skip
    CONSOLE.print(table)
    args.out.mkdir(parents=True, exist_ok=True)
    write_png(args.out / f"{args.name}-views.png", side_by_side(results))
    runs = [{k: v for k, v in r.items() if k != "renders"} for r in results]
    report = {"data": str(args.data), "minutes": args.minutes, "machine": machine_description(), "runs": runs}
    write_json_atomic(args.out / f"{args.name}.json", report)
    plot(results, args.out / f"{args.name}.png")
    CONSOLE.print(f"wrote {args.out / args.name}.json, .png and -views.png")


def side_by_side(results: List[Dict[str, object]]) -> np.ndarray:
    """One row per held-out view: the photo, then each run's final render, in the order of ``results``."""
    photos = results[0]["renders"][0::2]
    renders = [r["renders"][1::2] for r in results]
    rows = [np.concatenate([photo, *(run[i] for run in renders)], axis=1) for i, photo in enumerate(photos)]
    return np.concatenate(rows, axis=0)


def plot(results: List[Dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6, 4), dpi=100)
    for r in results:
        ax.plot([m["minutes"] for m in r["marks"]], [m["psnr"] for m in r["marks"]], marker="o", label=r["name"])
    ax.set_xlabel("training minutes (2-core CPU)")
    ax.set_ylabel("held-out PSNR (dB)")
    ax.grid(alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


if __name__ == "__main__":
    main(tyro.cli(Args))
