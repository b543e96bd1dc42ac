"""The student's datamanager with teacher-rendered pseudo views (MobileR2L's distillation data).

``ns-train mobiler2l --pipeline.datamanager.teacher-config RUN/config.yml ...``:

* The teacher run is loaded lazily, at the first training batch that needs a pseudo view and only
  when the cache still lacks views, so ``ns-eval`` / ``ns-viewer`` / ``ns-export`` on a student
  never need it. It is loaded with nerfstudio's ``eval_setup`` from any working directory, frozen
  (eval mode, no gradients) on the training device, and held outside the module tree: it never
  enters the student's checkpoint.
* Pose sampling (:mod:`.poses`) around the *student's* training cameras; the views of the cache
  (:mod:`.cache`) are rendered by a producer thread (:mod:`.stream`) while the student trains: the first batch
  waits for one view, not for the set. Finished shards found on disk are reused; a corrupt one
  stops the run with its name unless ``pseudo-regenerate-corrupt``.
* Each image of a batch is real or pseudo on an exact schedule: a share ``real-share`` of all
  images drawn are real (every k-th, as evenly spread as the fraction allows); during the last
  ``finetune-steps`` steps of the run every image is real and the teacher is released.
* With ``world_size`` > 1 (nerfstudio's ``--machine.num-devices``), rank r renders shards r,
  r + world_size, ... (``torch.distributed``'s rank when initialised, else ``local_rank``) and also
  trains on the other ranks' shards as they appear on disk.

Without ``teacher-config`` it is exactly :class:`MobileR2LDataManager`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Type

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor

from mobiler2l_ns.distill.cache import CacheSpec, PseudoCache, owned_shards
from mobiler2l_ns.distill.generator import PseudoViewGenerator, plan_shards
from mobiler2l_ns.distill.poses import PoseConfig, TrainingRig, make_cameras, pose_fingerprint, sample_poses
from mobiler2l_ns.distill.stream import PseudoProducer, PseudoViewPool, stop_at_exit
from mobiler2l_ns.distill.teacher import TeacherRun, occupancy_grid, occupied_box
from mobiler2l_ns.student.datamanager import MobileR2LDataManager, MobileR2LDataManagerConfig
from mobiler2l_ns.student.sampler import OCCUPANCY_KEY, SAMPLE_BOX_KEY
from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.utils.steps import run_steps

FLAG = "--pipeline.datamanager."


@dataclass
class PseudoDataManagerConfig(MobileR2LDataManagerConfig):
    """:class:`MobileR2LDataManagerConfig` plus teacher-rendered pseudo views (off without a teacher)."""

    _target: Type = field(default_factory=lambda: PseudoDataManager)
    teacher_config: Optional[Path] = None
    """The teacher run's config.yml; None: real images only."""
    pseudo_count: int = 10_000
    """Pseudo views to render (the paper: 10k)."""
    pseudo_seed: int = 0
    """Seed of the pseudo poses."""
    pseudo_scene_type: Literal["auto", "360", "forward"] = "auto"
    """Pose layout: shell around the centre (360) or the training boxes (forward); auto: from the cameras."""
    pseudo_bbox_scale: float = 1.1
    """Forward-facing: enlargement of the training position / direction boxes."""
    pseudo_patch_size: Optional[Tuple[int, int]] = None
    """(height, width): pseudo views are random windows of this size (aligned to ``crop-alignment``)
    of the sampled cameras, far cheaper to render than whole views, so many more poses; set it to
    ``crop-size`` so real crops and pseudo patches batch together. None: whole views."""
    pseudo_cache: Optional[Path] = None
    """Cache folder; None: RUN/pseudo-views-<pose hash> beside the teacher's config.yml."""
    pseudo_shard_size: int = 64
    """Views per shard file."""
    pseudo_encoding: Literal["png", "fp16"] = "png"
    """Stored images: lossless uint8 PNG, or float16 (byte planes + zlib)."""
    pseudo_regenerate_corrupt: bool = False
    """Re-render truncated / corrupt shards instead of stopping with their names."""
    pseudo_memory_gb: float = 4.0
    """Decoded pseudo views kept in host memory; the others are read from their shard when drawn."""
    pseudo_progress: bool = True
    """Show the pseudo-view progress bar (rank 0)."""
    pseudo_stream: bool = True
    """Train while the pseudo views are rendered (the first batch waits for one view). False: render
    the whole cache before the first pseudo batch: on a few CPU cores the teacher and the student
    then do not compete for them, and the student sees every pose from its first pseudo step."""
    real_share: float = 0.0
    """Share of real images among all training images (0: pseudo only, 1: real only)."""
    finetune_steps: int = 0
    """Last steps of the run trained on real images only."""


class PseudoDataManager(MobileR2LDataManager):
    """:class:`MobileR2LDataManager` whose batches mix real images and teacher-rendered pseudo views."""

    config: PseudoDataManagerConfig

    def __init__(self, config: PseudoDataManagerConfig, *args, **kwargs) -> None:
        config = upgrade_config(config)
        if not 0.0 <= config.real_share <= 1.0:
            raise InputError(f"{FLAG}real-share must be in [0, 1], got {config.real_share}")
        if config.finetune_steps < 0:
            raise InputError(f"{FLAG}finetune-steps must be >= 0, got {config.finetune_steps}")
        if config.pseudo_cache is not None and config.teacher_config is None:
            raise InputError(f"{FLAG}pseudo-cache needs {FLAG}teacher-config (the teacher the cache belongs to)")
        if config.teacher_config is not None:
            try:
                pose_config(config).validate()
            except ValueError as err:
                raise InputError(f"{FLAG}pseudo-*: {err}") from None
            if config.pseudo_shard_size < 1:
                raise InputError(f"{FLAG}pseudo-shard-size must be >= 1, got {config.pseudo_shard_size}")
        super().__init__(config, *args, **kwargs)
        if config.teacher_config is not None and self.test_mode == "val":  # training (eval_setup never is)
            if not Path(config.teacher_config).expanduser().is_file():
                raise InputError(f"{FLAG}teacher-config {config.teacher_config}: no such file (a run's config.yml)")
            # read by students without a sample_box: where the teacher found the scene
            checkpoint = TeacherRun.from_config(config.teacher_config).checkpoint
            box, grid = occupied_box(checkpoint), occupancy_grid(checkpoint)
            if box is not None:
                self.train_dataset.metadata[SAMPLE_BOX_KEY] = box
            if grid is not None:
                self.train_dataset.metadata[OCCUPANCY_KEY] = grid
        self.real_share = Fraction(config.real_share).limit_denominator(1000)
        self.images_drawn = 0
        self.source_counts = {"real": 0, "pseudo": 0}
        self.finetune_start: Optional[int] = None
        """First step of the real-only fine-tune phase (set from the trainer, or by hand)."""
        self.pool: Optional[PseudoViewPool] = None
        self.producer: Optional[PseudoProducer] = None
        self.pseudo_cameras: Optional[Tuple[Tensor, Tensor]] = None

    # ------------------------------------------------------------------ nerfstudio API

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> List[TrainingCallback]:
        """Also fixes the fine-tune phase from the trainer's step range."""
        callbacks = super().get_training_callbacks(training_callback_attributes)
        trainer = training_callback_attributes.trainer
        if self.config.finetune_steps > 0 and trainer is not None:
            steps = run_steps(trainer)
            self.finetune_start = steps.stop - self.config.finetune_steps
            if self.config.teacher_config is not None and self.real_share < 1 and self.finetune_start <= 0:
                raise InputError(
                    f"{FLAG}finetune-steps {self.config.finetune_steps}: not fewer than the run's "
                    f"{steps.stop} steps (--max-num-iterations), so the student would never see a teacher view "
                    "(no distillation); lower it or train longer"
                )
        return callbacks

    def next_view(self, step: int) -> Tuple[Cameras, Dict]:
        """One view, real or pseudo (see the module docstring); batching and crops are the parent's."""
        if self.config.teacher_config is None:
            return super().next_view(step)
        if self.is_real_next(step):
            camera, data = super().next_view(step)
            data["pseudo_idx"] = -1
            self.source_counts["real"] += 1
        else:
            camera, data = self.next_pseudo()
            self.source_counts["pseudo"] += 1
        return camera, data

    # ------------------------------------------------------------------ mixing

    def in_finetune(self, step: int) -> bool:
        return self.finetune_start is not None and step >= self.finetune_start

    def is_real_next(self, step: int) -> bool:
        """Source of the next image: real in the fine-tune phase, else by the exact share schedule."""
        if self.in_finetune(step):
            if self.producer is not None:
                CONSOLE.print(f"[bold]Step {step}: fine-tuning on real images only; releasing the teacher")
                self.close()
            return True
        j = self.images_drawn
        self.images_drawn += 1
        return math.floor((j + 1) * self.real_share) > math.floor(j * self.real_share)

    # ------------------------------------------------------------------ pseudo views

    def next_pseudo(self) -> Tuple[Cameras, Dict]:
        """One pseudo view: its camera ``[1]`` and ``{"image", "image_idx": -1, "pseudo_idx"}``."""
        if self.pool is None:
            self.start_pseudo()
            if not self.config.pseudo_stream and self.producer is not None:
                self.producer.wait_rendered()
        assert self.pool is not None and self.pseudo_cameras is not None
        view, image = self.pool.draw()
        c2w, intrinsics = self.pseudo_cameras
        camera = make_cameras(c2w[view : view + 1], intrinsics[view : view + 1], self.train_dataset.cameras)
        camera = camera.to(self.device)
        camera.metadata = {"pseudo_idx": view}
        data: Dict = {"image": image.to(self.device), "image_idx": -1, "pseudo_idx": view}
        if "mask" in self.cached_train[0]:
            data["mask"] = torch.ones((*image.shape[:2], 1), dtype=torch.bool, device=self.device)
        return camera, data

    def rank_and_world(self) -> Tuple[int, int]:
        """This process's rank and the world size (torch.distributed's when initialised)."""
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            return torch.distributed.get_rank(), torch.distributed.get_world_size()
        return self.local_rank, self.world_size

    def open_cache(self) -> Tuple[PseudoCache, TeacherRun, TrainingRig, PoseConfig]:
        """The pseudo cache for this run's teacher and pose config (checked against its manifest)."""
        cfg = self.config
        assert cfg.teacher_config is not None
        _ = self.cached_train  # undistorts the training images, fixing the cameras' intrinsics
        rig = TrainingRig.from_cameras(self.train_dataset.cameras)
        poses = pose_config(cfg)
        run = TeacherRun.from_config(cfg.teacher_config)
        fingerprint = pose_fingerprint(rig, poses)
        root = cfg.pseudo_cache
        if root is None:
            root = run.config_path.parent / f"pseudo-views-{str(fingerprint['hash'])[:8]}"
        spec = CacheSpec(run.teacher_id, fingerprint, cfg.pseudo_shard_size, cfg.pseudo_encoding, run.describe())
        cache = PseudoCache(Path(root), spec)
        cache.open()
        return cache, run, rig, poses

    def start_pseudo(self) -> None:
        """Open the cache, check this rank's shards, load the teacher if views are missing, start the producer."""
        cfg = self.config
        cache, run, rig, poses = self.open_cache()
        rank, world = self.rank_and_world()
        own = owned_shards(cache.spec.num_shards, rank, world)
        plan = plan_shards(
            cache,
            own,
            cfg.pseudo_regenerate_corrupt,
            flag=f"{FLAG}pseudo-regenerate-corrupt True (mobiler2l run: --regenerate-corrupt)",
        )
        c2w, intrinsics = sample_poses(rig, poses)
        self.pseudo_cameras = (c2w, intrinsics)
        pool = PseudoViewPool(cache, cfg.pseudo_memory_gb * 1e9, seed=cfg.pseudo_seed * 1000 + rank)
        for shard in plan.valid:
            pool.add_shard(shard)
        others = [k for k in range(cache.spec.num_shards) if k not in set(own)]
        CONSOLE.print(
            f"[bold]Pseudo views[/bold] ({cache.spec.count} in {cache.spec.num_shards} shards of "
            f"{cache.spec.shard_size}, cache {cache.root}): rank {rank}/{world} has {len(plan.valid)} of its "
            f"{len(own)} shards, renders {len(plan.to_render)}"
            + (f" (re-rendering {len(plan.unusable)} unusable)" if plan.unusable else "")
        )
        generator = PseudoViewGenerator(
            cache, c2w, intrinsics, like=self.train_dataset.cameras, show_progress=cfg.pseudo_progress and rank == 0
        )
        producer = PseudoProducer(pool, generator, run, str(self.device), plan.to_render, others, rig)
        producer.load_teacher()
        self.pool, self.producer = pool, producer
        producer.start()
        stop_at_exit(producer)

    def close(self) -> None:
        """Stop the producer (the shard being written is finished) and release the teacher."""
        if self.producer is not None:
            self.producer.stop(timeout=60.0)
            self.producer = None
        self.pool = None  # drops the decoded views; a later pseudo batch reopens the cache


def pose_config(config: PseudoDataManagerConfig) -> PoseConfig:
    """The pseudo poses a datamanager config asks for."""
    return PoseConfig(
        config.pseudo_count,
        config.pseudo_seed,
        config.pseudo_scene_type,
        config.pseudo_bbox_scale,
        tuple(config.pseudo_patch_size) if config.pseudo_patch_size is not None else None,
        config.crop_alignment if config.pseudo_patch_size is not None else 1,
    )


def upgrade_config(config: MobileR2LDataManagerConfig) -> PseudoDataManagerConfig:
    """A saved student config from before pseudo views (eval_setup swaps in this datamanager)."""
    if isinstance(config, PseudoDataManagerConfig):
        return config
    upgraded = PseudoDataManagerConfig()
    for name, value in vars(config).items():
        if name != "_target":
            setattr(upgraded, name, value)
    return upgraded
