"""CPU training throughput (rays/s) of the mobiler2l teacher next to nerfstudio's nerfacto.

Both pipelines are built in this process on the same data with the same rays per batch; their
training steps are timed interleaved (ours, nerfacto, ours, ...) so machine load hits both alike.
The teacher is first trained for --warmup-steps so its occupancy grid has pruned empty space, as it
has for almost all of a real run; nerfacto's cost per step does not depend on training progress.

    python benchmarks/teacher_throughput.py [--data ../shared/data/blender-lego-400]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import torch
from nerfstudio.configs.method_configs import all_methods

from common import LEGO, machine_description, require_lego


class NoLPIPS(torch.nn.Module):
    """Stand-in for nerfacto's LPIPS metric, whose construction downloads AlexNet weights."""

    def __init__(self, *args, **kwargs) -> None:
        super().__init__()


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=LEGO)
    parser.add_argument("--rays", type=int, default=2048, help="rays per training batch, both methods")
    parser.add_argument("--warmup-steps", type=int, default=400, help="teacher steps before timing")
    parser.add_argument("--steps", type=int, default=10, help="timed steps per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    data = require_lego(args.data)
    print(machine_description())
    ours = build("mobiler2l-teacher", data, args.rays)
    nerfacto = build("nerfacto", data, args.rays)
    print(f"warming up the teacher for {args.warmup_steps} steps (occupancy grid pruning) ...", flush=True)
    train_steps(ours, 0, args.warmup_steps)
    train_steps(nerfacto, 0, 3)
    step, t_ours, t_nerfacto = args.warmup_steps, 0.0, 0.0
    for _ in range(args.rounds):
        t_ours += train_steps(ours, step, args.steps)
        t_nerfacto += train_steps(nerfacto, 3 + step - args.warmup_steps, args.steps)
        step += args.steps
    rays = args.rays * args.steps * args.rounds
    ours_rps, nerfacto_rps = rays / t_ours, rays / t_nerfacto
    print(f"mobiler2l-teacher: {ours_rps:8.0f} rays/s")
    print(f"nerfacto:          {nerfacto_rps:8.0f} rays/s")
    print(f"ratio (teacher / nerfacto): {ours_rps / nerfacto_rps:.2f}x  (goal >= 3x)")


if __name__ == "__main__":
    main()
