"""The prepared device run: the CUDA path of the whole product measured end to end in <= 8 minutes.

    python benchmarks/device_run.py --out DIR [--data DIR] [--scale full|tiny]
    bash scripts/device-run.sh                       # on the GPU machine, with the carried wheels

Stages, each with a hard wall-clock limit (a stage past it is stopped and reported as such; the
report is rewritten after every stage, so a killed run still leaves what it measured):

1. ``env``: GPU, torch / CUDA versions; nerfacc's CUDA kernels are built in a background process
   from the start (``build_limit_s``); the teacher uses them if they are ready in time, else the
   torch marcher (one log line says which).
2. ``student-speed``: paper-size student at 800x800 in bf16: training step time; render time per
   frame of every student (eager torch, and a CUDA graph of embedder + network on CUDA).
3. ``teacher``: Instant-NGP on the scene for ``teacher_s`` seconds of training: seconds to 25 dB
   and PSNR after the budget (test views vs ground truth), kernels that ran.
4. ``pseudo``: teacher renders per second at 400x400 and 800x800; a pseudo-view cache for stage 5.
5. ``students``: each student trained for the same ``student_s`` seconds (pseudo + real views,
   paper student in bf16): test PSNR at 25 / 50 / 100 % of the budget.
6. ``export``: the trained new student exported to ONNX; onnxruntime (CPU) vs torch on the device, dB.

Writes ``device-report.json`` and ``device-report.md`` into ``--out``. ``--scale tiny`` is the CPU
rehearsal (a tiny scene, seconds per stage) that the test suite runs so this script cannot rot.
"""

from __future__ import annotations

import contextlib
import copy
import json
import math
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
import traceback
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Literal, Optional

import numpy as np
import torch
import tyro

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import LEGO  # noqa: E402
from timed_training import Budget, fill_cache, save_run, setup_pipeline, test_views, train_timed  # noqa: E402

import mobiler2l_ns  # noqa: E402,F401  (safe globals for nerfstudio checkpoints)
from mobiler2l_ns.utils.io import write_text_atomic  # noqa: E402

TARGET_DB = 25.0


@dataclass(frozen=True)
class Scale:
    """Limits and sizes of one scale (seconds are training time unless named ``limit``)."""

    build_limit_s: float
    teacher_s: float
    teacher_marks: int
    pseudo_views: int
    pseudo_limit_s: float
    student_s: float
    eval_views: int
    speed_size: int
    speed_repeats: int
    stage_limit_s: float


SCALES = {
    "full": Scale(240.0, 90.0, 18, 300, 45.0, 60.0, 10, 800, 10, 150.0),
    "tiny": Scale(5.0, 4.0, 4, 6, 30.0, 3.0, 2, 32, 2, 120.0),
}
STUDENTS = ("paper", "paper-volume", "small")
"""``paper``: mobiler2l (positional encoding); ``paper-volume``: the paper network on the learned
volume embedder; ``small``: the CPU student (mobiler2l-small)."""


@dataclass
class Args:
    out: Path
    """Folder of device-report.json / .md (created)."""
    data: Path = LEGO
    """Blender scene (lego-400; on the GPU machine the carried copy, see scripts/device-data.sh)."""
    scale: Literal["full", "tiny"] = "full"
    """full: the <= 8 minute GPU run; tiny: the CPU rehearsal."""
    device: Optional[str] = None
    """cuda when available, else cpu."""


class StageTimeout(Exception):
    pass


@contextlib.contextmanager
def hard_limit(seconds: float):
    """Raise StageTimeout in the main thread after ``seconds`` (SIGALRM)."""

    def expire(_signum, _frame):
        raise StageTimeout(f"stopped at its {seconds:.0f} s limit")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


class Report:
    """Stage results, rewritten (atomically) as JSON and Markdown after every stage."""

    def __init__(self, out: Path, args: Args):
        self.out = out
        self.data: Dict[str, Any] = {"args": {k: str(v) for k, v in asdict(args).items()}, "stages": {}}
        out.mkdir(parents=True, exist_ok=True)

    def stage(self, name: str, limit_s: float, fn: Callable[[], Dict[str, Any]]) -> Dict[str, Any]:
        start = time.perf_counter()
        print(f"== {name} (limit {limit_s:.0f} s)", flush=True)
        try:
            with hard_limit(limit_s):
                result = {"status": "ok", **fn()}
        except StageTimeout as err:
            result = {"status": "timeout", "error": str(err)}
        except Exception as err:  # noqa: BLE001  (a failed stage is reported; the others still run)
            traceback.print_exc()
            result = {"status": "failed", "error": f"{type(err).__name__}: {err}".splitlines()[0]}
        result["wall_s"] = round(time.perf_counter() - start, 2)
        self.data["stages"][name] = result
        print(json.dumps({name: result}, default=str), flush=True)
        self.write()
        return result

    def write(self) -> None:
        for name, text in (("device-report.json", json.dumps(self.data, indent=2, default=str) + "\n"),
                           ("device-report.md", markdown(self.data))):  # fmt: skip
            write_text_atomic(self.out / name, text)


def markdown(data: Dict[str, Any]) -> str:
    """The report as Markdown tables (one row per measured figure)."""
    lines = ["# Device run", ""]
    for stage, result in data["stages"].items():
        lines += [
            f"## {stage} ({result.get('status')}, {result.get('wall_s')} s)",
            "",
            "| what | value |",
            "| --- | --- |",
        ]
        for key, value in result.items():
            if key not in ("status", "wall_s"):
                lines.append(
                    f"| {key} | {json.dumps(value, default=str) if isinstance(value, (dict, list)) else value} |"
                )
        lines.append("")
    return "\n".join(lines)


# --------------------------------------------------------------------------- stages


def start_nerfacc_build(device: str) -> Optional[subprocess.Popen]:
    """Build nerfacc's CUDA kernels (its JIT extension) in a background process; None without CUDA."""
    if device != "cuda":
        return None
    env = {**os.environ, "MAX_JOBS": str(os.cpu_count() or 8)}
    code = "from nerfacc.cuda._backend import _C; assert _C is not None"
    return subprocess.Popen([sys.executable, "-c", code], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def env_stage(device: str) -> Dict[str, Any]:
    info: Dict[str, Any] = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "device": device,
        "gpu": torch.cuda.get_device_name(0) if device == "cuda" else "none (CPU rehearsal)",
    }
    try:
        import tinycudann  # noqa: F401

        info["tcnn"] = "installed"
    except ImportError:
        info["tcnn"] = "not installed: torch hash grid"
    return info


def nerfacc_ready(build: Optional[subprocess.Popen], wait_s: float) -> Dict[str, Any]:
    """Whether the nerfacc build finished in time (waits at most ``wait_s`` more)."""
    if build is None:
        return {"nerfacc_kernels": "no CUDA: torch marcher"}
    try:
        build.wait(timeout=max(wait_s, 0.0))
    except subprocess.TimeoutExpired:
        build.kill()
        return {"nerfacc_kernels": "build not done in time: torch marcher on CUDA"}
    output = build.stdout.read().decode(errors="replace")[-300:] if build.stdout else ""
    return {"nerfacc_kernels": "built" if build.returncode == 0 else f"build failed: {output.strip()[-200:]}"}


def student_trainer(name: str, data: Path, device: str):
    """Trainer config of student ``name`` on ``data``."""
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig

    from mobiler2l_ns.methods.students import STUDENT_RECIPES, mobiler2l_config

    config = copy.deepcopy(mobiler2l_config if name == "paper" else STUDENT_RECIPES[name])
    config.pipeline.datamanager.data = data
    config.pipeline.datamanager.dataparser = BlenderDataParserConfig(data=data, alpha_color="white")
    config.pipeline.model.report_cost = False
    config.machine.device_type = device
    return config


def render_cameras(size: int, count: int = 1):
    """``count`` lego-like cameras of ``size`` x ``size`` around the origin (radius 4, z up)."""
    from nerfstudio.cameras.cameras import Cameras

    from mobiler2l_ns.geometry import look_at

    c2w = []
    for i in range(count):
        angle = 0.4 + 2 * math.pi * i / max(count, 1)
        eye = np.array([3.6 * math.cos(angle), 3.6 * math.sin(angle), 1.75])
        c2w.append(torch.from_numpy(look_at(eye, np.zeros(3), np.array([0.0, 0.0, 1.0]))).float())
    focal = 0.5 * size / math.tan(0.5 * 0.6911112)
    return Cameras(camera_to_worlds=torch.stack(c2w), fx=focal, fy=focal, cx=size / 2, cy=size / 2,
                   width=size, height=size)  # fmt: skip


def timed_median(fn: Callable[[], Any], repeats: int, device: str) -> float:
    fn()
    times = []
    for _ in range(repeats):
        if device == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        fn()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def student_speed_stage(args: Args, scale: Scale, device: str) -> Dict[str, Any]:
    from nerfstudio.data.scene_box import SceneBox

    from mobiler2l_ns.student.embedders import embedder_flops
    from mobiler2l_ns.student.network import count_parameters, frame_flops

    box = SceneBox(aabb=torch.tensor([[-1.5] * 3, [1.5] * 3]))
    camera = render_cameras(scale.speed_size).to(device)
    result: Dict[str, Any] = {"size": scale.speed_size}
    for name in STUDENTS:
        config = student_trainer(name, args.data, device)
        model = config.pipeline.model.setup(scene_box=box, num_train_data=1).to(device)
        s = model.config.sr_factor
        h = w = -(-scale.speed_size // s)
        entry: Dict[str, Any] = {
            "parameters": count_parameters(model.network) + sum(p.numel() for p in model.embedder.parameters()),
            "gflops": (frame_flops(model.network, h, w) + embedder_flops(model.embedder, h, w)) / 1e9,
        }
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        target = torch.rand(scale.speed_size, scale.speed_size, 3, device=device)
        autocast = torch.autocast(device_type=device, dtype=torch.bfloat16, enabled=device == "cuda")

        def step():
            model.train()
            with autocast:
                loss = torch.nn.functional.mse_loss(model.get_outputs(camera)["rgb"].float(), target)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

        entry["train_step_ms_bf16" if device == "cuda" else "train_step_ms"] = 1e3 * timed_median(
            step, scale.speed_repeats, device
        )
        model.eval()
        with torch.no_grad():
            entry["render_ms"] = 1e3 * timed_median(lambda: model.get_outputs(camera), scale.speed_repeats, device)
            if device == "cuda":
                entry["render_ms_cuda_graph"] = 1e3 * cuda_graph_render_s(model, camera, scale.speed_repeats)
        entry["render_fps"] = 1e3 / entry["render_ms"]
        result[name] = entry
        model = optimizer = None  # free before the next student
    return result


def cuda_graph_render_s(model, camera, repeats: int) -> float:
    """Median seconds of a CUDA-graph replay of embedder + network on one camera's fixed points."""
    captured = []
    hook = model.embedder.register_forward_hook(lambda _m, a, _o: captured.append(a[0]))
    model.get_outputs(camera)
    hook.remove()
    static_points = captured[-1].clone()
    stream = torch.cuda.Stream()
    stream.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(stream):
        for _ in range(3):
            model.network(model.embedder(static_points))
    torch.cuda.current_stream().wait_stream(stream)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        model.network(model.embedder(static_points))
    return timed_median(graph.replay, repeats, "cuda")


def renderer(pipeline) -> Callable:
    """``camera -> [H, W, 3]`` of a pipeline's model (eval path: ``get_outputs_for_camera``)."""
    return lambda camera: pipeline.model.get_outputs_for_camera(camera.to(pipeline.model.device))["rgb"]


def psnr_of(render: Callable, views) -> float:
    """Mean PSNR of ``render(camera)`` against the views' ground truth."""
    return float(np.mean([psnr(render(c).float().clamp(0, 1).cpu(), gt) for c, gt in views]))


def psnr(image, reference) -> float:
    """:func:`mobiler2l_ns.utils.metrics.psnr`, 300 for an exact match (the report is JSON: no inf)."""
    from mobiler2l_ns.utils.metrics import psnr as image_psnr

    return min(image_psnr(image, reference), 300.0)


def teacher_stage(
    args: Args, scale: Scale, device: str, workdir: Path, views, kernels: Dict[str, Any]
) -> Dict[str, Any]:
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig

    from mobiler2l_ns.methods.teachers import teacher_method

    config = copy.deepcopy(teacher_method.config)
    config.pipeline.datamanager.data = args.data
    config.pipeline.datamanager.dataparser = BlenderDataParserConfig(data=args.data)
    config.pipeline.datamanager.capture_check = False
    config.machine.device_type = device
    config.output_dir, config.experiment_name, config.timestamp = workdir / "outputs", "device", "teacher"
    if kernels.get("nerfacc_kernels") != "built":
        config.pipeline.model.marcher = "torch"
    if args.scale == "tiny":
        config.pipeline.datamanager.train_num_rays_per_batch = 512
        config.pipeline.model.grid_resolution = 32
        config.pipeline.model.log2_hashmap_size = 14
    marks = [(i + 1) / scale.teacher_marks for i in range(scale.teacher_marks)]
    run = train_timed(
        config, Budget(scale.teacher_s, None, marks), evaluate=lambda p: {"psnr": psnr_of(renderer(p), views[:3])}
    )
    reached = next((m.seconds for m in run.marks if m.scores["psnr"] >= TARGET_DB), None)
    path = save_run(run)
    model = run.pipeline.model
    used_nerfacc = model.use_nerfacc(torch.device(device))
    return {
        "config": str(path),
        "steps": run.steps,
        "steps_per_s": run.steps_per_s,
        "seconds_to_25db": reached,
        "psnr_after_budget": psnr_of(renderer(run.pipeline), views),
        "curve": [(round(m.seconds, 1), round(m.scores["psnr"], 2)) for m in run.marks],
        "marcher": "nerfacc" if used_nerfacc else "torch",
        "hash_grid": "tcnn" if (model.field.hash_grid._tcnn and device == "cuda") else "torch",
        "precision": "float32",
    }


def pseudo_stage(scale: Scale, device: str, teacher_config: Path, student_config) -> Dict[str, Any]:
    from mobiler2l_ns.distill.teacher import TeacherRun

    teacher = TeacherRun.from_config(teacher_config).load(device)
    result: Dict[str, Any] = {}
    for size in (400, 800) if scale.speed_size >= 400 else (scale.speed_size,):
        cameras = render_cameras(size, 8)
        teacher.render(cameras[0:1])  # warm-up
        start, count = time.perf_counter(), 0
        while count < 8 and time.perf_counter() - start < scale.pseudo_limit_s / 4:
            teacher.render(cameras[count : count + 1])
            count += 1
        if device == "cuda":
            torch.cuda.synchronize()
        result[f"views_per_s_{size}"] = count / (time.perf_counter() - start)
    del teacher
    start = time.perf_counter()
    fill_cache(student_config)
    result["cache_views"] = scale.pseudo_views
    result["cache_fill_s"] = time.perf_counter() - start
    return result


def with_pseudo(config, teacher_config: Path, cache: Path, count: int):
    """``config`` on the shared cache of whole pseudo views (every student's pose settings agree: no
    patches; students with crops crop them)."""
    dm = config.pipeline.datamanager
    dm.teacher_config, dm.pseudo_cache, dm.pseudo_count, dm.real_share = teacher_config, cache, count, 0.3
    dm.pseudo_progress, dm.pseudo_patch_size, dm.pseudo_stream = False, None, False
    return config


def students_stage(args: Args, scale: Scale, device: str, workdir: Path, teacher_config: Path, views) -> Dict[str, Any]:
    result: Dict[str, Any] = {"budget_s": scale.student_s}
    for name in STUDENTS:
        config = with_pseudo(
            student_trainer(name, args.data, device), teacher_config, workdir / "pseudo", scale.pseudo_views
        )
        config.output_dir, config.experiment_name, config.timestamp = workdir / "outputs", "device", name
        dtype = torch.bfloat16 if device == "cuda" and name.startswith("paper") else None
        torch.manual_seed(0)
        pipeline = setup_pipeline(config, device)
        pipeline.datamanager.start_pseudo()
        budget = Budget(scale.student_s, None, (0.25, 0.5, 1.0), frozen_share=0.05, finetune_share=0.05)
        run = train_timed(config, budget, evaluate=lambda p: {"psnr": psnr_of(renderer(p), views)},
                          autocast_dtype=dtype, pipeline=pipeline)  # fmt: skip
        pipeline.datamanager.close()
        result[name] = {
            "config": str(save_run(run)),
            "precision": "bf16 autocast" if dtype is not None else "float32",
            "steps": run.steps,
            "steps_per_s": run.steps_per_s,
            "psnr_25_50_100": [round(m.scores["psnr"], 2) for m in run.marks],
        }
    return result


def export_stage(device: str, workdir: Path, student_config: str) -> Dict[str, Any]:
    from mobiler2l_ns.utils.runs import load_pipeline
    from mobiler2l_ns.export import OnnxLightField, export_mobiler2l_onnx
    from mobiler2l_ns.export.verify import render_torch
    from mobiler2l_ns.export.graphs import ExportCamera

    result = export_mobiler2l_onnx(Path(student_config), workdir / "export", verbose=False)
    field = OnnxLightField(workdir / "export")
    pipeline, _, _ = load_pipeline(Path(student_config), device)
    meta = field.metadata
    k = meta["intrinsics"]
    camera = ExportCamera(meta["height"], meta["width"], k["fx"], k["fy"], k["cx"], k["cy"])
    scores = []
    for pose in field.orbit(4):
        ort_image = field.render(pose)
        torch_image = render_torch(pipeline.model, camera, pose)
        scores.append(psnr(ort_image, torch_image))
    return {
        "files": [p.name for p in result.files],
        "onnx_bytes": sum(
            (workdir / "export" / f).stat().st_size for f in ("sampler.onnx", "embedder.onnx", "model.onnx")
        ),
        "onnxruntime_cpu_vs_torch_db_min": min(scores),
        "torch_device": device,
    }


def main(args: Args) -> int:
    scale = SCALES[args.scale]
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    report = Report(args.out, args)
    workdir = args.out / "work"
    started = time.perf_counter()
    build = start_nerfacc_build(device)
    env = report.stage("env", 30, lambda: env_stage(device))
    report.stage("student-speed", scale.stage_limit_s, lambda: student_speed_stage(args, scale, device))
    views = test_views(args.data, scale.eval_views)
    waited = scale.build_limit_s - (time.perf_counter() - started)
    kernels = nerfacc_ready(build, waited)
    env.update(kernels)
    teacher = report.stage("teacher", scale.teacher_s + scale.stage_limit_s,
                           lambda: {**kernels, **teacher_stage(args, scale, device, workdir, views, kernels)})  # fmt: skip
    if teacher["status"] == "ok":
        teacher_config = Path(teacher["config"])
        first = with_pseudo(
            student_trainer("small", args.data, device), teacher_config, workdir / "pseudo", scale.pseudo_views
        )
        report.stage(
            "pseudo",
            scale.pseudo_limit_s + scale.stage_limit_s,
            lambda: pseudo_stage(scale, device, teacher_config, first),
        )
        students = report.stage("students", len(STUDENTS) * (scale.student_s + scale.stage_limit_s),
                                lambda: students_stage(args, scale, device, workdir, teacher_config, views))  # fmt: skip
        if students["status"] == "ok":
            report.stage(
                "export", scale.stage_limit_s, lambda: export_stage(device, workdir, students["small"]["config"])
            )
    report.data["total_s"] = round(time.perf_counter() - started, 1)
    report.write()
    print(f"device run: {report.data['total_s']} s; report in {args.out}")
    return 0 if all(s.get("status") == "ok" for s in report.data["stages"].values()) else 1


if __name__ == "__main__":
    raise SystemExit(main(tyro.cli(Args)))
