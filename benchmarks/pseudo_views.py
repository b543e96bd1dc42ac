"""Pseudo-view generation: speed against a plain render loop, and bytes per view against R2L's .npy.

For ``--count`` pseudo poses of the teacher (seed 0, the teacher's own training cameras) it times,
over ``--repeats`` rounds, the order alternating between rounds (medians reported):

* ``plain``: ``teacher.model.get_outputs_for_camera`` on each pose (render only, nothing kept);
* ``plain 2-pass``: the same with ``single_pass_inference=False`` (our teacher only): a density pass
  in the marcher, then the field again on the kept samples, as before the single-pass path;
* ``plain+npy``: the same, each view saved as a float32 ``.npy`` (what R2L / MobileR2L store);
* ``ours``: :class:`~mobiler2l_ns.distill.generator.PseudoViewGenerator` into a fresh cache
  (render, uint8, PNG, checksummed shards written atomically by a writer thread).

and prints views/s, the ratios ours / plain and ours / plain+npy, and bytes per view of the cache
(png and fp16 encodings) next to float32 .npy, scaled to an 800x800 view by pixel count (PNG of a
tiny image costs more per pixel than of a large one, so the scaling overestimates).
With ``--lego DIR`` it also encodes that Blender scene's ground-truth images (composited on white)
as the cache would, measured at their own resolution and scaled to 800x800 the same way.

Usage::

    OMP_NUM_THREADS=1 python benchmarks/pseudo_views.py --teacher-config RUN/config.yml \\
        [--count 48] [--repeats 3] [--lego ../shared/data/blender-lego-400]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List

import numpy as np
import torch
from PIL import Image

from mobiler2l_ns.distill.cache import CacheSpec, PseudoCache
from mobiler2l_ns.distill.generator import PseudoViewGenerator
from mobiler2l_ns.distill.poses import PoseConfig, TrainingRig, make_cameras, pose_fingerprint, sample_poses
from mobiler2l_ns.distill.shards import encode_image, to_storage
from mobiler2l_ns.distill.teacher import Teacher, TeacherRun

ORIGINAL_BYTES = 800 * 800 * 3 * 4  # 7.68 MB: float32 .npy of an 800x800 RGB view
EQUIVALENT_PIXELS = 800 * 800


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device) -> float:
    synchronize(device)
    start = time.perf_counter()
    fn()
    synchronize(device)
    return time.perf_counter() - start


def make_cache(root: Path, teacher: Teacher, rig: TrainingRig, pose_config: PoseConfig, encoding: str) -> PseudoCache:
    spec = CacheSpec(teacher.run.teacher_id, pose_fingerprint(rig, pose_config), 16, encoding)  # type: ignore[arg-type]
    cache = PseudoCache(root, spec)
    cache.open()
    return cache


def equivalent(bytes_per_view: float, pixels: int) -> str:
    scaled = bytes_per_view * EQUIVALENT_PIXELS / pixels
    return f"{scaled / 1e6:.3f} MB per 800x800-equivalent view = 1/{ORIGINAL_BYTES / scaled:.1f} of 7.68 MB"


def lego_bytes(folder: Path, views: int) -> None:
    meta = json.loads((folder / "transforms_train.json").read_text())
    sizes: Dict[str, List[int]] = {"png": [], "fp16": []}
    pixels = 0
    for frame in meta["frames"][:views]:
        rgba = np.asarray(Image.open(folder / f"{frame['file_path']}.png")).astype(np.float32) / 255.0
        rgb = torch.from_numpy(rgba[..., :3] * rgba[..., 3:] + (1.0 - rgba[..., 3:]))
        pixels = rgb.shape[0] * rgb.shape[1]
        for encoding in sizes:
            sizes[encoding].append(len(encode_image(to_storage(rgb, encoding), encoding)))  # type: ignore[arg-type]
    side = int(round(pixels**0.5))
    for encoding, values in sizes.items():
        mean = float(np.mean(values))
        note = " (source is 8-bit, so fp16 compresses better than a teacher render would)" if encoding == "fp16" else ""
        print(
            f"lego ground truth {side}x{side}, {encoding}: {mean / 1e3:.1f} kB per view (mean of {len(values)}), "
            f"{equivalent(mean, pixels)}{note}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher-config", type=Path, required=True)
    parser.add_argument("--count", type=int, default=48)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--lego", type=Path, default=None, help="a Blender scene (e.g. ../shared/data/blender-lego-400)"
    )
    parser.add_argument("--lego-views", type=int, default=20)
    args = parser.parse_args()

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    teacher = TeacherRun.from_config(args.teacher_config).load(device)
    rig = TrainingRig.from_cameras(teacher.train_cameras)
    pose_config = PoseConfig(count=args.count, seed=0)
    c2w, intrinsics = sample_poses(rig, pose_config)
    cameras = [make_cameras(c2w[i : i + 1], intrinsics[i : i + 1], teacher.train_cameras) for i in range(args.count)]
    height, width = int(intrinsics[0, 5]), int(intrinsics[0, 4])
    print(
        f"teacher {args.teacher_config} (id {teacher.run.teacher_id}) on {device}, torch threads "
        f"{torch.get_num_threads()}; {args.count} pseudo views of {width}x{height}"
    )
    for camera in cameras[:2]:  # warm-up
        teacher.model.get_outputs_for_camera(camera.to(device))

    def plain() -> None:
        for camera in cameras:
            teacher.model.get_outputs_for_camera(camera.to(device))["rgb"]

    def plain_two_pass() -> None:  # the teacher's inference path before single-pass shading
        teacher.model.config.single_pass_inference = False
        try:
            plain()
        finally:
            teacher.model.config.single_pass_inference = True

    times: Dict[str, List[float]] = {"plain": [], "plain+npy": [], "ours": []}
    if hasattr(teacher.model.config, "single_pass_inference"):
        times["plain 2-pass"] = []
    bytes_per_view: Dict[str, float] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for repeat in range(args.repeats):
            folder = Path(tmp) / f"npy-{repeat}"
            folder.mkdir()

            def plain_npy() -> None:
                for i, camera in enumerate(cameras):
                    rgb = teacher.model.get_outputs_for_camera(camera.to(device))["rgb"]
                    np.save(folder / f"{i:05d}.npy", rgb.float().cpu().numpy())

            cache = make_cache(Path(tmp) / f"ours-{repeat}", teacher, rig, pose_config, "png")
            generator = PseudoViewGenerator(cache, c2w, intrinsics, teacher.train_cameras, show_progress=False)
            runs = {
                "plain": plain,
                "plain 2-pass": plain_two_pass,
                "plain+npy": plain_npy,
                "ours": lambda: generator.render_shards(teacher, range(cache.spec.num_shards)),  # noqa: B023
            }
            runs = {name: run for name, run in runs.items() if name in times}
            order = list(runs) if repeat % 2 == 0 else list(reversed(runs))  # cancels drift on a shared machine
            for name in order:
                times[name].append(timed(runs[name], device))
            npy_bytes = sum(p.stat().st_size for p in folder.iterdir()) / args.count
            bytes_per_view["png"] = cache.existing_bytes()[0] / args.count
        # correctness: the cache holds the plain loop's renders (uint8-rounded)
        first = cache.load(0)
        reference = teacher.model.get_outputs_for_camera(cameras[1].to(device))["rgb"].cpu()
        error = float((first.images[1].float() / 255.0 - reference).abs().max()) * 255.0
        fp16 = make_cache(Path(tmp) / "fp16", teacher, rig, pose_config, "fp16")
        PseudoViewGenerator(fp16, c2w, intrinsics, teacher.train_cameras, show_progress=False).render_shards(
            teacher, range(fp16.spec.num_shards)
        )
        bytes_per_view["fp16"] = fp16.existing_bytes()[0] / args.count

    median = {name: statistics.median(values) for name, values in times.items()}
    rate = {name: args.count / seconds for name, seconds in median.items()}
    for name in times:
        runs = ", ".join(f"{t:.2f}" for t in times[name])
        print(f"{name:>12}: {rate[name]:7.2f} views/s (median of {args.repeats} rounds: {runs} s)")
    for other in [name for name in times if name != "ours"]:
        paired = [b / a for a, b in zip(times["ours"], times[other])]  # per round: views/s ours / other
        print(
            f"ratio ours / {other:<9} = {statistics.median(paired):.3f} (median of per-round ratios "
            f"{', '.join(f'{r:.3f}' for r in paired)})"
        )
    print(f"cache image vs plain render: max |difference| {error:.3f} / 255 (uint8 rounding: <= 0.5)")
    pixels = width * height
    print(f"float32 .npy: {npy_bytes / 1e3:.1f} kB per {width}x{height} view (7.68 MB at 800x800)")
    for encoding, value in bytes_per_view.items():
        print(
            f"ours {encoding}: {value / 1e3:.2f} kB per {width}x{height} view (shard files, all headers included), "
            f"{equivalent(value, pixels)}"
        )
    if args.lego is not None:
        lego_bytes(args.lego, args.lego_views)


if __name__ == "__main__":
    main()
