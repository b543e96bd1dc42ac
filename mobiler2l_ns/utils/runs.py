"""Loading a trained nerfstudio run from any working directory: one loader on ``eval_setup``.

nerfstudio's :func:`~nerfstudio.utils.eval_utils.eval_setup` resolves a run's relative paths
(``output_dir``, which gives the checkpoint folder, and the dataset ``data``) against the current
working directory. :func:`load_pipeline` points the checkpoint folder at the run's own folder and
looks for a relative dataset path where the run was launched from (the folder that holds
``output_dir``), then in the working directory, then beside the run's ancestors.

Errors name the run with a caller's ``label`` (``"teacher config"``, ``"--load-config"``, ...).
"""

from __future__ import annotations

import contextlib
import hashlib
from pathlib import Path
from typing import List, Literal, Optional, Tuple, Union

import torch
import yaml
from nerfstudio.engine.trainer import TrainerConfig
from nerfstudio.pipelines.base_pipeline import Pipeline

from mobiler2l_ns.utils.checkpoints import checkpoint_problem, checkpoint_steps
from mobiler2l_ns.utils.compat import register_checkpoint_safe_globals
from mobiler2l_ns.utils.errors import InputError

CONFIG_NAME = "config.yml"


def resolve_config_path(path: Union[str, Path], label: str = "run config") -> Path:
    """``RUN/config.yml`` from a config path or a run folder (absolute); InputError when missing."""
    path = Path(path).expanduser()
    if path.is_dir() and (path / CONFIG_NAME).is_file():
        path = path / CONFIG_NAME
    if not path.exists():
        raise InputError(f"{label} {path}: no such file (expected a run's {CONFIG_NAME})")
    if not path.is_file():
        raise InputError(f"{label} {path}: not a file (expected a run's {CONFIG_NAME})")
    return path.resolve()


def read_run_config(config_path: Path, label: str = "run config") -> TrainerConfig:
    """A run's saved ``config.yml`` (InputError when missing, unreadable or not a nerfstudio config)."""
    config_path = resolve_config_path(config_path, label)
    try:
        config = yaml.load(config_path.read_text(encoding="utf-8"), Loader=yaml.Loader)
    except (yaml.YAMLError, OSError, UnicodeDecodeError, AttributeError, ImportError, TypeError) as err:
        raise InputError(f"{label} {config_path}: unreadable ({err.__class__.__name__})") from None
    if not isinstance(config, TrainerConfig):
        raise InputError(f"{label} {config_path}: not a nerfstudio run config (got {type(config).__name__})")
    return config


def checkpoint_dir(config_path: Path, config: TrainerConfig) -> Path:
    """The run's checkpoint folder, next to its config.yml."""
    return Path(config_path).parent / config.relative_model_dir


def pick_checkpoint(config_path: Path, config: TrainerConfig, label: str = "run config") -> Tuple[Path, int]:
    """The checkpoint ``eval_setup`` loads, ``(path, step)``: ``load_step`` if set, else the latest step.

    InputError when there is none or it is unusable (a save killed half-way).
    """
    folder = checkpoint_dir(config_path, config)
    steps = checkpoint_steps(folder)
    if config.load_step is not None:
        step = int(config.load_step)
    elif steps:
        step = max(steps)
    else:
        raise InputError(f"{label} {config_path}: no checkpoint (step-*.ckpt) in {folder}; train the run first")
    path = folder / f"step-{step:09d}.ckpt"
    if not path.is_file():
        raise InputError(f"{label} {config_path}: checkpoint {path} not found")
    problem = checkpoint_problem(path)
    if problem is not None:  # nerfstudio would load it (the latest) and fail with a zip traceback
        raise InputError(
            f"{label} {config_path}: checkpoint {path}: unusable ({problem.split(' (')[0]}; a save killed half-way?): "
            f"rerun the training to resume from an earlier one (mobiler2l run moves it aside), or delete it"
        )
    return path, step


def file_sha256(path: Path, chunk: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            digest.update(block)
    return digest.hexdigest()


def launch_dirs(config_path: Path, config: TrainerConfig) -> List[Path]:
    """Folders a relative dataset path of the run may be relative to, most likely first."""
    run_dir = Path(config_path).parent.resolve()
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


def resolve_data(config_path: Path, config: TrainerConfig, label: str = "run config") -> Optional[Path]:
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
        f"{label} {config_path}: its training data {data} was not found "
        f"(looked in {', '.join(str(c.parent) for c in candidates[:3])}); loading the run needs its dataset's cameras"
    )


def load_pipeline(
    config_path: Union[str, Path],
    device: Union[str, torch.device],
    test_mode: Literal["test", "val", "inference"] = "inference",
    expect_checkpoint: Optional[Path] = None,
    label: str = "run config",
) -> Tuple[Pipeline, Path, int]:
    """A trained run's pipeline, frozen (eval mode, no gradients) on ``device``: ``(pipeline, checkpoint, step)``.

    ``eval_setup`` with the run's paths made absolute, so it works from any working directory and
    for any run (teacher or student). ``test_mode`` "inference" loads no images; "test" loads the
    evaluation split's images too. ``expect_checkpoint``: InputError unless that file is the one loaded.
    """
    from nerfstudio.utils.eval_utils import eval_setup  # pylint: disable=import-outside-toplevel

    register_checkpoint_safe_globals()
    config_path = resolve_config_path(config_path, label)
    saved = read_run_config(config_path, label)
    checkpoint, step = pick_checkpoint(config_path, saved, label)
    data = resolve_data(config_path, saved, label)
    model_dir = checkpoint_dir(config_path, saved).resolve()

    def absolute_paths(config: TrainerConfig) -> TrainerConfig:
        config.relative_model_dir = model_dir  # base_dir / absolute path == the absolute path
        config.load_step = step  # the checkpoint checked above (eval_setup would parse every file name)
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
        _, pipeline, loaded, step = eval_setup(config_path, test_mode=test_mode, update_config_callback=absolute_paths)
    loaded = Path(loaded).resolve()
    if expect_checkpoint is not None and loaded != Path(expect_checkpoint).resolve():
        raise InputError(f"{label} {config_path}: loaded {loaded}, expected {expect_checkpoint}")
    pipeline.eval()
    for parameter in pipeline.parameters():
        parameter.requires_grad_(False)
    return pipeline.to(target), loaded, int(step)
