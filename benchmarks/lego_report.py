"""End-to-end results on lego-400: teacher -> pseudo views -> student -> ONNX, one command.

    python benchmarks/lego_report.py [--preset cpu|gpu] [--data ../shared/data/blender-lego-400]
                                     [--out benchmarks/runs/report] [--budget-min 60]

Runs (or resumes) the chain of ``mobiler2l run`` on the scene with the named preset, then measures
on the same machine and writes ``benchmarks/results/lego-400-PRESET.md`` and its JSON twin:

* teacher test PSNR / SSIM / LPIPS (LPIPS only where its weights are available offline), student
  PyTorch and ONNX (onnxruntime) test PSNR / SSIM on the same evenly spaced test views;
* student parameters, MB (fp32, fp16), GFLOPs per frame, ONNX file sizes;
* ONNX latency per frame (sampler + embedder + model, median) and the teacher's render time per
  frame of the same views in the same process, and their ratio;
* pseudo-view cache bytes per view, scaled to an 800x800 view, against R2L's 7.68 MB float32 .npy;
* wall-clock per stage, the machine;

plus the comparison strip ``benchmarks/results/lego-400-PRESET-strip.png`` (ground truth | teacher |
student | 4x |student - ground truth|). Rerunning reuses finished stages and re-measures.
"""

from __future__ import annotations

import argparse
import json
import platform
import shutil
import statistics
import sys
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

from common import LEGO, REPO, machine_description, read_on_white, require_lego

from mobiler2l_ns.chain import Chain
from mobiler2l_ns.methods.presets import PRESETS
from mobiler2l_ns.distill.datamanager import PseudoDataManagerConfig
from mobiler2l_ns.distill.teacher import TeacherRun
from mobiler2l_ns.utils.runs import load_pipeline
from mobiler2l_ns.export.runtime import OnnxLightField
from mobiler2l_ns.student.embedders import embedder_flops, embedder_parameters
from mobiler2l_ns.student.network import count_parameters, frame_flops
from mobiler2l_ns.utils.io import write_json_atomic
from mobiler2l_ns.utils.metrics import ImageMetrics

SHARD_SIZE = PseudoDataManagerConfig().pseudo_shard_size
ORIGINAL_BYTES = 800 * 800 * 3 * 4  # R2L / MobileR2L: float32 .npy per 800x800 view
PAPER = {"psnr": 31.34, "params_m": 4.3, "mb": 8.3, "gflops": 150.0, "iphone_ms": 20.0}


def timed(fn, repeats: int) -> float:
    """Median seconds of ``repeats`` calls of ``fn`` (after one warm-up call)."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def ground_truth(scene: Path, frame: dict) -> np.ndarray:
    return read_on_white(scene / f"{frame['file_path']}.png")


def onnx_quality(chain: Chain, indices: List[int]) -> Dict[str, float]:
    """ONNX student PSNR / SSIM on the test views ``indices`` (capture poses -> onnxruntime)."""
    field = OnnxLightField(chain.export_dir)
    frames = json.loads((chain.data / "transforms_test.json").read_text())["frames"]
    metrics = ImageMetrics()
    scores = []
    for index in indices:
        frame = frames[index]
        image = field.render(np.asarray(frame["transform_matrix"]), original_coords=True)
        scores.append(metrics(torch.from_numpy(image), torch.from_numpy(ground_truth(chain.data, frame))))
    return {key: float(np.mean([s[key] for s in scores])) for key in ("psnr", "ssim")}


def student_size(chain: Chain) -> Dict[str, float]:
    pipeline, _, _ = load_pipeline(chain.student_config, "cpu")
    model = pipeline.model
    camera = pipeline.datamanager.train_dataset.cameras[0:1]
    height, width = int(camera.height), int(camera.width)
    sr = model.config.sr_factor
    network, grids = count_parameters(model.network), embedder_parameters(model.embedder)
    params = network + grids
    h, w = -(-height // sr), -(-width // sr)
    files = {g: (chain.export_dir / f"{g}.onnx").stat().st_size for g in ("sampler", "embedder", "model")}
    patch = pipeline.datamanager.config.pseudo_patch_size
    return {
        "parameters": params,
        "network_parameters": network,
        "embedder_parameters": grids,
        "embedder": model.config.embedder,
        "mb_fp32": params * 4 / 1e6,
        "mb_fp16": params * 2 / 1e6,
        "gflops_per_frame": (frame_flops(model.network, h, w) + embedder_flops(model.embedder, h, w)) / 1e9,
        "onnx_bytes": sum(files.values()),
        "height": height,
        "width": width,
        "pseudo_pixels": height * width if patch is None else int(patch[0]) * int(patch[1]),
    }


def speed(chain: Chain, indices: List[int], repeats: int) -> Dict[str, float]:
    """Teacher render vs ONNX chain per frame on the same test poses, same process."""
    device = "cuda" if torch.cuda.is_available() else "cpu"
    teacher = TeacherRun.from_config(chain.teacher_config).load(device)
    frames = json.loads((chain.data / "transforms_test.json").read_text())["frames"]
    field = OnnxLightField(chain.export_dir)
    poses = [np.asarray(frames[i]["transform_matrix"]) for i in indices[:3]]
    from mobiler2l_ns.distill.poses import make_cameras  # pylint: disable=import-outside-toplevel

    meta = field.metadata
    k = meta["intrinsics"]
    intrinsics = torch.tensor([[k["fx"], k["fy"], k["cx"], k["cy"], meta["width"], meta["height"]]])
    cameras = [
        make_cameras(torch.from_numpy(field.normalise(p)[:3]).float()[None], intrinsics, teacher.train_cameras)
        for p in poses
    ]
    teacher_s = statistics.median(timed(lambda c=c: teacher.render(c), 1) for c in cameras)
    onnx_s = statistics.median(timed(lambda p=p: field.render(p, original_coords=True), repeats) for p in poses)
    return {"teacher_ms": teacher_s * 1e3, "onnx_ms": onnx_s * 1e3, "ratio": teacher_s / onnx_s, "device": device}


def cache_bytes(chain: Chain, pixels: int) -> Dict[str, float]:
    """Shard bytes of the newest pseudo-view cache beside the teacher (the preset's pose set)."""
    folder = max(chain.teacher_config.parent.glob("pseudo-views-*"), key=lambda f: f.stat().st_mtime)
    shards = sorted(folder.glob("shard-*.m2lp"))
    count, size = chain.preset.pseudo_count, SHARD_SIZE
    views = sum(min(size, count - size * int(p.stem.split("-")[1])) for p in shards)  # views in the shards written
    total = sum(p.stat().st_size for p in shards)
    per_view = total / max(views, 1)
    scaled = per_view * 800 * 800 / pixels
    return {
        "views": views,
        "bytes_per_view": per_view,
        "mb_per_800": scaled / 1e6,
        "fraction_of_original": scaled / ORIGINAL_BYTES,
    }


def markdown(report: dict) -> str:
    t, s, o = report["teacher"], report["student_torch"], report["student_onnx"]
    size, sp, cache = report["student_size"], report["speed"], report["pseudo_cache"]
    lpips = "n/a (AlexNet weights not cached offline)" if t.get("lpips") is None else f"{t['lpips']:.3f}"
    rows = [
        "| | ours | paper (800x800, GPU) |",
        "| --- | --- | --- |",
        f"| teacher PSNR / SSIM / LPIPS | {t['psnr']:.2f} dB / {t['ssim']:.3f} / {lpips} | - |",
        f"| student PyTorch PSNR / SSIM | {s['psnr']:.2f} dB / {s['ssim']:.3f} | {PAPER['psnr']} dB |",
        f"| student ONNX PSNR / SSIM | {o['psnr']:.2f} dB / {o['ssim']:.3f} | - |",
        f"| student - teacher PSNR | {s['psnr'] - t['psnr']:+.2f} dB | - |",
        f"| student parameters (network + {size.get('embedder', 'pe')} embedder) | "
        f"{size['parameters'] / 1e6:.3f} M ({size.get('network_parameters', size['parameters']) / 1e6:.3f} M + "
        f"{size.get('embedder_parameters', 0) / 1e6:.3f} M) | {PAPER['params_m']} M |",
        f"| student MB fp32 / fp16 | {size['mb_fp32']:.2f} / {size['mb_fp16']:.2f} | {PAPER['mb']} (fp16) |",
        f"| GFLOPs per {size['width']}x{size['height']} frame | {size['gflops_per_frame']:.2f} | "
        f"{PAPER['gflops']} (800x800) |",
        f"| ONNX latency per frame ({sp['device']}, onnxruntime CPU) | {sp['onnx_ms']:.1f} ms | "
        f"{PAPER['iphone_ms']} ms (iPhone) |",
        f"| teacher render per frame ({sp['device']}) | {sp['teacher_ms']:.0f} ms | - |",
        f"| ONNX student speed-up over teacher | {sp['ratio']:.1f}x | - |",
        f"| pseudo views: bytes per 800x800-equivalent view | {cache['mb_per_800']:.3f} MB "
        f"(1/{1 / cache['fraction_of_original']:.1f} of 7.68 MB; {cache['views']} views cached) | 7.68 MB (float32 .npy) |",
    ]
    stages = ", ".join(f"{k} {v['seconds'] / 60:.1f} min" for k, v in report["stages"].items())
    return "\n".join(
        [
            f"# lego-400, preset `{report['preset_name']}`",
            "",
            f"Command: `{report['command']}`",
            f"Machine: {report['machine']}",
            f"Date: {report['date']}; test views: {t['views']} of 200 (evenly spaced)",
            f"Preset: {json.dumps(report['preset'])}",
            "",
            *rows,
            "",
            f"Wall-clock: {stages}; total {report['total_minutes']:.1f} min "
            f"(budget {report['budget_min']} min{', EXCEEDED' if report['over_budget'] else ''}).",
            "",
            f"![ground truth | teacher | student | 4x error]({report['strip']})",
            "",
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--preset", choices=["cpu", "gpu"], default="gpu" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--data", type=Path, default=LEGO)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "runs" / "report")
    parser.add_argument("--results", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--budget-min", type=float, default=None, help="default: 60 for cpu, none for gpu")
    parser.add_argument("--repeats", type=int, default=10, help="ONNX timing repeats per pose")
    parser.add_argument("--teacher-steps", type=int, default=None, help="override the preset's")
    parser.add_argument("--student-steps", type=int, default=None, help="override the preset's")
    args = parser.parse_args()
    budget = args.budget_min if args.budget_min is not None else (60.0 if args.preset == "cpu" else None)

    preset = PRESETS[args.preset].with_steps(args.teacher_steps, args.student_steps)
    chain = Chain(require_lego(args.data), args.out, f"lego-400-{args.preset}", preset)
    chain.run()
    record = json.loads(chain.record_path.read_text())
    teacher = json.loads((chain.root / "eval" / "teacher.json").read_text())
    student = json.loads((chain.root / "eval" / "student.json").read_text())
    indices = teacher["indices"]
    size = student_size(chain)
    report = {
        "preset_name": args.preset,
        "preset": record["preset"],
        "command": "python benchmarks/lego_report.py " + " ".join(sys.argv[1:]),
        "machine": machine_description(),
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d"),
        "teacher": {k: teacher[k] for k in ("psnr", "ssim", "lpips", "views", "seconds_per_view")},
        "student_torch": {k: student[k] for k in ("psnr", "ssim", "views", "seconds_per_view")},
        "student_onnx": onnx_quality(chain, indices),
        "student_size": size,
        "speed": speed(chain, indices, args.repeats),
        "pseudo_cache": cache_bytes(chain, size["pseudo_pixels"]),
        "stages": record["stages"],
    }
    total = sum(v["seconds"] for v in record["stages"].values()) / 60
    report.update(total_minutes=total, budget_min=budget, over_budget=budget is not None and total > budget)
    args.results.mkdir(parents=True, exist_ok=True)
    strip = args.results / f"lego-400-{args.preset}-strip.png"
    shutil.copyfile(chain.renders / "strip.png", strip)
    report["strip"] = strip.name
    write_json_atomic(args.results / f"lego-400-{args.preset}.json", report)
    md = markdown(report)
    (args.results / f"lego-400-{args.preset}.md").write_text(md, encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
