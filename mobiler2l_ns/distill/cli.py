"""``mobiler2l-pseudo``: pre-generate or check a pseudo-view cache.

::

    mobiler2l-pseudo generate --teacher-config RUN/config.yml --count 10000 --cache DIR
        [--seed 0] [--scene-type auto|360|forward] [--bbox-scale 1.1] [--patch-size H W]
        [--patch-alignment 1] [--shard-size 64] [--encoding png|fp16] [--regenerate-corrupt]
        [--device cuda:0] [--no-progress]
    mobiler2l-pseudo check DIR [--teacher-config RUN/config.yml]

``generate`` samples poses around the teacher's training cameras, keeps every valid shard already
in DIR (an interrupted run resumes where it stopped) and renders the rest. Under ``torchrun``
(``torch.distributed`` environment) each rank renders its own shards on ``cuda:LOCAL_RANK``.
A student trained with ``--pipeline.datamanager.teacher-config RUN/config.yml
--pipeline.datamanager.pseudo-cache DIR`` and the same pose settings reuses the cache.

``check`` verifies the manifest and every shard's checksum and names each missing, truncated,
corrupt or foreign shard; it exits with status 1 unless the cache is complete and valid.
Flags are tyro dataclass fields (:class:`Generate`, :class:`Check`), as nerfstudio's ``ns-*`` tools.
"""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence, Tuple, Union

import torch
import tyro
from typing_extensions import Annotated

from mobiler2l_ns.utils.cli import run_cli
from mobiler2l_ns.utils.errors import InputError

PROG = "mobiler2l-pseudo"
EQUIVALENT_PIXELS = 800 * 800
ORIGINAL_BYTES_PER_VIEW = 800 * 800 * 3 * 4  # R2L / MobileR2L: float32 .npy per 800x800 view


def distributed_rank_world() -> tuple:
    """(rank, world size, local rank): torch.distributed's (initialised from the torchrun
    environment when present), else (0, 1, 0)."""
    import torch.distributed as dist  # pylint: disable=import-outside-toplevel

    if not dist.is_initialized() and int(os.environ.get("WORLD_SIZE", "1")) > 1:
        dist.init_process_group(backend="nccl" if torch.cuda.is_available() else "gloo")
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), local_rank
    return 0, 1, local_rank


def bytes_summary(total_bytes: int, views: int, pixels_per_view: int) -> str:
    """'N bytes per view (M MB per 800x800-equivalent view, 1/R of float32 .npy)'."""
    if views == 0:
        return "no views"
    per_view = total_bytes / views
    equivalent = per_view * EQUIVALENT_PIXELS / pixels_per_view
    return (
        f"{per_view / 1e3:.1f} kB per view, {equivalent / 1e6:.3f} MB per 800x800-equivalent view "
        f"(1/{ORIGINAL_BYTES_PER_VIEW / equivalent:.1f} of 7.68 MB float32 .npy)"
    )


@dataclass
class Generate:
    """Render a pseudo-view cache (resumes an interrupted one)."""

    teacher_config: Path
    """The teacher run's config.yml."""
    cache: Path
    """Cache folder."""
    count: int = 10_000
    """Number of pseudo views (paper: 10k)."""
    seed: int = 0
    """Pose seed."""
    scene_type: Literal["auto", "360", "forward"] = "auto"
    """Pose layout: shell around the centre (360), training boxes (forward), or auto from the cameras."""
    bbox_scale: float = 1.1
    """Forward-facing box enlargement."""
    patch_size: Optional[Tuple[int, int]] = None
    """H W: render random H x W windows of the sampled cameras instead of whole views."""
    patch_alignment: int = 1
    """Patch offsets are multiples of this."""
    shard_size: int = 64
    """Views per shard."""
    encoding: Literal["png", "fp16"] = "png"
    """Stored images: lossless uint8 PNG, or float16 (byte planes + zlib)."""
    regenerate_corrupt: bool = False
    """Re-render truncated / corrupt shards."""
    device: Optional[str] = None
    """Render device (default: cuda[:LOCAL_RANK] if available)."""
    progress: bool = True
    """Show a progress bar (--no-progress: none)."""

    def main(self) -> int:
        from mobiler2l_ns.distill.cache import (  # pylint: disable=import-outside-toplevel
            MANIFEST,
            CacheSpec,
            PseudoCache,
            owned_shards,
            read_manifest,
            refuse_other_teacher,
        )
        from mobiler2l_ns.distill.generator import PseudoViewGenerator, plan_shards  # pylint: disable=import-outside-toplevel
        from mobiler2l_ns.distill.poses import PoseConfig, TrainingRig, pose_fingerprint, sample_poses  # pylint: disable=import-outside-toplevel
        from mobiler2l_ns.distill.teacher import TeacherRun  # pylint: disable=import-outside-toplevel
        from nerfstudio.utils.rich_utils import CONSOLE  # pylint: disable=import-outside-toplevel

        patch = tuple(self.patch_size) if self.patch_size is not None else None
        pose_config = PoseConfig(self.count, self.seed, self.scene_type, self.bbox_scale, patch, self.patch_alignment)
        try:
            pose_config.validate()
        except ValueError as err:
            raise InputError(str(err)) from None
        if self.shard_size < 1:
            raise InputError(f"--shard-size must be >= 1, got {self.shard_size}")
        rank, world, local_rank = distributed_rank_world()
        device = self.device or (f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
        run = TeacherRun.from_config(self.teacher_config)
        if (self.cache / MANIFEST).is_file():  # refuse another teacher's cache before loading this one
            refuse_other_teacher(self.cache, read_manifest(self.cache), run.teacher_id)
        teacher = run.load(device)
        rig = TrainingRig.from_cameras(teacher.train_cameras)
        spec = CacheSpec(
            run.teacher_id, pose_fingerprint(rig, pose_config), self.shard_size, self.encoding, run.describe()
        )
        cache = PseudoCache(self.cache, spec)
        cache.open()
        own = owned_shards(spec.num_shards, rank, world)
        plan = plan_shards(cache, own, self.regenerate_corrupt)
        CONSOLE.print(
            f"[bold]{cache.root}[/bold]: {spec.count} views in {spec.num_shards} shards; rank {rank}/{world} keeps "
            f"{len(plan.valid)} of its {len(own)} shards, renders {len(plan.to_render)}"
            + (f" (re-rendering {', '.join(e.name for e in plan.unusable.values())})" if plan.unusable else "")
        )
        c2w, intrinsics = sample_poses(rig, pose_config)
        generator = PseudoViewGenerator(
            cache, c2w, intrinsics, like=teacher.train_cameras, show_progress=self.progress and rank == 0
        )
        started = time.perf_counter()
        try:
            generator.render_shards(teacher, plan.to_render)
        except KeyboardInterrupt:
            done = sum(1 for error in cache.check(own).values() if error is None)
            print(
                f"mobiler2l-pseudo: interrupted with {done}/{len(own)} shards done; run the same command to resume",
                file=sys.stderr,
            )
            return 130
        seconds = time.perf_counter() - started
        if world > 1:
            torch.distributed.barrier()
        if generator.views_rendered:
            CONSOLE.print(
                f"Rendered {generator.views_rendered} views in {seconds:.1f} s "
                f"({generator.views_rendered / max(seconds, 1e-9):.2f} views/s) on {device}"
            )
        if rank == 0:
            total, views = cache.existing_bytes()
            pixels = int(intrinsics[0, 4] * intrinsics[0, 5])
            CONSOLE.print(f"{cache.root}: {views}/{spec.count} views on disk, {bytes_summary(total, views, pixels)}")
        return 0


@dataclass
class Check:
    """Verify a cache; exit status 1 unless it is complete and valid."""

    cache: tyro.conf.Positional[Path]
    """Cache folder."""
    teacher_config: Optional[Path] = None
    """Also require this teacher (its run's config.yml)."""

    def main(self) -> int:
        from mobiler2l_ns.distill.cache import PseudoCache, read_manifest, spec_from_manifest  # pylint: disable=import-outside-toplevel
        from mobiler2l_ns.distill.teacher import TeacherRun  # pylint: disable=import-outside-toplevel

        manifest = read_manifest(self.cache)
        spec = spec_from_manifest(manifest)
        if self.teacher_config is not None:
            run = TeacherRun.from_config(self.teacher_config)
            if run.teacher_id != spec.teacher_id:
                raise InputError(
                    f"pseudo cache {self.cache} was rendered by teacher {spec.teacher_id}, not by "
                    f"{self.teacher_config} ({run.teacher_id})"
                )
        cache = PseudoCache(self.cache, spec)
        results = cache.check(range(spec.num_shards))
        problems = [err for err in results.values() if err is not None]
        for err in problems:
            print(f"{self.cache}: {err}")
        valid = [k for k, err in results.items() if err is None]
        views = sum(cache.spec.shard_range(k)[1] - cache.spec.shard_range(k)[0] for k in valid)
        total = sum(cache.shard_path(k).stat().st_size for k in valid)
        kinds = {}
        for err in problems:
            kinds[err.kind] = kinds.get(err.kind, 0) + 1
        status = "complete" if not problems else ", ".join(f"{n} {kind}" for kind, n in sorted(kinds.items()))
        pixels = 0
        if valid:
            intrinsics = cache.load(valid[0]).intrinsics
            pixels = int(intrinsics[0, 4] * intrinsics[0, 5])
        print(
            f"{self.cache}: {len(valid)}/{spec.num_shards} shards valid ({views}/{spec.count} views), {status}; "
            f"teacher {spec.teacher_id}, poses {spec.pose_hash}; "
            + (bytes_summary(total, views, pixels) if views else "no views")
        )
        return 0 if not problems else 1


Command = Union[
    Annotated[Generate, tyro.conf.subcommand("generate")],
    Annotated[Check, tyro.conf.subcommand("check")],
]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``mobiler2l-pseudo generate | check``; returns the exit status."""
    return run_cli(Command, argv, prog=PROG, description="Pseudo views of a MobileR2L teacher.")


def entrypoint() -> None:
    """Console script ``mobiler2l-pseudo``."""
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
