"""Test-view evaluation of a trained run (teacher or student): metrics, timing and PNG renders.

Like ``ns-eval`` (same cameras, PSNR/SSIM with torchmetrics, LPIPS only when it is available
offline), but on an evenly spaced subset of the test views when asked (a CPU teacher takes seconds
per 400x400 view), with the render time per view, and with the renders written as PNGs for the
comparison strip: ``RENDERS/test/rgb/NNNNN.png`` and, with ``save_gt``, ``RENDERS/test/gt-rgb/``.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from mobiler2l_ns.utils.io import write_png
from mobiler2l_ns.utils.metrics import ImageMetrics
from mobiler2l_ns.utils.runs import load_pipeline


def spaced_indices(total: int, views: Optional[int]) -> List[int]:
    """``views`` indices evenly spread over ``range(total)`` (all of them when ``views`` is None)."""
    if views is None or views >= total:
        return list(range(total))
    return sorted({int(round(i * (total - 1) / max(views - 1, 1))) for i in range(views)})


def evaluate_run(
    config: Path, renders: Optional[Path] = None, views: Optional[int] = None, save_gt: bool = False
) -> Dict[str, object]:
    """Metrics of a run on (a subset of) its test split.

    Returns ``{"psnr", "ssim"[, "lpips"], "views", "indices", "seconds_per_view", "per_view"}``; the
    metric keys hold means over the views, ``seconds_per_view`` the median render time.
    """
    device = "cuda" if torch.cuda.is_available() else "cpu"
    pipeline, _, _ = load_pipeline(config, device, test_mode="test")
    dataset = pipeline.datamanager.eval_dataset
    indices = spaced_indices(len(dataset), views)
    metrics = ImageMetrics()
    per_view: List[Dict[str, float]] = []
    seconds: List[float] = []
    columns = (TextColumn("evaluating"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns) as progress, torch.no_grad():
        task = progress.add_task("evaluating", total=len(indices))
        for index in indices:
            camera = dataset.cameras[index : index + 1].to(device)
            if device == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
            outputs = pipeline.model.get_outputs_for_camera(camera)
            if device == "cuda":
                torch.cuda.synchronize()
            seconds.append(time.perf_counter() - start)
            batch = dataset[index]
            gt = batch["image"].to(device)
            if gt.shape[-1] == 4:  # RGBA ground truth (a dataparser without alpha_color): onto white
                gt = gt[..., :3] * gt[..., 3:] + (1.0 - gt[..., 3:])
            rgb = outputs["rgb"]
            per_view.append(metrics(rgb, gt))
            if renders is not None:
                write_png(renders / "test" / "rgb" / f"{index:05d}.png", rgb.cpu().numpy())
                if save_gt:
                    write_png(renders / "test" / "gt-rgb" / f"{index:05d}.png", gt.cpu().numpy())
            progress.advance(task)
    result: Dict[str, object] = {
        key: float(np.mean([m[key] for m in per_view])) for key in per_view[0] if all(key in m for m in per_view)
    }
    if "lpips" not in result:
        result["lpips"] = None  # unavailable offline: AlexNet weights not cached
    result.update(
        views=len(indices),
        indices=indices,
        seconds_per_view=statistics.median(seconds),
        per_view=per_view,
        device=device,
    )
    return result
