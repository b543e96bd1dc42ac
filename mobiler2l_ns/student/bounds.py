"""Where the student's samples may lie, decided once when the model is built.

From a :class:`~mobiler2l_ns.student.model.MobileR2LModelConfig`, the dataset metadata a
datamanager hands the model (the keys of :mod:`.sampler`: :data:`~.sampler.SAMPLE_BOX_KEY`,
:data:`~.sampler.OCCUPANCY_KEY`, :data:`~.sampler.DATA_NEAR_FAR_KEY`) and the scene box: the
sampling box, the teacher's occupancy grid and the near / far shared by all cameras. The model
saves the results as buffers, so a loaded checkpoint keeps what it trained with.
"""

from __future__ import annotations

from typing import Any, Mapping, Optional, Tuple

import torch
from jaxtyping import Float
from torch import Tensor

from mobiler2l_ns.student.sampler import DATA_NEAR_FAR_KEY, OCCUPANCY_KEY, SAMPLE_BOX_KEY
from mobiler2l_ns.utils.log import log_once

Metadata = Optional[Mapping[str, Any]]


def check_sampling_config(cfg: Any) -> None:
    """ValueError for near / far and sampling settings that cannot work together."""
    if (cfg.near is None) != (cfg.far is None):
        raise ValueError(f"set both near and far, or neither (got near={cfg.near}, far={cfg.far})")
    if cfg.near is not None and cfg.far is not None and not 0.0 < cfg.near < cfg.far:
        raise ValueError(f"need 0 < near < far, got near={cfg.near}, far={cfg.far}")
    if cfg.near_far_from_data and cfg.near is not None:
        raise ValueError("near_far_from_data derives near and far: leave near and far unset (None)")
    if cfg.ray_box and cfg.use_ndc:
        raise ValueError(
            "--pipeline.model.ray-box True samples a world-space box and does not combine with "
            "--pipeline.model.use-ndc True: add --pipeline.model.ray-box False --pipeline.model.occupancy-sampling False"
        )


def sampling_box(cfg: Any, metadata: Metadata, scene_aabb: Float[Tensor, "2 3"]) -> Float[Tensor, "2 3"]:
    """The box of ``ray_box`` sampling and of the learned grids: ``cfg.sample_box``, else the
    :data:`SAMPLE_BOX_KEY` metadata (the teacher's occupied box), else the scene box."""
    if cfg.sample_box is not None:
        box = torch.tensor(cfg.sample_box, dtype=torch.float32).reshape(2, 3)
        if not bool((box[1] > box[0]).all()):
            raise ValueError(f"sample_box must be (min x, y, z, max x, y, z) with max > min, got {cfg.sample_box}")
        return box
    entry = (metadata or {}).get(SAMPLE_BOX_KEY)
    if entry is not None:
        box, source = entry
        log_once(f"MobileR2L: sampling box {[round(v, 3) for v in box]} ({source})")
        return torch.tensor(box, dtype=torch.float32).reshape(2, 3)
    return scene_aabb.detach().float().clone().reshape(2, 3)


def occupancy_grid(
    cfg: Any, metadata: Metadata, box: Float[Tensor, "2 3"]
) -> Tuple[Float[Tensor, "G G G"], Float[Tensor, "2 3"]]:
    """The teacher's occupancy grid and its box from the :data:`OCCUPANCY_KEY` metadata when
    ``cfg.occupancy_sampling``; else a 1-cell placeholder over ``box`` (a checkpoint may fill it)."""
    entry = (metadata or {}).get(OCCUPANCY_KEY) if cfg.occupancy_sampling else None
    if entry is None:
        return torch.zeros(1, 1, 1), box.clone()
    grid, grid_box, source = entry
    log_once(f"MobileR2L: sampling around the occupied cells of a {tuple(grid.shape)} grid ({source})")
    return grid.float().clone(), torch.as_tensor(grid_box, dtype=torch.float32).reshape(2, 3).clone()


def metadata_near_far(metadata: Metadata, min_near: float) -> Float[Tensor, "2"]:
    """``[near, far]`` from the :data:`DATA_NEAR_FAR_KEY` metadata (near at least ``min_near``, far at
    least ``min_near`` beyond it); NaN when absent (a checkpoint then supplies it; until then: scene box)."""
    entry = (metadata or {}).get(DATA_NEAR_FAR_KEY)
    if entry is None:
        log_once("MobileR2L: near / far not derived (no student datamanager): scene box until a checkpoint loads")
        return torch.full((2,), float("nan"))
    near, far, source = entry
    near = max(float(near), min_near)
    far = max(float(far), near + min_near)
    log_once(f"MobileR2L: near {near:.4g} / far {far:.4g} from the data ({source})")
    return torch.tensor([near, far], dtype=torch.float32)


def fixed_near_far(cfg: Any, data_near_far: Optional[Float[Tensor, "2"]]) -> Optional[Tuple[float, float]]:
    """The near / far shared by all cameras: the config's, or ``data_near_far`` (finite values of a
    ``near_far_from_data`` model), else None (per-camera scene-box bounds)."""
    if cfg.near is not None and cfg.far is not None:
        return cfg.near, cfg.far
    if (
        getattr(cfg, "near_far_from_data", False)
        and data_near_far is not None
        and bool(torch.isfinite(data_near_far).all())
    ):
        return float(data_near_far[0]), float(data_near_far[1])
    return None
