"""Training a nerfstudio pipeline of this project for a fixed budget of training time (or steps).

Shared by ``student_convergence.py`` and ``device_run.py``. What nerfstudio's ``Trainer`` does for
one step (the pipeline's training callbacks before / after each iteration, the optimisers, an
optional autocast), with three differences a fair time comparison needs:

* the budget is seconds of training (evaluation and saving excluded) or steps;
* learning rates follow the preset's warm-up and exponential decay over the *share of the budget*
  spent, so every run ends its schedule when its budget ends;
* students freeze BatchNorm for the last ``frozen_share`` of the budget and train on real images
  only for the last ``finetune_share`` (the presets' recipe, expressed as shares).

:func:`save_run` writes the result as a nerfstudio run (``config.yml`` + ``nerfstudio_models/``),
so ``eval_setup``, the pseudo-view datamanager and the exporter load it like any ``ns-train`` run.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence

import numpy as np
import torch
from nerfstudio.engine.callbacks import TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.engine.optimizers import Optimizers
from nerfstudio.engine.trainer import TrainerConfig

from mobiler2l_ns.utils.io import write_atomic

WARMUP_SHARE = 0.02


@dataclass
class Budget:
    """Training time (``seconds``) or ``steps``; evaluations after each share of ``marks``."""

    seconds: float = 60.0
    steps: Optional[int] = None
    marks: Sequence[float] = (0.25, 0.5, 1.0)
    frozen_share: float = 0.0
    """Students: last share of the budget with BatchNorm frozen."""
    finetune_share: float = 0.0
    """Students with pseudo views: last share of the budget on real images only."""

    def share(self, elapsed: float, step: int) -> float:
        return elapsed / self.seconds if self.steps is None else step / self.steps


@dataclass
class Mark:
    step: int
    seconds: float
    scores: Dict[str, float]


@dataclass
class TimedRun:
    """A finished run: the pipeline (eval mode), its config, marks and throughput."""

    config: TrainerConfig
    pipeline: object
    optimizers: Optimizers
    marks: List[Mark] = field(default_factory=list)
    steps: int = 0
    seconds: float = 0.0

    @property
    def steps_per_s(self) -> float:
        return self.steps / max(self.seconds, 1e-9)


def set_learning_rates(optimizers: Optimizers, config: TrainerConfig, share: float) -> None:
    """Warm-up over the first 2 % of the budget, then exponential decay from each group's lr to its
    scheduler's ``lr_final`` at the end of the budget."""
    share = min(max(share, 0.0), 1.0)
    for group, spec in config.optimizers.items():
        if group not in optimizers.optimizers:
            continue
        base = spec["optimizer"].lr
        scheduler = spec.get("scheduler")
        final = getattr(scheduler, "lr_final", None) or base
        start = getattr(scheduler, "lr_pre_warmup", None) or base * 0.01
        if share < WARMUP_SHARE:
            lr = start + (base - start) * share / WARMUP_SHARE
        else:
            lr = base * (final / base) ** ((share - WARMUP_SHARE) / (1.0 - WARMUP_SHARE))
        for param_group in optimizers.optimizers[group].param_groups:
            param_group["lr"] = lr


def setup_pipeline(config: TrainerConfig, device: str):
    """The config's pipeline in training mode on ``device`` (one process)."""
    return config.pipeline.setup(device=device, test_mode="val", world_size=1, local_rank=0)


def train_timed(
    config: TrainerConfig,
    budget: Budget,
    evaluate: Optional[Callable[[object], Dict[str, float]]] = None,
    autocast_dtype: Optional[torch.dtype] = None,
    pipeline=None,
    on_mark: Optional[Callable[[Mark], None]] = None,
) -> TimedRun:
    """Train ``config``'s pipeline for ``budget``; ``evaluate(pipeline)`` (eval mode, untimed) at each mark.

    ``autocast_dtype``: e.g. ``torch.bfloat16`` on CUDA (no loss scaling needed); None: float32.
    """
    device = config.machine.device_type
    pipeline = pipeline if pipeline is not None else setup_pipeline(config, device)
    model, datamanager = pipeline.model, pipeline.datamanager
    optimizers = Optimizers(config.optimizers, pipeline.get_param_groups())
    callbacks = pipeline.get_training_callbacks(
        TrainingCallbackAttributes(optimizers=optimizers, grad_scaler=None, pipeline=pipeline, trainer=None)
    )
    run = TimedRun(config, pipeline, optimizers)
    freeze = getattr(model, "freeze_batchnorm", None)
    finetune_set = False
    elapsed, step, mark = 0.0, 0, 0
    recent: List[float] = []  # training PSNR of the last steps
    while mark < len(budget.marks):
        share = budget.share(elapsed, step)
        pipeline.train()
        if freeze is not None and budget.frozen_share > 0:
            freeze(share >= 1.0 - budget.frozen_share)
        if budget.finetune_share > 0 and share >= 1.0 - budget.finetune_share and not finetune_set:
            if hasattr(datamanager, "finetune_start"):
                datamanager.finetune_start = step
            finetune_set = True
        set_learning_rates(optimizers, config, share)
        start = time.perf_counter()
        for callback in callbacks:
            callback.run_callback_at_location(step, location=TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
        with torch.autocast(
            device_type=device, dtype=autocast_dtype or torch.float32, enabled=autocast_dtype is not None
        ):
            _, loss_dict, metrics_dict = pipeline.get_train_loss_dict(step)
            loss = sum(loss_dict.values())
        if "psnr" in metrics_dict:
            recent.append(float(metrics_dict["psnr"]))
        optimizers.zero_grad_all()
        loss.backward()
        optimizers.optimizer_step_all()
        for callback in callbacks:
            callback.run_callback_at_location(step, location=TrainingCallbackLocation.AFTER_TRAIN_ITERATION)
        if device == "cuda":
            torch.cuda.synchronize()
        elapsed += time.perf_counter() - start
        step += 1
        while mark < len(budget.marks) and budget.share(elapsed, step) >= budget.marks[mark]:
            scores: Dict[str, float] = {"train_psnr": sum(recent[-50:]) / max(len(recent[-50:]), 1)}
            if evaluate is not None:
                pipeline.eval()
                with torch.no_grad():
                    scores.update(evaluate(pipeline))
            run.marks.append(Mark(step, elapsed, scores))
            if on_mark is not None:
                on_mark(run.marks[-1])
            mark += 1
    run.steps, run.seconds = step, elapsed
    pipeline.eval()
    return run


def save_run(run: TimedRun) -> Path:
    """Write the run where its config says (``config.get_base_dir()``): ``config.yml`` and
    ``nerfstudio_models/step-N.ckpt``, nerfstudio's layout; returns the config path."""
    config = run.config
    base_dir = config.get_base_dir()
    models = base_dir / "nerfstudio_models"
    models.mkdir(parents=True, exist_ok=True)
    config.save_config()
    pipeline = run.pipeline
    state = {
        "step": run.steps,
        "pipeline": pipeline.module.state_dict() if hasattr(pipeline, "module") else pipeline.state_dict(),
        "optimizers": {k: v.state_dict() for k, v in run.optimizers.optimizers.items()},
        "schedulers": {},
        "scalers": {},
    }
    buffer = io.BytesIO()
    torch.save(state, buffer)
    write_atomic(models / f"step-{run.steps:09d}.ckpt", buffer.getvalue())
    return base_dir / "config.yml"


def test_views(data: Path, count: int):
    """``(camera, ground truth [H, W, 3])`` of ``count`` evenly spaced test views (white background)."""
    from common import read_on_white
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig

    outputs = BlenderDataParserConfig(data=data, alpha_color="white").setup().get_dataparser_outputs("test")
    index = np.unique(np.linspace(0, len(outputs.image_filenames) - 1, count).round().astype(int)).tolist()
    views = []
    for i in index:
        views.append((outputs.cameras[i : i + 1], torch.from_numpy(read_on_white(outputs.image_filenames[i]))))
    return views


def fill_cache(config: TrainerConfig, progress: bool = False) -> None:
    """Render the pseudo-view cache of ``config``'s datamanager (untimed): start its producer and wait
    until it has rendered (a rendering error is raised)."""
    datamanager = setup_pipeline(config, config.machine.device_type).datamanager
    datamanager.config.pseudo_progress = progress
    datamanager.start_pseudo()
    if datamanager.producer is not None:
        datamanager.producer.wait_rendered()
    datamanager.close()
