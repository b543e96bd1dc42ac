"""A trained MobileR2L student run, loaded for export: model, training cameras, dataparser transform.

Loading goes through :func:`mobiler2l_ns.utils.runs.load_pipeline` (the run's own checkpoint
folder beside its ``config.yml``, its dataset found from any working directory, CPU, no images
read); this module adds the exporter's own checks: the run must be a MobileR2L student, its
cameras pinhole, its ``dataparser_transforms.json`` (when present) a 3x4 transform and a scale.
Errors name the run with the ``--load-config`` flag.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

import numpy as np
from nerfstudio.engine.trainer import TrainerConfig

from mobiler2l_ns.export.graphs import ExportCamera
from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.utils.runs import load_pipeline, read_run_config, resolve_config_path

LABEL = "--load-config"
DATAPARSER_TRANSFORMS = "dataparser_transforms.json"


@dataclass
class StudentRun:
    """A loaded student run: model (eval, CPU), training camera and poses, dataparser transform."""

    model: Any  # MobileR2LModel
    camera: ExportCamera  # the first training camera's intrinsics and size
    train_poses: np.ndarray  # [N, 3, 4] float64 normalised-world c2w of the training cameras
    dataparser_transform: np.ndarray  # [3, 4] float64
    dataparser_scale: float
    source: Dict[str, Any] = field(default_factory=dict)  # where it came from (metadata.json "source")


def read_student_config(load_config: Path) -> Tuple[Path, TrainerConfig]:
    """``(config.yml path, TrainerConfig)`` of a MobileR2L student run; one-line InputError for anything else.

    ``load_config``: the run's ``config.yml`` or its folder. Cheap (reads the YAML only).
    """
    from mobiler2l_ns.student.model import MobileR2LModelConfig

    path = resolve_config_path(load_config, LABEL)
    config = read_run_config(path, LABEL)
    model_config = getattr(config.pipeline, "model", None)
    if not isinstance(model_config, MobileR2LModelConfig):
        raise InputError(
            f"{path} is a '{config.method_name}' run ({type(model_config).__name__}), not a MobileR2L student: "
            "mobiler2l-onnx exports runs of ns-train mobiler2l / mobiler2l-small"
        )
    return path, config


def load_student_run(load_config: Path) -> StudentRun:
    """Load a student run on the CPU (no images are read) with its training cameras."""
    from nerfstudio.cameras.cameras import CameraType

    from mobiler2l_ns.student.model import MobileR2LModel

    path, config = read_student_config(load_config)
    pipeline, checkpoint, step = load_pipeline(path, "cpu", test_mode="inference", label=LABEL)
    model = pipeline.model.eval()
    if not isinstance(model, MobileR2LModel):
        raise InputError(f"{path}: its model is a {type(model).__name__}, not a MobileR2L student")
    outputs = pipeline.datamanager.train_dataparser_outputs
    cameras = outputs.cameras
    if bool((cameras.camera_type.reshape(-1) != CameraType.PERSPECTIVE.value).any()):
        raise InputError(f"{path}: MobileR2L exports pinhole (perspective) cameras only")
    camera = ExportCamera(
        height=int(cameras.height.reshape(-1)[0]),
        width=int(cameras.width.reshape(-1)[0]),
        fx=float(cameras.fx.reshape(-1)[0]),
        fy=float(cameras.fy.reshape(-1)[0]),
        cx=float(cameras.cx.reshape(-1)[0]),
        cy=float(cameras.cy.reshape(-1)[0]),
    )
    transform, scale, transform_source = read_dataparser_transform(path.parent, outputs)
    return StudentRun(
        model=model,
        camera=camera,
        train_poses=cameras.camera_to_worlds.reshape(-1, 3, 4).double().numpy(),
        dataparser_transform=transform,
        dataparser_scale=scale,
        source={
            "config": str(path),
            "checkpoint": str(checkpoint),
            "step": int(step),
            "method_name": config.method_name,
            "dataparser_transform": transform_source,
        },
    )


def in_memory_run(
    model: Any,
    camera: ExportCamera,
    train_poses: np.ndarray,
    dataparser_transform: Optional[np.ndarray] = None,
    dataparser_scale: float = 1.0,
) -> StudentRun:
    """A :class:`StudentRun` of a model that has no run folder (``train_poses`` ``[N, 3, 4]``; identity transform)."""
    poses = np.asarray(train_poses, dtype=np.float64).reshape(-1, 3, 4)
    transform = np.eye(4)[:3] if dataparser_transform is None else np.asarray(dataparser_transform, np.float64)
    return StudentRun(model.eval(), camera, poses, transform[:3, :4], float(dataparser_scale), {"model": "in-memory"})


def read_dataparser_transform(run_dir: Path, outputs: Any) -> Tuple[np.ndarray, float, str]:
    """``(transform [3, 4], scale, where from)``: the run's ``dataparser_transforms.json``, else the dataparser's."""
    path = run_dir / DATAPARSER_TRANSFORMS
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            transform = np.asarray(data["transform"], dtype=np.float64)
            scale = float(data["scale"])
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(f"{path}: not a dataparser transform ({err})") from None
        if transform.shape != (3, 4) or not math.isfinite(scale) or scale <= 0:
            raise InputError(f"{path}: expected a 3x4 'transform' and a positive 'scale'")
        return transform, scale, str(path.resolve())
    transform = outputs.dataparser_transform.double().numpy()
    return transform, float(outputs.dataparser_scale), "dataparser (no dataparser_transforms.json in the run)"
