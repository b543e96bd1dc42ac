"""Learned multi-resolution 2D feature grids, looked up bilinearly: the student's learned inputs.

Small typed functions and :class:`GridEmbedder`, the base of the learned embedders
(:mod:`.planes_embedder`, :mod:`.slab_embedder`, :mod:`.volume_embedder`). Every lookup is
``torch.nn.functional.grid_sample`` (bilinear, ``align_corners=True``, zero padding), which the ONNX exporter writes as one ``GridSample`` node
(opset >= 16) per level, so the exported embedder computes exactly what the model trained.

Grid layout: one ``nn.Parameter`` per level, ``[P, F, R, R]`` for ``P`` planes of ``F`` features at
resolution ``R`` (levels geometric between ``min_resolution`` and ``max_resolution``). A plane is
indexed by two coordinates ``(a, b)`` in ``[-1, 1]``: ``a`` runs along the grid's last (width)
axis, ``b`` along the height axis (``grid_sample``'s convention).
"""

from __future__ import annotations

from typing import Any, Dict, List, Tuple

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from mobiler2l_ns.student.ray_embedder import RayEmbedder

PLANE_AXES = ((0, 1), (0, 2), (1, 2))
"""Coordinates of the three k-planes: xy, xz, yz (first one along the grid's width axis)."""


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


def kplanes_features(
    grids: nn.ParameterList, x: Float[Tensor, "N 3"], combine: str = "product"
) -> Float[Tensor, "LF N"]:
    """k-planes features of points in grid coordinates: per level, the bilinear values of the
    :data:`PLANE_AXES` planes (``[3, F, R, R]`` grids) multiplied (``product``) or summed (``sum``);
    levels concatenated (level-major: row ``l * F + f``)."""
    coords = torch.stack([torch.stack([x[:, a], x[:, b]], dim=-1) for a, b in PLANE_AXES])  # [3, N, 2]
    levels = []
    for grid in grids:
        planes = lookup_planes(grid, coords)  # [3, F, N]
        levels.append(planes[0] * planes[1] * planes[2] if combine == "product" else planes.sum(dim=0))
    return torch.cat(levels, dim=0)  # [L * F, N]


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


def lookup_flops(grids: nn.ParameterList, lookups_per_level: int) -> int:
    """FLOPs of bilinear lookups: ~``8 F`` (4 multiply-adds per feature) per lookup per plane-level."""
    return sum(8 * g.shape[0] * g.shape[1] * lookups_per_level for g in grids)


def default_init(combine: str) -> Tuple[float, float]:
    """Initial value range: around 1 for products (k-planes), small and centred for sums."""
    return (0.1, 0.5) if combine == "product" else (-0.1, 0.1)


class GridEmbedder(RayEmbedder):
    """Base of the learned embedders: multi-resolution 2D feature grids over a box.

    Holds ``aabb`` (buffer ``[2, 3]``: the box mapped onto ``[-1, 1]^3``), ``resolutions`` (L levels,
    geometric between ``min_resolution`` and ``max_resolution``), ``features`` (F) and ``grids`` (one
    ``[num_planes, F, R, R]`` parameter per level, uniform in ``init``), all saved in the checkpoint.
    """

    def __init__(
        self,
        num_points: int,
        aabb: Float[Tensor, "2 3"],
        num_planes: int,
        num_levels: int,
        features: int,
        min_resolution: int,
        max_resolution: int,
        init: Tuple[float, float],
    ):
        super().__init__(num_points)
        self.features = features
        self.resolutions = level_resolutions(num_levels, min_resolution, max_resolution)
        self.register_buffer("aabb", aabb.detach().float().clone().reshape(2, 3))
        self.grids = make_grids(num_planes, features, self.resolutions, init)

    def grid_settings(self) -> Dict[str, Any]:
        """The subclass's constants between ``features`` and ``aabb`` in :meth:`describe`."""
        return {}

    def settings(self) -> Dict[str, Any]:
        """Levels, features, the subclass's constants, box and parameter count."""
        return {
            "levels": self.resolutions,
            "features": self.features,
            **self.grid_settings(),
            "aabb": self.aabb.tolist(),
            "parameters": self.parameter_count(),
        }


__all__ = [
    "PLANE_AXES",
    "level_resolutions",
    "make_grids",
    "lookup_planes",
    "kplanes_features",
    "normalise_to_box",
    "contract",
    "lookup_flops",
    "default_init",
    "GridEmbedder",
]
