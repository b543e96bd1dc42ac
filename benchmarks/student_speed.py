"""Speed of the MobileR2L student on one view (CPU by default), optionally against the teacher.

Prints, for one ``--size`` x ``--size`` view (default 400x400):

* the student's render time (paper preset, eager PyTorch, eval mode, no grad),
* the student's training step time (forward + MSE + backward + AdamW step) for the paper and the
  small preset,
* with ``--teacher-config RUN/config.yml``: the teacher's render time of the same view through
  ``pipeline.model.get_outputs_for_camera`` and the ratio teacher / student.

Each time is the median of ``--repeats`` runs after ``--warmup`` untimed runs (time.perf_counter).

Usage::

    PYTHONPATH=. python benchmarks/student_speed.py [--size 400] [--repeats 5] [--teacher-config RUN/config.yml]
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
from pathlib import Path
from typing import Callable, Optional

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.engine.optimizers import Optimizers
from nerfstudio.engine.trainer import TrainerConfig

import mobiler2l_ns  # noqa: F401  (torch>=2.6 checkpoint compatibility for the teacher)
from mobiler2l_ns.student.config import mobiler2l_config, mobiler2l_small_config
from mobiler2l_ns.student.model import MobileR2LModel
from mobiler2l_ns.student.network import count_parameters

BLENDER_BOX = SceneBox(aabb=torch.tensor([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]))


def median_seconds(fn: Callable[[], object], repeats: int, warmup: int, device: torch.device) -> float:
    """Median wall time of ``fn()`` over ``repeats`` runs after ``warmup`` runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        start = time.perf_counter()
        fn()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def blender_camera(size: int, camera_angle_x: float = 0.6911112, radius: float = 4.0) -> Cameras:
    """A NeRF-synthetic-like camera: ``size`` x ``size``, at ``radius`` looking at the origin (Z up)."""
    eye = torch.tensor([radius * math.cos(0.5), radius * math.sin(0.5) * 0.9, radius * 0.45])
    eye = eye / eye.norm() * radius
    forward = -eye / eye.norm()
    right = torch.linalg.cross(forward, torch.tensor([0.0, 0.0, 1.0]))
    right = right / right.norm()
    up = torch.linalg.cross(right, forward)
    c2w = torch.stack([right, up, -forward, eye], dim=1)
    focal = 0.5 * size / math.tan(0.5 * camera_angle_x)
    return Cameras(camera_to_worlds=c2w[None], fx=focal, fy=focal, cx=size / 2, cy=size / 2, width=size, height=size)


def build_student(config: TrainerConfig, device: torch.device) -> MobileR2LModel:
    """The preset's model (random weights: speed does not depend on them)."""
    model = copy.deepcopy(config.pipeline.model).setup(scene_box=BLENDER_BOX, num_train_data=1)
    model.config.report_cost = False
    return model.to(device)


def train_step_seconds(
    config: TrainerConfig, camera: Cameras, repeats: int, warmup: int, device: torch.device
) -> float:
    """Median time of one whole-image training step of a preset (forward, loss, backward, optimiser)."""
    model = build_student(config, device)
    model.train()
    optimizers = Optimizers(copy.deepcopy(config.optimizers), model.get_param_groups())
    height, width = int(camera.height), int(camera.width)
    target = {"image": torch.rand(height, width, 3, device=device)}
    camera = camera.to(device)
    use_amp = config.mixed_precision and device.type == "cuda"
    scaler = torch.amp.GradScaler(device.type, enabled=use_amp)

    def step() -> None:
        optimizers.zero_grad_all()
        with torch.autocast(device_type=device.type, enabled=use_amp):
            loss = model.get_loss_dict(model(camera), target)["rgb_loss"]
        scaler.scale(loss).backward()
        optimizers.optimizer_scaler_step_all(scaler)
        scaler.update()

    return median_seconds(step, repeats, warmup, device)


def teacher_camera(pipeline, size: int) -> Optional[Cameras]:
    """The teacher's first eval camera rescaled to ``size`` x ``size`` (None if not square / absent)."""
    try:
        camera = pipeline.datamanager.eval_dataset.cameras[0:1]
    except Exception:  # noqa: BLE001 - any datamanager without an eval dataset
        return None
    if int(camera.width) != int(camera.height):
        return None
    camera = copy.deepcopy(camera)
    camera.rescale_output_resolution(size / int(camera.width))
    return camera


def run_root(config_path: Path) -> Path:
    """Folder that a run's relative paths (output_dir, data) are relative to: where ns-train ran.

    ``config.yml`` lies in ``output_dir/experiment/method/timestamp``; eval_setup resolves those
    parts against the current directory, so the benchmark changes to this folder first.
    """
    import yaml

    config = yaml.load(config_path.read_text(), Loader=yaml.Loader)
    base = config.get_base_dir()
    root = config_path.resolve().parent
    if base.is_absolute():
        return Path.cwd()
    for _ in base.parts:
        root = root.parent
    return root


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--size", type=int, default=400, help="view width = height in pixels")
    parser.add_argument("--repeats", type=int, default=5, help="timed runs (median reported)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs first")
    parser.add_argument("--device", default="cpu", help="torch device (default cpu)")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    parser.add_argument("--teacher-config", type=Path, default=None, help="RUN/config.yml of a trained teacher")
    args = parser.parse_args()
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    size = args.size

    teacher_pipeline = None
    camera = blender_camera(size)
    if args.teacher_config is not None:
        import os

        from nerfstudio.utils.eval_utils import eval_setup

        config_path = args.teacher_config.resolve()
        os.chdir(run_root(config_path))
        _, teacher_pipeline, checkpoint, step = eval_setup(config_path, test_mode="inference")
        teacher_pipeline = teacher_pipeline.to(device)
        camera = teacher_camera(teacher_pipeline, size) or camera
        print(f"teacher: {checkpoint} (step {step})")

    print(f"device: {device}, torch threads: {torch.get_num_threads()}, view: {size}x{size}, median of {args.repeats}")
    student = build_student(mobiler2l_config, device).eval()
    print(student.cost_summary(size, size))
    with torch.no_grad():
        render_s = median_seconds(lambda: student.get_outputs_for_camera(camera), args.repeats, args.warmup, device)
    print(f"student render (paper preset, eager, eval, no grad): {render_s * 1e3:9.1f} ms  ({1.0 / render_s:6.2f} fps)")

    for name, config in (("paper", mobiler2l_config), ("small", mobiler2l_small_config)):
        n_params = count_parameters(build_student(config, torch.device("cpu")).network)
        step_s = train_step_seconds(config, camera, args.repeats, args.warmup, device)
        label = f"student train step ({name} preset, {n_params:,} params, whole {size}x{size} image)"
        print(f"{label}: {step_s * 1e3:9.1f} ms")

    if teacher_pipeline is not None:
        teacher = teacher_pipeline.model.eval()
        with torch.no_grad():
            teacher_s = median_seconds(
                lambda: teacher.get_outputs_for_camera(camera.to(device)), args.repeats, args.warmup, device
            )
        print(f"teacher render (get_outputs_for_camera): {teacher_s * 1e3:9.1f} ms  ({1.0 / teacher_s:6.2f} fps)")
        print(f"teacher / student render time: {teacher_s / render_s:.1f}x")


if __name__ == "__main__":
    main()
