"""`ns-train mobiler2l-teacher` presets: bounded synthetic scenes and real captures.

Defaults follow the device present at import: full Instant-NGP settings on CUDA, and on a
machine without CUDA settings sized for a few CPU cores (coarser grid, fewer samples).
Every value can still be overridden on the command line.
"""

from __future__ import annotations

import torch
from nerfstudio.configs.base_config import MachineConfig, ViewerConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.engine.optimizers import AdamOptimizerConfig
from nerfstudio.engine.schedulers import ExponentialDecaySchedulerConfig
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import VanillaPipelineConfig
from nerfstudio.plugins.types import MethodSpecification

from mobiler2l_ns.teacher.datamanager import TeacherDataManagerConfig
from mobiler2l_ns.teacher.model import TeacherModelConfig
from mobiler2l_ns.utils.checkpoints import SafeTrainer

CUDA = torch.cuda.is_available()

# (CUDA value, CPU value) of the settings that decide speed.
STEPS = 20000 if CUDA else 3000
RAYS_PER_BATCH = 4096 if CUDA else 2048
CPU_MODEL_SETTINGS = dict(log2_hashmap_size=17, max_resolution=512, grid_resolution=64, steps_per_diagonal=300)
# Real captures on CPU: far fewer samples per ray than Instant-NGP's unbounded marching (4 grid levels, cone
# 0.004, steps of 1/300 of the box diagonal: 511 samples per ray before the grid prunes, 358 training rays/s),
# and 1024-ray batches. benchmarks/real_teacher.py, 66 Ethiopian-head photos, 3 training minutes: 427 steps
# instead of 33, held-out PSNR 15.98-16.18 vs 12.73 dB, renders 6,956-9,675 vs 434 rays/s
# (benchmarks/results/real-teacher-eth.md).
REAL_CPU_MODEL_SETTINGS = dict(grid_levels=2, cone_angle=0.05, steps_per_diagonal=64)
REAL_CPU_RAYS_PER_BATCH = 1024


def teacher_trainer(method_name: str, model: TeacherModelConfig, dataparser, real: bool = False) -> TrainerConfig:
    """A TrainerConfig for the teacher with ``model`` on ``dataparser``'s data (``real``: an unbounded capture)."""
    rays = REAL_CPU_RAYS_PER_BATCH if real and not CUDA else RAYS_PER_BATCH
    if not CUDA:
        for key, value in {**CPU_MODEL_SETTINGS, **(REAL_CPU_MODEL_SETTINGS if real else {})}.items():
            setattr(model, key, value)
    return TrainerConfig(
        _target=SafeTrainer,  # atomic checkpoint writes, a checkpoint on Ctrl-C
        method_name=method_name,
        steps_per_eval_batch=500,
        steps_per_eval_image=500,
        steps_per_save=1000,
        max_num_iterations=STEPS,
        mixed_precision=CUDA,
        pipeline=VanillaPipelineConfig(
            datamanager=TeacherDataManagerConfig(
                dataparser=dataparser,
                train_num_rays_per_batch=rays,
                eval_num_rays_per_batch=rays,
            ),
            model=model,
        ),
        optimizers={
            "fields": {
                "optimizer": AdamOptimizerConfig(lr=1e-2, eps=1e-15),
                "scheduler": ExponentialDecaySchedulerConfig(lr_final=1e-4, max_steps=STEPS),
            }
        },
        viewer=ViewerConfig(num_rays_per_chunk=1 << 14),
        vis="viewer",
        machine=MachineConfig(device_type="cuda" if CUDA else "cpu"),
    )


teacher_method = MethodSpecification(
    config=teacher_trainer(
        "mobiler2l-teacher",
        TeacherModelConfig(background_color="white", eval_num_rays_per_chunk=1 << 14),
        BlenderDataParserConfig(),
    ),
    description="MobileR2L teacher: Instant-NGP (hash grid + occupancy grid) for bounded scenes; runs on CPU and CUDA.",
)

teacher_real_method = MethodSpecification(
    config=teacher_trainer(
        "mobiler2l-teacher-real",
        TeacherModelConfig(
            contract=True,
            grid_levels=4,
            cone_angle=0.004,
            background_color="random",
            eval_num_rays_per_chunk=1 << 14,
        ),
        NerfstudioDataParserConfig(),
        real=True,
    ),
    description="MobileR2L teacher for real, unbounded captures (ns-process-data output; scene contraction).",
)
