"""Per-point feature planes: the K points of each ray looked up in multi-resolution k-planes.

Each point ``p`` (normalised by the scene box onto ``[-1, 1]^3``, optionally contracted for
unbounded captures) is looked up bilinearly in three axis-aligned planes ``xy, xz, yz`` per level;
the three plane features are multiplied (k-planes' Hadamard product: a feature can be localised
in 3D) or summed. Per ray: ``K`` points x ``L`` levels x ``F`` features channels, e.g. 8 x 4 x 8 =
256, optionally followed by the paper's positional encoding of the same points
(:class:`~mobiler2l_ns.student.embedder.PointEmbedder`) so the network also sees the geometry.

Channel order (the ONNX graph computes it with the same code)::

    k * (L * F) + l * F + f      feature f of level l at point k
    K * L * F + (PE channels)    positional encoding (student/embedder.py order), if any
"""

from __future__ import annotations

from typing import Any, Dict, Literal

import torch
from jaxtyping import Float
from torch import Tensor, nn

from mobiler2l_ns.student.embedder import R2L_MIN_FREQ_EXP, PointEmbedder
from mobiler2l_ns.student.feature_grids import (
    contract,
    default_init,
    grid_parameters,
    level_resolutions,
    lookup_flops,
    lookup_planes,
    make_grids,
    normalise_to_box,
)

Combine = Literal["product", "sum"]
PLANE_AXES = ((0, 1), (0, 2), (1, 2))
"""Coordinates of the three planes: xy, xz, yz (first one along the grid's width axis)."""


class PlanesEmbedder(nn.Module):
    """``[*batch, h, w, K, 3]`` points -> ``[B, C, h, w]`` learned plane features (+ optional PE).

    Args:
        num_points: K, points per ray.
        aabb: ``[2, 3]`` scene box (min row, max row) mapped onto the grids' ``[-1, 1]^3``.
        num_levels, features, min_resolution, max_resolution: L levels of F features each, with
            resolutions geometric between the two.
        combine: ``product`` (k-planes) or ``sum`` of the three planes' features.
        contraction: contract points outside the box (unbounded captures) instead of dropping them
            (zero features outside the box).
        pe_frequencies: frequencies of the positional encoding appended (0: none).
    """

    def __init__(
        self,
        num_points: int,
        aabb: Float[Tensor, "2 3"],
        num_levels: int = 4,
        features: int = 8,
        min_resolution: int = 32,
        max_resolution: int = 256,
        combine: Combine = "product",
        contraction: bool = False,
        pe_frequencies: int = 0,
    ):
        super().__init__()
        if combine not in ("product", "sum"):
            raise ValueError(f"planes combine must be 'product' or 'sum', got {combine!r}")
        self.num_points = num_points
        self.features = features
        self.combine = combine
        self.contraction = contraction
        self.resolutions = level_resolutions(num_levels, min_resolution, max_resolution)
        self.register_buffer("aabb", aabb.detach().float().clone().reshape(2, 3))
        self.grids = make_grids(len(PLANE_AXES), features, self.resolutions, default_init(combine))
        self.encoding = PointEmbedder(num_points, pe_frequencies, R2L_MIN_FREQ_EXP) if pe_frequencies > 0 else None
        self.grid_channels = num_points * len(self.resolutions) * features
        self.out_channels = self.grid_channels + (self.encoding.out_channels if self.encoding is not None else 0)

    def grid_coordinates(self, points: Float[Tensor, "N 3"]) -> Float[Tensor, "N 3"]:
        """Points in grid coordinates: box -> ``[-1, 1]^3`` (contracted: box -> ``[-1/2, 1/2]^3``)."""
        x = normalise_to_box(points, self.aabb)
        return contract(x) if self.contraction else x

    def forward(self, points: Float[Tensor, "*batch h w K 3"]) -> Float[Tensor, "B C h w"]:
        """Plane features of every point, NCHW; leading batch dims are flattened into ``B``."""
        if points.shape[-2:] != (self.num_points, 3):
            raise ValueError(f"expected points [..., h, w, {self.num_points}, 3], got {tuple(points.shape)}")
        h, w = points.shape[-4], points.shape[-3]
        points = points.reshape(-1, h, w, self.num_points, 3)
        batch = points.shape[0]
        x = self.grid_coordinates(points.reshape(-1, 3))  # [N, 3]
        coords = torch.stack([torch.stack([x[:, a], x[:, b]], dim=-1) for a, b in PLANE_AXES])  # [3, N, 2]
        levels = []
        for grid in self.grids:
            planes = lookup_planes(grid, coords)  # [3, F, N]
            levels.append(planes[0] * planes[1] * planes[2] if self.combine == "product" else planes.sum(dim=0))
        features = torch.cat(levels, dim=0)  # [L * F, N]
        features = features.reshape(-1, batch, h, w, self.num_points).permute(1, 4, 0, 2, 3)
        features = features.reshape(batch, self.grid_channels, h, w)
        if self.encoding is None:
            return features
        return torch.cat([features, self.encoding(points)], dim=1)

    def describe(self) -> Dict[str, Any]:
        """Settings and channel layout for metadata.json (the grids themselves live in the graph)."""
        return {
            "kind": "planes",
            "num_points": self.num_points,
            "channels": self.out_channels,
            "levels": self.resolutions,
            "features": self.features,
            "combine": self.combine,
            "contraction": self.contraction,
            "aabb": self.aabb.tolist(),
            "parameters": self.parameter_count(),
            "positional_encoding": self.encoding.describe() if self.encoding is not None else None,
            "formula": (
                "x = (p - aabb centre) / aabb half size (then halved L-inf contraction if contraction); per level: "
                "bilinear (align_corners, zero outside) lookups of the xy, xz, yz planes, combined by product or sum"
            ),
            "channel_order": "k * (L * F) + l * F + f, then the positional encoding's channels (if any)",
        }

    def parameter_count(self) -> int:
        """Grid values (the PE has none)."""
        return grid_parameters(self.grids)

    def flops(self, h: int, w: int) -> int:
        """Approximate FLOPs of the lookups on an ``h x w`` ray grid."""
        return lookup_flops(self.grids, h * w * self.num_points)
