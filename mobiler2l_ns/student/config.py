"""``ns-train`` presets of the MobileR2L student.

* ``mobiler2l``: the paper (depth 29, width 256, x8 super-resolution, K = 8, 6 frequencies,
  4,305,539 parameters); AdamW lr 5e-4 with warm-up, 600k steps, mixed precision on CUDA;
  Blender data, near 2 / far 6, white background.
* ``mobiler2l-small``: a CPU-sized student (depth 4, width 64, x4 super-resolution) that trains
  on a small scene in minutes; near / far from the scene box.

* ``mobiler2l-real`` / ``mobiler2l-small-real``: the same two for real captures
  (``nerfstudio-data``: ``ns-process-data`` / ``mobiler2l-process`` output, with its COLMAP sparse
  points); near / far derived from the data (the depths of the sparse points the training cameras
  see, else the scene box), one pair for all cameras, saved with the checkpoint.

All take teacher-rendered pseudo views with ``--pipeline.datamanager.teacher-config RUN/config.yml``
(:mod:`mobiler2l_ns.distill.datamanager`; without it they train on the real images only).
All default to the CPU when CUDA is absent. Register them as ``nerfstudio.method_configs``
entry points (``mobiler2l_method``, ``mobiler2l_small_method``, ``mobiler2l_real_method``,
``mobiler2l_small_real_method``).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Type

import torch
from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.optimizers import OptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from mobiler2l_ns.distill.datamanager import PseudoDataManagerConfig
from mobiler2l_ns.student.model import MobileR2LModelConfig


@dataclass
class AdamWOptimizerConfig(OptimizerConfig):
    """AdamW (decoupled weight decay) in nerfstudio's optimizer-config form."""

    _target: Type = torch.optim.AdamW
    weight_decay: float = 0.01
    """Decoupled weight decay."""


def default_machine() -> MachineConfig:
    """CUDA when available, else CPU."""
    return MachineConfig(device_type="cuda" if torch.cuda.is_available() else "cpu")


PAPER_STEPS = 600_000
"""Training steps of the paper's Blender runs (snap-research/MobileR2L, script/benchmarking_nerf.sh)."""

mobiler2l_config = TrainerConfig(
    method_name="mobiler2l",
    steps_per_eval_image=1000,
    steps_per_eval_batch=0,
    steps_per_save=10_000,
    steps_per_eval_all_images=100_000,
    max_num_iterations=PAPER_STEPS,
    mixed_precision=True,
    pipeline=VanillaPipelineConfig(
        datamanager=PseudoDataManagerConfig(
            dataparser=BlenderDataParserConfig(alpha_color="white"),
            crop_alignment=8,
        ),
        model=MobileR2LModelConfig(
            depth=29,
            width=256,
            sr_factor=8,
            num_points=8,
            num_frequencies=6,
            near=2.0,
            far=6.0,
            background_color="white",
            batchnorm_frozen_steps=5000,
        ),
    ),
    optimizers={
        "student": {
            "optimizer": AdamWOptimizerConfig(lr=5e-4, eps=1e-8, weight_decay=0.01),
            "scheduler": ExponentialDecaySchedulerConfig(
                lr_pre_warmup=1e-6, warmup_steps=5000, lr_final=5e-6, max_steps=PAPER_STEPS, ramp="linear"
            ),
        },
    },
    viewer=ViewerConfig(num_rays_per_chunk=1 << 15),
    vis="viewer",
    machine=default_machine(),
)

mobiler2l_small_config = TrainerConfig(
    method_name="mobiler2l-small",
    steps_per_eval_image=250,
    steps_per_eval_batch=0,
    steps_per_save=1000,
    steps_per_eval_all_images=0,
    max_num_iterations=3000,
    mixed_precision=True,
    pipeline=VanillaPipelineConfig(
        datamanager=PseudoDataManagerConfig(
            dataparser=BlenderDataParserConfig(alpha_color="white"),
            crop_alignment=4,
        ),
        model=MobileR2LModelConfig(
            depth=4,
            width=64,
            sr_factor=4,
            num_points=8,
            num_frequencies=6,
            near=None,
            far=None,
            background_color="white",
            batchnorm_frozen_steps=300,
        ),
    ),
    optimizers={
        "student": {
            "optimizer": AdamWOptimizerConfig(lr=2e-3, eps=1e-8, weight_decay=0.0),
            "scheduler": ExponentialDecaySchedulerConfig(
                lr_pre_warmup=1e-5, warmup_steps=50, lr_final=1e-4, max_steps=3000, ramp="linear"
            ),
        },
    },
    viewer=ViewerConfig(num_rays_per_chunk=1 << 15),
    vis="viewer",
    machine=default_machine(),
)

mobiler2l_method = MethodSpecification(
    config=mobiler2l_config,
    description="MobileR2L student light field, paper size (depth 29, width 256, x8 super-resolution)",
)

mobiler2l_small_method = MethodSpecification(
    config=mobiler2l_small_config,
    description="MobileR2L student, CPU-sized (depth 4, width 64, x4 super-resolution): trains in minutes",
)


def for_real_captures(config: TrainerConfig, method_name: str) -> TrainerConfig:
    """A copy of a student preset for real captures: ``nerfstudio-data`` with its sparse points, and
    near / far derived from the data (``near_far_from_data``) instead of constants."""
    real = copy.deepcopy(config)
    real.method_name = method_name
    real.pipeline.datamanager.dataparser = NerfstudioDataParserConfig(load_3D_points=True)
    model = real.pipeline.model
    model.near, model.far, model.near_far_from_data = None, None, True
    return real


mobiler2l_real_config = for_real_captures(mobiler2l_config, "mobiler2l-real")
mobiler2l_small_real_config = for_real_captures(mobiler2l_small_config, "mobiler2l-small-real")

mobiler2l_real_method = MethodSpecification(
    config=mobiler2l_real_config,
    description="MobileR2L student, paper size, for real captures (nerfstudio-data; near/far from the data)",
)

mobiler2l_small_real_method = MethodSpecification(
    config=mobiler2l_small_real_config,
    description="MobileR2L student, CPU-sized, for real captures (nerfstudio-data; near/far from the data)",
)
