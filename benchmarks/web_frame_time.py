"""Browser frame time of the viewer (onnxruntime-web in Chromium) next to onnxruntime in Python.

For each preset (``paper``: the ``mobiler2l`` method's network, depth 29, width 256, x8 SR;
``small``: ``mobiler2l-small``'s, depth 4, width 64, x4 SR) and each ``--sizes`` S, a randomly
initialised student is exported at S x S (``export_model``: the same graphs and metadata as
``ns-export mobiler2l-onnx``), served by ``mobiler2l-view``'s server in this process and rendered
by the page in headless Debian Chromium (``/usr/bin/chromium``, Playwright) with the wasm
execution provider, and by :class:`OrtChain` (onnxruntime, CPUExecutionProvider) in this process.
Both use ``--threads`` threads (default 1) and render the export's reference pose.

Printed per row: best / median of ``--repeats`` frames after ``--warmup`` untimed ones (in the
browser: and for at least ``--warmup-seconds``, V8's tier-up of the wasm code) of the whole
browser frame (sampler + embedder + model + drawing into the canvas), of its model graph alone
and of a 1/4-resolution frame (every 4th ray: the viewer's default while the camera moves), the
Python chain (sampler + embedder + model) and its model graph alone, and the ratios
browser / Python of the best times (frame / chain and model / model). onnxruntime-web must be
installed (``npm ci`` in ``mobiler2l_ns/web``).

Usage::

    python benchmarks/web_frame_time.py [--sizes 100 200 400] [--presets paper small] [--threads 1]
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Dict, List

import numpy as np
import torch
from common import machine_description

from mobiler2l_ns.export.graphs import ExportCamera
from mobiler2l_ns.export.onnx_export import export_model
from mobiler2l_ns.export.runtime import OnnxLightField
from mobiler2l_ns.methods.students import mobiler2l_config, mobiler2l_small_config
from mobiler2l_ns.web.browser import CHROMIUM, CHROMIUM_FLAGS
from mobiler2l_ns.web.export_check import load_viewer_export
from mobiler2l_ns.web.server import ORT_DIST, make_server, server_url

PRESETS = {"paper": mobiler2l_config, "small": mobiler2l_small_config}
CAMERA_ANGLE_X = 0.6911112  # NeRF-synthetic lego
STATS = {"best": min, "median": statistics.median}


def random_student(preset: str):
    """The preset's network with random weights and BatchNorm statistics (as benchmarks/onnx_latency.py)."""
    from nerfstudio.data.scene_box import SceneBox

    torch.manual_seed(0)
    config = copy.deepcopy(PRESETS[preset].pipeline.model)
    config.report_cost = False
    box = SceneBox(aabb=torch.tensor([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]))
    model = config.setup(scene_box=box, num_train_data=1)
    for module in model.network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def reference_pose(radius: float = 4.0) -> np.ndarray:
    """A lego-like camera: on a sphere of ``radius`` above the z = 0 plane, looking at the origin."""
    eye = np.array([radius * math.cos(0.5), radius * math.sin(0.5) * 0.9, radius * 0.45])
    back = eye / np.linalg.norm(eye)
    right = np.cross([0.0, 0.0, 1.0], back)
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(back, right), back, eye], axis=1)


def export_at(model, size: int, out: Path) -> Path:
    focal = 0.5 * size / math.tan(0.5 * CAMERA_ANGLE_X)
    camera = ExportCamera(size, size, focal, focal, size / 2.0, size / 2.0)
    export_model(model, camera, out, reference_pose()[None])
    return out


def python_times(export_dir: Path, threads: int, repeats: int, warmup: int) -> Dict[str, float]:
    """Best / median seconds of the onnxruntime chain and of its model graph alone, reference pose."""
    field = OnnxLightField(export_dir, threads=threads)
    chain = field.chain
    pose = field.reference_pose
    encoding = chain.stages(pose)["encoding"]
    model = chain.sessions["model"]
    times: Dict[str, List[float]] = {"chain": [], "model": []}
    for i in range(warmup + repeats):
        start = time.perf_counter()
        chain.render(pose)
        middle = time.perf_counter()
        model.run(None, {"encoding": encoding})
        end = time.perf_counter()
        if i >= warmup:
            times["chain"].append(middle - start)
            times["model"].append(end - middle)
    return {f"{name} {stat}": fn(values) for name, values in times.items() for stat, fn in STATS.items()}


def browser_times(
    browser, export_dir: Path, threads: int, repeats: int, warmup: int, warmup_seconds: float
) -> Dict[str, float]:
    """Best / median seconds of a browser frame, of its model graph and of a 1/4-resolution frame (wasm)."""
    server = make_server(load_viewer_export(export_dir), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    page = browser.new_page()
    try:
        page.set_default_timeout(600_000)
        page.goto(f"{server_url(server)}?ep=wasm&threads={threads}")
        page.wait_for_function("window.mobiler2l && (window.mobiler2l.ready || window.mobiler2l.error)")
        error = page.evaluate("mobiler2l.error")
        if error:
            raise SystemExit(f"web_frame_time: the page failed: {error}")
        page.wait_for_function("window.mobiler2l.previewReady")  # nothing left loading
        frames = page.evaluate(
            "([r, w, s]) => mobiler2l.benchmark(r, w, 1, s)", [repeats, warmup, warmup_seconds * 1e3]
        )
        quarter = []
        if 4 in page.evaluate("mobiler2l.availableLevels()"):  # the default resolution while moving
            quarter = page.evaluate("([r, w]) => mobiler2l.benchmark(r, w, 4, 0)", [repeats, warmup])
    finally:
        page.close()
        server.shutdown()
        server.server_close()
    times = {"frame": [f["ms"] / 1e3 for f in frames], "model": [f["model"] / 1e3 for f in frames]}
    times["1/4 frame"] = [f["ms"] / 1e3 for f in quarter] or [math.nan]
    return {f"{name} {stat}": fn(values) for name, values in times.items() for stat, fn in STATS.items()}


def ort_web_version() -> str:
    """Version of the installed onnxruntime-web (``npm ci`` in mobiler2l_ns/web)."""
    return json.loads((ORT_DIST.parent / "package.json").read_text())["version"]


def chromium_version() -> str:
    import subprocess

    out = subprocess.run([CHROMIUM, "--version"], capture_output=True, text=True, timeout=60).stdout
    return " ".join(out.split()[:2]) or "Chromium"


def ms(times: Dict[str, float], name: str) -> str:
    """'best/median' in milliseconds, 15 characters."""
    return f"{times[name + ' best'] * 1e3:7.1f}/{times[name + ' median'] * 1e3:<7.1f}"


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100, 200, 400])
    parser.add_argument("--presets", nargs="+", choices=sorted(PRESETS), default=["paper", "small"])
    parser.add_argument("--threads", type=int, default=1, help="wasm threads and onnxruntime intra-op threads")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=3, help="untimed frames first (both runtimes)")
    parser.add_argument(
        "--warmup-seconds",
        type=float,
        default=8.0,
        help="browser: untimed frames for at least this long (wasm tier-up)",
    )
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if not Path(CHROMIUM).is_file():
        raise SystemExit(f"web_frame_time: needs Debian's chromium at {CHROMIUM} (apt-get install chromium)")
    import onnxruntime
    from playwright.sync_api import sync_playwright

    print(machine_description())
    print(
        f"onnxruntime {onnxruntime.__version__} (Python, CPU) vs onnxruntime-web {ort_web_version()} "
        f"(wasm, {chromium_version()} headless); {args.threads} thread(s) each; load average "
        + ", ".join(f"{x:.2f}" for x in os.getloadavg())
    )
    print(
        f"best / median of {args.repeats} frames after {args.warmup} warm-up frames (browser: and at least "
        f"{args.warmup_seconds:g} s of them) in ms, reference pose, full resolution; ratios use the best times"
    )
    header = (
        f"{'preset':>6} {'params':>10} {'size':>9} {'grid':>7} {'GFLOP':>6} "
        f"{'browser frame':>15} {'browser model':>15} {'browser 1/4':>15} {'ORT chain':>15} {'ORT model':>15} "
        f"{'frame/chain':>11} {'model/model':>11}"
    )
    print(header)
    with sync_playwright() as playwright, tempfile.TemporaryDirectory(prefix="web-frame-time-") as tmp:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_FLAGS)
        try:
            for preset in args.presets:
                model = random_student(preset)
                for size in args.sizes:
                    export_dir = export_at(model, size, Path(tmp) / f"{preset}-{size}")
                    meta = load_viewer_export(export_dir).metadata
                    py = python_times(export_dir, args.threads, args.repeats, args.warmup)
                    web = browser_times(
                        browser, export_dir, args.threads, args.repeats, args.warmup, args.warmup_seconds
                    )
                    grid = f"{meta['lowres_height']}x{meta['lowres_width']}"
                    print(
                        f"{preset:>6} {meta['network']['parameters']:>10,} {size:>4}x{size:<4} {grid:>7} "
                        f"{meta['network']['flops_per_frame'] / 1e9:6.2f} "
                        f"{ms(web, 'frame')} {ms(web, 'model')} {ms(web, '1/4 frame')} {ms(py, 'chain')} {ms(py, 'model')} "
                        f"{web['frame best'] / py['chain best']:11.2f} {web['model best'] / py['model best']:11.2f}",
                        flush=True,
                    )
        finally:
            browser.close()
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
