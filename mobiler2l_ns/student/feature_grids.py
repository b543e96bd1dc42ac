"""Learned multi-resolution 2D feature grids, looked up bilinearly: the student's learned inputs.

Small typed functions shared by the learned embedders (:mod:`.planes_embedder`,
:mod:`.slab_embedder`). Every lookup is ``torch.nn.functional.grid_sample`` (bilinear,
``align_corners=True``, zero padding), which the ONNX exporter writes as one ``GridSample`` node
(opset >= 16) per level, so the exported embedder computes exactly what the model trained.

Grid layout: one ``nn.Parameter`` per level, ``[P, F, R, R]`` for ``P`` planes of ``F`` features at
resolution ``R`` (levels geometric between ``min_resolution`` and ``max_resolution``). A plane is
indexed by two coordinates ``(a, b)`` in ``[-1, 1]``: ``a`` runs along the grid's last (width)
axis, ``b`` along the height axis (``grid_sample``'s convention).
"""

from __future__ import annotations

from typing import List, Tuple

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn


def level_resolutions(num_levels: int, min_resolution: int, max_resolution: int) -> List[int]:
    """Resolutions of ``num_levels`` levels, geometric from ``min_resolution`` to ``max_resolution``.

    ``level_resolutions(4, 32, 256) == [32, 64, 128, 256]``; one level: ``[max_resolution]``.
    """
    if num_levels < 1 or min_resolution < 2 or max_resolution < min_resolution:
        raise ValueError(
            f"feature grids need >= 1 level and 2 <= min resolution <= max resolution, got "
            f"{num_levels} levels, {min_resolution}..{max_resolution}"
        )
    if num_levels == 1:
        return [max_resolution]
    growth = (max_resolution / min_resolution) ** (1.0 / (num_levels - 1))
    return [int(round(min_resolution * growth**level)) for level in range(num_levels)]


def make_grids(num_planes: int, features: int, resolutions: List[int], init: Tuple[float, float]) -> nn.ParameterList:
    """One ``[num_planes, features, R, R]`` parameter per resolution, uniform in ``init = (low, high)``."""
    low, high = init
    return nn.ParameterList(
        [nn.Parameter(torch.empty(num_planes, features, r, r).uniform_(low, high)) for r in resolutions]
    )


def lookup_planes(grid: Float[Tensor, "P F R R"], coords: Float[Tensor, "P N 2"]) -> Float[Tensor, "P F N"]:
    """Bilinear features of ``N`` points on each of the ``P`` planes (zero outside ``[-1, 1]^2``).

    ``coords[p, n] = (a, b)``: ``a`` indexes the grid's width axis, ``b`` its height axis.
    """
    sampled = F.grid_sample(grid, coords[:, None], mode="bilinear", padding_mode="zeros", align_corners=True)
    return sampled[:, :, 0]  # [P, F, 1, N] -> [P, F, N]


def normalise_to_box(points: Float[Tensor, "*batch 3"], aabb: Float[Tensor, "2 3"]) -> Float[Tensor, "*batch 3"]:
    """Affine map of the scene box ``aabb`` (min row, max row) onto ``[-1, 1]^3``."""
    centre = (aabb[0] + aabb[1]) * 0.5
    half = (aabb[1] - aabb[0]) * 0.5
    return (points - centre) / half


def contract(x: Float[Tensor, "*batch 3"]) -> Float[Tensor, "*batch 3"]:
    """Scene contraction (mip-NeRF 360, L-infinity norm) halved: ``[-1, 1]^3`` -> ``[-1/2, 1/2]^3``,
    everything else into ``[-1, 1]^3``.

    ``x / 2`` inside the unit cube; ``(2 - 1 / n) x / n / 2`` outside it, with ``n = max |x_i|``.
    Continuous, and finite everywhere (an unbounded capture's far points land near the border).
    """
    n = x.abs().amax(dim=-1, keepdim=True).clamp_min(1e-6)
    outside = (2.0 - 1.0 / n) * x / n
    return torch.where(n <= 1.0, x, outside) * 0.5


def grid_parameters(grids: nn.ParameterList) -> int:
    """Number of grid values (all levels)."""
    return sum(p.numel() for p in grids)


def lookup_flops(grids: nn.ParameterList, lookups_per_level: int) -> int:
    """FLOPs of bilinear lookups: ~``8 F`` (4 multiply-adds per feature) per lookup per plane-level."""
    return sum(8 * g.shape[0] * g.shape[1] * lookups_per_level for g in grids)


def default_init(combine: str) -> Tuple[float, float]:
    """Initial value range: around 1 for products (k-planes), small and centred for sums."""
    return (0.1, 0.5) if combine == "product" else (-0.1, 0.1)


__all__ = [
    "level_resolutions",
    "make_grids",
    "lookup_planes",
    "normalise_to_box",
    "contract",
    "grid_parameters",
    "lookup_flops",
    "default_init",
]
