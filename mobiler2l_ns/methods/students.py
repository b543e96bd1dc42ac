"""``ns-train`` presets of the MobileR2L student.

* ``mobiler2l``: the paper (depth 29, width 256, x8 super-resolution, K = 8, 6 frequencies,
  4,305,539 parameters); AdamW lr 5e-4 with warm-up, 600k steps, mixed precision on CUDA;
  Blender data, near 2 / far 6, white background.
* ``mobiler2l-small``: the CPU student (depth 4, width 64, x4 super-resolution, no BatchNorm) on
  the learned ``volume`` embedder: k-planes composited along each ray, 24 points per ray placed
  between the first and last cell the teacher's occupancy grid marks along it; 4 random 64x64 crops
  per step, 64x64 pseudo patches rendered before training. ``small_pe_config`` keeps its
  positional-encoding predecessor as a baseline for the benchmarks.

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

import torch
from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from mobiler2l_ns.distill.datamanager import PseudoDataManagerConfig
from mobiler2l_ns.student.model import MobileR2LModelConfig
from mobiler2l_ns.utils.checkpoints import SafeTrainer
from mobiler2l_ns.utils.optimizers import AdamWOptimizerConfig, FusedAdamOptimizerConfig


def default_machine() -> MachineConfig:
    """CUDA when available, else CPU."""
    return MachineConfig(device_type="cuda" if torch.cuda.is_available() else "cpu")


PAPER_STEPS = 600_000
"""Training steps of the paper's Blender runs (snap-research/MobileR2L, script/benchmarking_nerf.sh)."""

mobiler2l_config = TrainerConfig(
    _target=SafeTrainer,  # atomic checkpoint writes, a checkpoint on Ctrl-C
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

SMALL_STEPS = 6000


def grids_optimizer(max_steps: int, lr: float = 8e-2, final: float = 0.05) -> dict:
    """Adam for a learned embedder's grids: a high rate (measured: 0.08 beat 0.01-0.04 and 0.16 on
    lego-400, benchmarks/student_convergence.py), no weight decay, exponential decay to ``final`` x."""
    return {
        "optimizer": FusedAdamOptimizerConfig(lr=lr, eps=1e-15),
        "scheduler": ExponentialDecaySchedulerConfig(
            lr_pre_warmup=lr * 0.01, warmup_steps=min(100, max_steps // 50), lr_final=lr * final, max_steps=max_steps
        ),
    }


def student_optimizer(max_steps: int, lr: float, final: float, warmup: int, weight_decay: float = 0.0) -> dict:
    """AdamW for the network, linear warm-up then exponential decay to ``final`` x ``lr``."""
    return {
        "optimizer": AdamWOptimizerConfig(lr=lr, eps=1e-8, weight_decay=weight_decay),
        "scheduler": ExponentialDecaySchedulerConfig(
            lr_pre_warmup=lr * 0.005, warmup_steps=warmup, lr_final=lr * final, max_steps=max_steps, ramp="linear"
        ),
    }


mobiler2l_small_config = TrainerConfig(
    _target=SafeTrainer,  # atomic checkpoint writes, a checkpoint on Ctrl-C
    method_name="mobiler2l-small",
    steps_per_eval_image=500,
    steps_per_eval_batch=0,
    steps_per_save=1000,
    steps_per_eval_all_images=0,
    max_num_iterations=SMALL_STEPS,
    mixed_precision=True,
    pipeline=VanillaPipelineConfig(
        datamanager=PseudoDataManagerConfig(
            dataparser=BlenderDataParserConfig(alpha_color="white"),
            crop_alignment=4,
            crop_size=(64, 64),
            train_images_per_batch=4,
            pseudo_patch_size=(64, 64),
            pseudo_stream=False,
        ),
        model=MobileR2LModelConfig(
            depth=4,
            width=64,
            sr_factor=4,
            num_points=24,
            embedder="volume",
            batchnorm=False,
            output="clip",
            ray_box=True,
            occupancy_sampling=True,
            near=None,
            far=None,
            background_color="white",
        ),
    ),
    optimizers={
        "student": student_optimizer(SMALL_STEPS, lr=3e-3, final=0.05, warmup=50),
        "grids": grids_optimizer(SMALL_STEPS),
    },
    viewer=ViewerConfig(num_rays_per_chunk=1 << 15),
    vis="viewer",
    machine=default_machine(),
)
"""The CPU student: the paper's network at 1/4 width and 4 blocks (x4 super-resolution) on the
``volume`` embedder (k-planes composited along each ray), 24 points per ray placed around the
teacher's occupied cells, no BatchNorm, 4 random 64x64 crops per step and 64x64 pseudo patches."""

mobiler2l_config.optimizers["grids"] = grids_optimizer(PAPER_STEPS)  # used only with a learned embedder

small_pe_config = copy.deepcopy(mobiler2l_small_config)
"""The former mobiler2l-small (before the learned embedders): positional encoding, BatchNorm (frozen
for the last 300 steps), one whole image per step and whole pseudo views; the CPU baseline."""
small_pe_config.method_name = "mobiler2l-small-pe"
small_pe_config.max_num_iterations = 3000
small_pe_config.pipeline.datamanager = PseudoDataManagerConfig(
    dataparser=BlenderDataParserConfig(alpha_color="white"), crop_alignment=4
)
small_pe_config.pipeline.model = MobileR2LModelConfig(
    depth=4, width=64, sr_factor=4, num_points=8, num_frequencies=6, near=None, far=None,
    background_color="white", batchnorm_frozen_steps=300,
)  # fmt: skip
small_pe_config.optimizers = {
    "student": student_optimizer(3000, lr=2e-3, final=0.05, warmup=50),
    "grids": grids_optimizer(3000),
}


def with_embedder(config: TrainerConfig, method_name: str, embedder: str, **model_fields) -> TrainerConfig:
    """A copy of a student preset with another embedder (and model fields)."""
    derived = copy.deepcopy(config)
    derived.method_name = method_name
    derived.pipeline.model.embedder = embedder
    for name, value in model_fields.items():
        setattr(derived.pipeline.model, name, value)
    return derived


STUDENT_RECIPES = {
    "small": mobiler2l_small_config,
    "small-pe": small_pe_config,
    "planes": with_embedder(small_pe_config, "mobiler2l-small-planes", "planes"),
    "slab": with_embedder(
        small_pe_config,
        "mobiler2l-small-slab",
        "slab",
        grid_features=4,
        grid_min_resolution=16,
        grid_max_resolution=128,
    ),
    "paper-volume": with_embedder(
        mobiler2l_config,
        "mobiler2l-volume",
        "volume",
        num_points=24,
        batchnorm=False,
        batchnorm_frozen_steps=0,
        output="clip",
        ray_box=True,
        occupancy_sampling=True,
        near=None,
        far=None,
    ),
}
"""Named student recipes compared by benchmarks/student_convergence.py and device_run.py (``paper``
is ``mobiler2l``): the CPU student, its positional-encoding predecessor, the per-point planes and
light-slab embedders on that predecessor's recipe, and the paper-size network on the volume embedder."""


mobiler2l_method = MethodSpecification(
    config=mobiler2l_config,
    description="MobileR2L student light field, paper size (depth 29, width 256, x8 super-resolution)",
)

mobiler2l_small_method = MethodSpecification(
    config=mobiler2l_small_config,
    description="MobileR2L student, CPU-sized (depth 4, width 64, x4 super-resolution) on learned volume features",
)

mobiler2l_small_pe_method = MethodSpecification(
    config=small_pe_config,
    description="MobileR2L student, CPU-sized, on the paper's positional encoding (the small student before "
    "learned features; a baseline)",
)


def for_real_captures(config: TrainerConfig, method_name: str) -> TrainerConfig:
    """A copy of a student preset for real captures: ``nerfstudio-data`` with its sparse points, and
    near / far derived from the data (``near_far_from_data``) instead of constants."""
    real = copy.deepcopy(config)
    real.method_name = method_name
    real.pipeline.datamanager.dataparser = NerfstudioDataParserConfig(load_3D_points=True)
    model = real.pipeline.model
    model.near, model.far, model.near_far_from_data = None, None, True
    # unbounded: no sampling box (the background lies outside any box); learned grids contract far points
    model.ray_box, model.occupancy_sampling, model.grid_contraction = False, False, True
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
