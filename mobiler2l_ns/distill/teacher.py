"""The frozen teacher: a trained nerfstudio run loaded with ``eval_setup`` from any working directory.

nerfstudio's :func:`~nerfstudio.utils.eval_utils.eval_setup` resolves a run's relative paths
(``output_dir``, which gives the checkpoint folder, and the dataset ``data``) against the current
working directory. :func:`load_teacher` points the checkpoint folder at the run's own folder and
looks for a relative dataset path where the run was launched from (the folder that holds
``output_dir``), then in the working directory, then beside the run's ancestors.

The teacher's identity (:attr:`TeacherRun.teacher_id`) is the SHA-256 of the checkpoint file that
``eval_setup`` loads, computed without loading it; pseudo-view caches record it.
"""

from __future__ import annotations

import contextlib
import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import List, Literal, Optional, Tuple, Union

import torch
from torch import Tensor
import yaml
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import Pipeline

import mobiler2l_ns  # noqa: F401  (torch>=2.6: nerfstudio checkpoints load with weights_only)
from mobiler2l_ns.utils.checkpoints import checkpoint_problem, checkpoint_steps
from mobiler2l_ns.utils.errors import InputError


def read_run_config(config_path: Path) -> TrainerConfig:
    """A run's saved ``config.yml`` (InputError when missing or not a nerfstudio config)."""
    if not config_path.is_file():
        raise InputError(f"teacher config {config_path}: no such file (expected a run's config.yml)")
    try:
        config = yaml.load(config_path.read_text(encoding="utf-8"), Loader=yaml.Loader)
    except (yaml.YAMLError, OSError, UnicodeDecodeError, AttributeError, ImportError) as err:
        raise InputError(f"teacher config {config_path}: unreadable ({err.__class__.__name__})") from None
    if not isinstance(config, TrainerConfig):
        raise InputError(f"teacher config {config_path}: not a nerfstudio run config")
    return config


def is_student_run(config: TrainerConfig) -> bool:
    """Whether a run config trains a MobileR2L student (a light field: it cannot teach another student)."""
    model = getattr(config.pipeline, "model", None)
    return type(model).__module__.startswith("mobiler2l_ns.student")


def checkpoint_dir(config_path: Path, config: TrainerConfig) -> Path:
    """The run's checkpoint folder, next to its config.yml."""
    return config_path.parent / config.relative_model_dir


def pick_checkpoint(config_path: Path, config: TrainerConfig) -> Tuple[Path, int]:
    """The checkpoint ``eval_setup`` loads: ``load_step`` if set, else the latest step."""
    folder = checkpoint_dir(config_path, config)
    steps = checkpoint_steps(folder)
    if config.load_step is not None:
        step = int(config.load_step)
    elif steps:
        step = max(steps)
    else:
        raise InputError(f"teacher config {config_path}: no checkpoint in {folder}")
    path = folder / f"step-{step:09d}.ckpt"
    if not path.is_file():
        raise InputError(f"teacher config {config_path}: checkpoint {path} not found")
    problem = checkpoint_problem(path)
    if problem is not None:  # nerfstudio would load it (the latest) and fail with a zip traceback
        raise InputError(
            f"teacher checkpoint {path}: unusable ({problem.split(' (')[0]}; a save killed half-way?): "
            f"rerun the teacher's training to resume from an earlier one (mobiler2l run moves it aside), "
            "or delete it"
        )
    return path, step


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def launch_dirs(config_path: Path, config: TrainerConfig) -> List[Path]:
    """Folders a relative dataset path of the run may be relative to, most likely first."""
    run_dir = config_path.parent.resolve()
    candidates: List[Path] = []
    base = config.get_base_dir()  # output_dir/experiment/method/timestamp, as the run saw it
    if not base.is_absolute() and run_dir.parts[-len(base.parts) :] == base.parts:
        candidates.append(Path(*run_dir.parts[: len(run_dir.parts) - len(base.parts)]))
    candidates.append(Path.cwd())
    candidates += list(run_dir.parents)
    unique: List[Path] = []
    for c in candidates:
        if c not in unique:
            unique.append(c)
    return unique


def resolve_data(config_path: Path, config: TrainerConfig) -> Optional[Path]:
    """The run's dataset path made absolute (None when the run names no dataset)."""
    datamanager = config.pipeline.datamanager
    data = getattr(datamanager, "data", None)
    if data is None and getattr(datamanager, "dataparser", None) is not None:
        data = getattr(datamanager.dataparser, "data", None)
    if data is None:
        return None
    data = Path(data).expanduser()
    if data.is_absolute():
        candidates = [data]
    else:
        candidates = [root / data for root in launch_dirs(config_path, config)]
    for candidate in candidates:
        if candidate.exists():
            return candidate.resolve()
    raise InputError(
        f"teacher config {config_path}: its training data {data} was not found "
        f"(looked in {', '.join(str(c.parent) for c in candidates[:3])}); the teacher needs its dataset's cameras"
    )


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
        config = read_run_config(path)
        if is_student_run(config):
            raise InputError(
                f"teacher config {config_path}: a MobileR2L student run ({config.method_name}), not a teacher; "
                "pass the config.yml of a teacher run (ns-train mobiler2l-teacher, or another NeRF)"
            )
        checkpoint, step = pick_checkpoint(path, config)
        return cls(path, checkpoint, step, file_sha256(checkpoint)[:16])

    def describe(self) -> dict:
        """Informational record for cache manifests."""
        return {"config": str(self.config_path), "checkpoint": self.checkpoint.name, "step": self.step}

    def load(self, device: Union[str, torch.device]) -> "Teacher":
        """The frozen teacher pipeline on ``device`` (works from any working directory)."""
        return Teacher(self, load_teacher_pipeline(self.config_path, device, self.checkpoint))


def occupied_box(checkpoint: Path, quantile: float = 0.005, margin: float = 0.05) -> Optional[Tuple[List[float], str]]:
    """``([min x, y, z, max x, y, z], source)``: the region the teacher's occupancy grid marks occupied.

    Read from the checkpoint alone (no pipeline is built). Robust to floaters: the ``quantile`` /
    ``1 - quantile`` quantiles of the occupied cell centres of the grid's finest level, grown by one
    cell and ``margin`` of the size per side, clipped to that level's box. None for a grid that is not
    a bounded single-level one (unbounded captures keep the scene box) or has no occupied cell.
    """
    state = torch.load(checkpoint, map_location="cpu", weights_only=False).get("pipeline", {})
    binaries, aabbs = state.get("_model.occupancy_grid.binaries"), state.get("_model.occupancy_grid.aabbs")
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
    state = torch.load(checkpoint, map_location="cpu", weights_only=False).get("pipeline", {})
    binaries, aabbs = state.get("_model.occupancy_grid.binaries"), state.get("_model.occupancy_grid.aabbs")
    if binaries is None or aabbs is None or binaries.shape[0] != 1 or not bool(binaries.any()):
        return None
    grid = binaries[0].float()[None, None]
    if dilation > 0:
        grid = torch.nn.functional.max_pool3d(grid, 2 * dilation + 1, stride=1, padding=dilation)
    source = f"teacher occupancy grid {tuple(binaries.shape[1:])}, {float(grid.mean()):.1%} occupied, {checkpoint.name}"
    return grid[0, 0], aabbs[0].float().tolist(), source


def load_teacher_pipeline(
    config_path: Path,
    device: Union[str, torch.device],
    expect_checkpoint: Optional[Path] = None,
    test_mode: Literal["test", "val", "inference"] = "inference",
) -> Pipeline:
    """``eval_setup`` with the run's paths made absolute, then frozen: eval mode, no gradients, on
    ``device``. Works for any run (teacher or student). ``test_mode`` "inference" loads no images;
    "test" loads the evaluation split's images too."""
    from nerfstudio.utils.eval_utils import eval_setup  # pylint: disable=import-outside-toplevel

    config_path = Path(config_path).resolve()
    saved = read_run_config(config_path)
    data = resolve_data(config_path, saved)
    model_dir = checkpoint_dir(config_path, saved).resolve()

    def absolute_paths(config: TrainerConfig) -> TrainerConfig:
        config.relative_model_dir = model_dir  # base_dir / absolute path == the absolute path
        if data is not None:
            config.data = data
            config.pipeline.datamanager.data = data
            if getattr(config.pipeline.datamanager, "dataparser", None) is not None:
                config.pipeline.datamanager.dataparser.data = data
        return config

    target = torch.device(device)
    # eval_setup builds on torch.device("cuda"), the current device: make that the target (rank r: cuda:r)
    on_target = torch.cuda.device(target) if target.type == "cuda" else contextlib.nullcontext()
    with on_target:
        _, pipeline, checkpoint, _ = eval_setup(config_path, test_mode=test_mode, update_config_callback=absolute_paths)
    if expect_checkpoint is not None and Path(checkpoint).resolve() != expect_checkpoint.resolve():
        raise InputError(f"teacher config {config_path}: loaded {checkpoint}, expected {expect_checkpoint}")
    pipeline.eval()
    for parameter in pipeline.parameters():
        parameter.requires_grad_(False)
    return pipeline.to(target)


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
