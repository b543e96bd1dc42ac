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

import copy
import math
import statistics
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import numpy as np
import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.engine.optimizers import Optimizers
from nerfstudio.engine.trainer import TrainerConfig

from mobiler2l_ns.geometry import look_at
from mobiler2l_ns.methods.students import mobiler2l_config, mobiler2l_small_config
from mobiler2l_ns.student.model import MobileR2LModel
from mobiler2l_ns.student.network import count_parameters
from mobiler2l_ns.utils.cli import run_cli
from mobiler2l_ns.utils.runs import load_pipeline

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
    eye = np.array([math.cos(0.5), math.sin(0.5) * 0.9, 0.45])
    eye = eye / np.linalg.norm(eye) * radius
    c2w = torch.from_numpy(look_at(eye, np.zeros(3), np.array([0.0, 0.0, 1.0]))).float()
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


@dataclass
class StudentSpeed:
    """Speed of the MobileR2L student on one view, optionally against a trained teacher."""

    size: int = 400
    """View width = height in pixels."""
    repeats: int = 5
    """Timed runs (median reported)."""
    warmup: int = 2
    """Untimed runs first."""
    device: str = "cpu"
    """Torch device."""
    threads: Optional[int] = None
    """Torch intra-op threads (default: torch's)."""
    teacher_config: Optional[Path] = None
    """RUN/config.yml of a trained teacher."""

    def main(self) -> None:
        """Print the timings (see the module docstring)."""
        if self.threads is not None:
            torch.set_num_threads(self.threads)
        device = torch.device(self.device)
        size = self.size

        teacher_pipeline = None
        camera = blender_camera(size)
        if self.teacher_config is not None:
            teacher_pipeline, checkpoint, step = load_pipeline(self.teacher_config, device, label="--teacher-config")
            camera = teacher_camera(teacher_pipeline, size) or camera
            print(f"teacher: {checkpoint} (step {step})")

        print(
            f"device: {device}, torch threads: {torch.get_num_threads()}, view: {size}x{size}, median of {self.repeats}"
        )
        student = build_student(mobiler2l_config, device).eval()
        print(student.cost_summary(size, size))
        with torch.no_grad():
            render_s = median_seconds(lambda: student.get_outputs_for_camera(camera), self.repeats, self.warmup, device)
        print(
            f"student render (paper preset, eager, eval, no grad): {render_s * 1e3:9.1f} ms  ({1.0 / render_s:6.2f} fps)"
        )

        for name, config in (("paper", mobiler2l_config), ("small", mobiler2l_small_config)):
            n_params = count_parameters(build_student(config, torch.device("cpu")).network)
            step_s = train_step_seconds(config, camera, self.repeats, self.warmup, device)
            label = f"student train step ({name} preset, {n_params:,} params, whole {size}x{size} image)"
            print(f"{label}: {step_s * 1e3:9.1f} ms")

        if teacher_pipeline is not None:
            teacher = teacher_pipeline.model.eval()
            with torch.no_grad():
                teacher_s = median_seconds(
                    lambda: teacher.get_outputs_for_camera(camera.to(device)), self.repeats, self.warmup, device
                )
            print(f"teacher render (get_outputs_for_camera): {teacher_s * 1e3:9.1f} ms  ({1.0 / teacher_s:6.2f} fps)")
            print(f"teacher / student render time: {teacher_s / render_s:.1f}x")


if __name__ == "__main__":
    raise SystemExit(run_cli(StudentSpeed, prog="student_speed.py", description=__doc__))
