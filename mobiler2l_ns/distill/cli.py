"""``mobiler2l-pseudo``: pre-generate or check a pseudo-view cache.

::

    mobiler2l-pseudo generate --teacher-config RUN/config.yml --count 10000 --cache DIR
        [--seed 0] [--scene-type auto|360|forward] [--bbox-scale 1.1] [--shard-size 64]
        [--encoding png|fp16] [--regenerate-corrupt] [--device cuda:0] [--no-progress]
    mobiler2l-pseudo check DIR [--teacher-config RUN/config.yml]

``generate`` samples poses around the teacher's training cameras, keeps every valid shard already
in DIR (an interrupted run resumes where it stopped) and renders the rest. Under ``torchrun``
(``torch.distributed`` environment) each rank renders its own shards on ``cuda:LOCAL_RANK``.
A student trained with ``--pipeline.datamanager.teacher-config RUN/config.yml
--pipeline.datamanager.pseudo-cache DIR`` and the same pose settings reuses the cache.

``check`` verifies the manifest and every shard's checksum and names each missing, truncated,
corrupt or foreign shard; it exits with status 1 unless the cache is complete and valid.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Optional, Sequence

import torch

from mobiler2l_ns.utils.errors import InputError, OneLineArgumentParser

EQUIVALENT_PIXELS = 800 * 800
ORIGINAL_BYTES_PER_VIEW = 800 * 800 * 3 * 4  # R2L / MobileR2L: float32 .npy per 800x800 view


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(prog="mobiler2l-pseudo", description="Pseudo views of a MobileR2L teacher.")
    commands = parser.add_subparsers(dest="command", required=True, parser_class=OneLineArgumentParser)
    gen = commands.add_parser("generate", help="render a pseudo-view cache (resumes an interrupted one)")
    gen.add_argument("--teacher-config", type=Path, required=True, help="the teacher run's config.yml")
    gen.add_argument("--count", type=int, default=10_000, help="number of pseudo views (paper: 10k)")
    gen.add_argument("--cache", type=Path, required=True, help="cache folder")
    gen.add_argument("--seed", type=int, default=0, help="pose seed")
    gen.add_argument("--scene-type", choices=("auto", "360", "forward"), default="auto")
    gen.add_argument("--bbox-scale", type=float, default=1.1, help="forward-facing box enlargement")
    gen.add_argument(
        "--patch-size",
        type=int,
        nargs=2,
        default=None,
        metavar=("H", "W"),
        help="render random H x W windows of the sampled cameras instead of whole views",
    )
    gen.add_argument("--patch-alignment", type=int, default=1, help="patch offsets are multiples of this")
    gen.add_argument("--shard-size", type=int, default=64, help="views per shard")
    gen.add_argument("--encoding", choices=("png", "fp16"), default="png")
    gen.add_argument("--regenerate-corrupt", action="store_true", help="re-render truncated / corrupt shards")
    gen.add_argument("--device", default=None, help="render device (default: cuda[:LOCAL_RANK] if available)")
    gen.add_argument("--no-progress", action="store_true", help="no progress bar")
    chk = commands.add_parser("check", help="verify a cache; exit status 1 unless complete and valid")
    chk.add_argument("cache", type=Path)
    chk.add_argument("--teacher-config", type=Path, default=None, help="also require this teacher")
    return parser


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


def generate(args: argparse.Namespace) -> int:
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

    patch = tuple(args.patch_size) if args.patch_size is not None else None
    pose_config = PoseConfig(args.count, args.seed, args.scene_type, args.bbox_scale, patch, args.patch_alignment)
    try:
        pose_config.validate()
    except ValueError as err:
        raise InputError(str(err)) from None
    if args.shard_size < 1:
        raise InputError(f"--shard-size must be >= 1, got {args.shard_size}")
    rank, world, local_rank = distributed_rank_world()
    device = args.device or (f"cuda:{local_rank}" if torch.cuda.is_available() else "cpu")
    run = TeacherRun.from_config(args.teacher_config)
    if (args.cache / MANIFEST).is_file():  # refuse another teacher's cache before loading this one
        refuse_other_teacher(args.cache, read_manifest(args.cache), run.teacher_id)
    teacher = run.load(device)
    rig = TrainingRig.from_cameras(teacher.train_cameras)
    spec = CacheSpec(run.teacher_id, pose_fingerprint(rig, pose_config), args.shard_size, args.encoding, run.describe())
    cache = PseudoCache(args.cache, spec)
    cache.open()
    own = owned_shards(spec.num_shards, rank, world)
    plan = plan_shards(cache, own, args.regenerate_corrupt)
    CONSOLE.print(
        f"[bold]{cache.root}[/bold]: {spec.count} views in {spec.num_shards} shards; rank {rank}/{world} keeps "
        f"{len(plan.valid)} of its {len(own)} shards, renders {len(plan.to_render)}"
        + (f" (re-rendering {', '.join(e.name for e in plan.unusable.values())})" if plan.unusable else "")
    )
    c2w, intrinsics = sample_poses(rig, pose_config)
    generator = PseudoViewGenerator(
        cache, c2w, intrinsics, like=teacher.train_cameras, show_progress=not args.no_progress and rank == 0
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


def check(args: argparse.Namespace) -> int:
    from mobiler2l_ns.distill.cache import PseudoCache, read_manifest, spec_from_manifest  # pylint: disable=import-outside-toplevel
    from mobiler2l_ns.distill.teacher import TeacherRun  # pylint: disable=import-outside-toplevel

    manifest = read_manifest(args.cache)
    spec = spec_from_manifest(manifest)
    if args.teacher_config is not None:
        run = TeacherRun.from_config(args.teacher_config)
        if run.teacher_id != spec.teacher_id:
            raise InputError(
                f"pseudo cache {args.cache} was rendered by teacher {spec.teacher_id}, not by "
                f"{args.teacher_config} ({run.teacher_id})"
            )
    cache = PseudoCache(args.cache, spec)
    results = cache.check(range(spec.num_shards))
    problems = [err for err in results.values() if err is not None]
    for err in problems:
        print(f"{args.cache}: {err}")
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
        f"{args.cache}: {len(valid)}/{spec.num_shards} shards valid ({views}/{spec.count} views), {status}; "
        f"teacher {spec.teacher_id}, poses {spec.pose_hash}; "
        + (bytes_summary(total, views, pixels) if views else "no views")
    )
    return 0 if not problems else 1


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = build_parser().parse_args(argv)
    if args.command == "generate":
        return generate(args)
    return check(args)


def entrypoint() -> None:
    """Console script ``mobiler2l-pseudo``."""
    sys.exit(main())


if __name__ == "__main__":
    entrypoint()
