"""Train the teacher for a fixed step budget on lego-400 and print its test-view PSNR/SSIM.

Runs the real `ns-train mobiler2l-teacher` (device defaults: CUDA if present, else CPU presets),
then renders every --test-stride-th test view (of 200) at 400x400 and averages the metrics.

    python benchmarks/teacher_lego.py --steps 3000 [--test-stride 10] [--out benchmarks/runs/teacher-lego]
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import torch

from common import LEGO, REPO, machine_description, require_lego


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=LEGO)
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--test-stride", type=int, default=10, help="evaluate every n-th test view")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "runs" / "teacher-lego")
    parser.add_argument("extra", nargs="*", help="extra ns-train flags, e.g. --pipeline.model.steps-per-diagonal 512")
    args = parser.parse_args()
    data = require_lego(args.data).resolve()
    out = args.out.resolve()
    print(machine_description(), flush=True)
    ns_train = Path(sys.executable).with_name("ns-train")
    cmd = [str(ns_train), "mobiler2l-teacher", "--vis", "tensorboard", "--output-dir", str(out)]
    cmd += ["--experiment-name", "lego", "--timestamp", "bench", "--max-num-iterations", str(args.steps)]
    cmd += ["--steps-per-save", str(args.steps), "--steps-per-eval-image", "1000000"]
    cmd += ["--steps-per-eval-all-images", "1000000", *args.extra, "blender-data", "--data", str(data)]
    start = time.perf_counter()
    subprocess.run(cmd, check=True, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    train_minutes = (time.perf_counter() - start) / 60

    from mobiler2l_ns.utils.runs import load_pipeline

    config = out / "lego" / "mobiler2l-teacher" / "bench" / "config.yml"
    device = "cuda" if torch.cuda.is_available() else "cpu"
    pipeline, _, _ = load_pipeline(config, device, test_mode="test", label="teacher config")
    dataset = pipeline.datamanager.eval_dataset
    metrics = []
    start = time.perf_counter()
    for idx in range(0, len(dataset), args.test_stride):
        camera = dataset.cameras[idx : idx + 1].to(pipeline.device)
        with torch.no_grad():
            outputs = pipeline.model.get_outputs_for_camera(camera)
        metric, _ = pipeline.model.get_image_metrics_and_images(outputs, dataset[idx])
        metrics.append(metric)
    render_s = (time.perf_counter() - start) / len(metrics)
    psnr = sum(m["psnr"] for m in metrics) / len(metrics)
    ssim = sum(m["ssim"] for m in metrics) / len(metrics)
    print(f"teacher on lego-400 after {args.steps} steps ({train_minutes:.1f} min training):")
    print(f"  test PSNR {psnr:.2f} dB, SSIM {ssim:.4f} over {len(metrics)} of {len(dataset)} test views (400x400)")
    print(f"  render time {render_s:.2f} s per 400x400 view")


if __name__ == "__main__":
    main()
