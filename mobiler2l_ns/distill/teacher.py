"""The frozen teacher: a trained nerfstudio run (:mod:`mobiler2l_ns.utils.runs` loads it from any folder).

The teacher's identity (:attr:`TeacherRun.teacher_id`) is the SHA-256 of the checkpoint file that
``eval_setup`` loads, computed without loading it; pseudo-view caches record it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import Pipeline
from torch import Tensor

from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.utils.runs import file_sha256, load_pipeline, pick_checkpoint, read_run_config

LABEL = "teacher config"


def is_student_run(config: TrainerConfig) -> bool:
    """Whether a run config trains a MobileR2L student (a light field: it cannot teach another student)."""
    model = getattr(config.pipeline, "model", None)
    return type(model).__module__.startswith("mobiler2l_ns.student")


@dataclass
class TeacherRun:
    """A trained teacher run, identified by its checkpoint; :meth:`load` builds the pipeline."""

    config_path: Path
    checkpoint: Path
    step: int
    teacher_id: str

    @classmethod
    def from_config(cls, config_path: Union[str, Path]) -> "TeacherRun":
        """Locate the run's checkpoint and hash it (cheap: the model is not built)."""
        path = Path(config_path).expanduser().resolve()
        config = read_run_config(path, LABEL)
        if is_student_run(config):
            raise InputError(
                f"teacher config {config_path}: a MobileR2L student run ({config.method_name}), not a teacher; "
                "pass the config.yml of a teacher run (ns-train mobiler2l-teacher, or another NeRF)"
            )
        checkpoint, step = pick_checkpoint(path, config, LABEL)
        return cls(path, checkpoint, step, file_sha256(checkpoint)[:16])

    def describe(self) -> dict:
        """Informational record for cache manifests."""
        return {"config": str(self.config_path), "checkpoint": self.checkpoint.name, "step": self.step}

    def load(self, device: Union[str, torch.device]) -> "Teacher":
        """The frozen teacher pipeline on ``device`` (works from any working directory)."""
        pipeline, _, _ = load_pipeline(self.config_path, device, expect_checkpoint=self.checkpoint, label=LABEL)
        return Teacher(self, pipeline)


def occupancy_tensors(checkpoint: Path) -> Tuple[Optional[Tensor], Optional[Tensor]]:
    """``(binaries [L, G, G, G] bool, aabbs [L, 6])`` of a checkpoint's nerfacc occupancy grid (None, None
    without one); read from the checkpoint file alone (no pipeline is built)."""
    state = torch.load(checkpoint, map_location="cpu", weights_only=False).get("pipeline", {})
    return state.get("_model.occupancy_grid.binaries"), state.get("_model.occupancy_grid.aabbs")


def occupied_box(checkpoint: Path, quantile: float = 0.005, margin: float = 0.05) -> Optional[Tuple[List[float], str]]:
    """``([min x, y, z, max x, y, z], source)``: the region the teacher's occupancy grid marks occupied.

    Read from the checkpoint alone (:func:`occupancy_tensors`). Robust to floaters: the ``quantile`` /
    ``1 - quantile`` quantiles of the occupied cell centres of the grid's finest level, grown by one
    cell and ``margin`` of the size per side, clipped to that level's box. None for a grid that is not
    a bounded single-level one (unbounded captures keep the scene box) or has no occupied cell.
    """
    binaries, aabbs = occupancy_tensors(checkpoint)
    if binaries is None or aabbs is None or binaries.shape[0] != 1:
        return None
    cells = binaries[0].nonzero().float()
    if cells.shape[0] < 8:
        return None
    resolution = torch.tensor(binaries.shape[1:], dtype=torch.float32)
    low, high = aabbs[0, :3].float(), aabbs[0, 3:].float()
    size = (high - low) / resolution
    centres = low + (cells + 0.5) * size
    lo = torch.quantile(centres, quantile, dim=0) - size
    hi = torch.quantile(centres, 1.0 - quantile, dim=0) + size
    grow = margin * (hi - lo)
    lo, hi = torch.maximum(lo - grow, low), torch.minimum(hi + grow, high)
    source = f"teacher occupancy grid, {cells.shape[0]} occupied cells, {quantile:.1%} quantiles, {checkpoint.name}"
    return lo.tolist() + hi.tolist(), source


def occupancy_grid(checkpoint: Path, dilation: int = 1) -> Optional[Tuple[Tensor, List[float], str]]:
    """``(occupied [G, G, G] as 0 / 1 floats, its box [6], source)`` of a bounded teacher's occupancy grid,
    grown by ``dilation`` cells (a student sampling around it keeps a margin); None for others."""
    binaries, aabbs = occupancy_tensors(checkpoint)
    if binaries is None or aabbs is None or binaries.shape[0] != 1 or not bool(binaries.any()):
        return None
    grid = binaries[0].float()[None, None]
    if dilation > 0:
        grid = torch.nn.functional.max_pool3d(grid, 2 * dilation + 1, stride=1, padding=dilation)
    source = f"teacher occupancy grid {tuple(binaries.shape[1:])}, {float(grid.mean()):.1%} occupied, {checkpoint.name}"
    return grid[0, 0], aabbs[0].float().tolist(), source


class Teacher:
    """A loaded, frozen teacher that renders cameras (nerfstudio ``get_outputs_for_camera``)."""

    def __init__(self, run: TeacherRun, pipeline: Pipeline) -> None:
        self.run = run
        self.pipeline = pipeline

    @property
    def model(self):
        return self.pipeline.model

    @property
    def device(self) -> torch.device:
        return self.pipeline.model.device

    @property
    def train_cameras(self) -> Cameras:
        """The teacher's training cameras (its dataparser's frame)."""
        return self.pipeline.datamanager.train_dataset.cameras

    @torch.inference_mode()
    def render(self, camera: Cameras) -> torch.Tensor:
        """``[H, W, 3]`` colours of one camera, equal to ``model.get_outputs_for_camera(camera)["rgb"]``."""
        if self.pipeline.training:  # nerfstudio's trainer never reaches the teacher, but be sure
            self.pipeline.eval()
        camera = camera.to(self.device)
        if hasattr(self.model, "render_rgb"):  # our teacher: colours only, one field pass per sample
            return self.model.render_rgb(camera)
        return self.model.get_outputs_for_camera(camera)["rgb"]
