"""CPU training throughput (rays/s) of the mobiler2l teacher next to nerfstudio's nerfacto.

Both pipelines are built in this process on the same data with the same rays per batch; their
training steps are timed interleaved (ours, nerfacto, ours, ...) so machine load hits both alike.
The teacher is first trained for --warmup-steps so its occupancy grid has pruned empty space, as it
has for almost all of a real run; nerfacto's cost per step does not depend on training progress.

    python benchmarks/teacher_throughput.py [--data ../shared/data/blender-lego-400]
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import torch
from nerfstudio.configs.method_configs import all_methods

from common import LEGO, NoLPIPS, machine_description, require_lego
from mobiler2l_ns.utils.cli import run_cli


def build(method: str, data: Path, rays: int):
    """Pipeline, optimizer and callbacks of a stock method config, on CPU."""
    cfg = all_methods[method]
    cfg.pipeline.datamanager.data = data
    cfg.pipeline.datamanager.train_num_rays_per_batch = rays
    if method == "nerfacto":
        import torchmetrics.image.lpip

        torchmetrics.image.lpip.LearnedPerceptualImagePatchSimilarity = NoLPIPS  # offline machine
        cfg.pipeline.datamanager.dataparser = all_methods["mobiler2l-teacher"].pipeline.datamanager.dataparser
    cfg.pipeline.datamanager.dataparser.data = data
    pipeline = cfg.pipeline.setup(device="cpu", test_mode="val")
    pipeline.train()
    params = [p for group in pipeline.get_param_groups().values() for p in group]
    optimizer = torch.optim.Adam(params, lr=1e-3, eps=1e-15)
    from nerfstudio.engine.callbacks import TrainingCallbackAttributes

    attrs = TrainingCallbackAttributes(optimizers=None, grad_scaler=None, pipeline=pipeline, trainer=None)
    callbacks = pipeline.get_training_callbacks(attrs)
    return pipeline, optimizer, callbacks


def train_steps(state, first_step: int, count: int) -> float:
    """Run ``count`` training steps; returns seconds."""
    pipeline, optimizer, callbacks = state
    start = time.perf_counter()
    for step in range(first_step, first_step + count):
        for callback in callbacks:
            for where in callback.where_to_run:
                if where.name == "BEFORE_TRAIN_ITERATION":
                    callback.run_callback_at_location(step, where)
        _, loss_dict, _ = pipeline.get_train_loss_dict(step)
        optimizer.zero_grad()
        sum(loss_dict.values()).backward()
        optimizer.step()
        for callback in callbacks:
            for where in callback.where_to_run:
                if where.name == "AFTER_TRAIN_ITERATION":
                    callback.run_callback_at_location(step, where)
    return time.perf_counter() - start


@dataclass
class TeacherThroughput:
    """CPU training throughput of the mobiler2l teacher next to nerfstudio's nerfacto."""

    data: Path = LEGO
    """Blender scene (default ../shared/data/blender-lego-400)."""
    rays: int = 2048
    """Rays per training batch, both methods."""
    warmup_steps: int = 400
    """Teacher steps before timing."""
    steps: int = 10
    """Timed steps per round."""
    rounds: int = 3
    """Rounds of interleaved timing."""

    def main(self) -> None:
        """Print both methods' rays/s and their ratio."""
        data = require_lego(self.data)
        print(machine_description())
        ours = build("mobiler2l-teacher", data, self.rays)
        nerfacto = build("nerfacto", data, self.rays)
        print(f"warming up the teacher for {self.warmup_steps} steps (occupancy grid pruning) ...", flush=True)
        train_steps(ours, 0, self.warmup_steps)
        train_steps(nerfacto, 0, 3)
        step, t_ours, t_nerfacto = self.warmup_steps, 0.0, 0.0
        for _ in range(self.rounds):
            t_ours += train_steps(ours, step, self.steps)
            t_nerfacto += train_steps(nerfacto, 3 + step - self.warmup_steps, self.steps)
            step += self.steps
        rays = self.rays * self.steps * self.rounds
        ours_rps, nerfacto_rps = rays / t_ours, rays / t_nerfacto
        print(f"mobiler2l-teacher: {ours_rps:8.0f} rays/s")
        print(f"nerfacto:          {nerfacto_rps:8.0f} rays/s")
        print(f"ratio (teacher / nerfacto): {ours_rps / nerfacto_rps:.2f}x  (goal >= 3x)")


if __name__ == "__main__":
    raise SystemExit(run_cli(TeacherThroughput, prog="teacher_throughput.py", description=__doc__))
