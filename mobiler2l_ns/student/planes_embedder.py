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
from torch import Tensor

from mobiler2l_ns.student.embedder import R2L_MIN_FREQ_EXP, PointEmbedder
from mobiler2l_ns.student.feature_grids import (
    PLANE_AXES,
    GridEmbedder,
    contract,
    default_init,
    kplanes_features,
    lookup_flops,
    normalise_to_box,
)

Combine = Literal["product", "sum"]


class PlanesEmbedder(GridEmbedder):
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

    KIND = "planes"
    FORMULA = (
        "x = (p - aabb centre) / aabb half size (then halved L-inf contraction if contraction); per level: "
        "bilinear (align_corners, zero outside) lookups of the xy, xz, yz planes, combined by product or sum"
    )
    CHANNEL_ORDER = "k * (L * F) + l * F + f, then the positional encoding's channels (if any)"

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
        if combine not in ("product", "sum"):
            raise ValueError(f"planes combine must be 'product' or 'sum', got {combine!r}")
        super().__init__(num_points, aabb, len(PLANE_AXES), num_levels, features, min_resolution, max_resolution,
                         default_init(combine))  # fmt: skip
        self.combine = combine
        self.contraction = contraction
        self.encoding = PointEmbedder(num_points, pe_frequencies, R2L_MIN_FREQ_EXP) if pe_frequencies > 0 else None
        self.grid_channels = num_points * len(self.resolutions) * features
        self.out_channels = self.grid_channels + (self.encoding.out_channels if self.encoding is not None else 0)

    def grid_coordinates(self, points: Float[Tensor, "N 3"]) -> Float[Tensor, "N 3"]:
        """Points in grid coordinates: box -> ``[-1, 1]^3`` (contracted: box -> ``[-1/2, 1/2]^3``)."""
        x = normalise_to_box(points, self.aabb)
        return contract(x) if self.contraction else x

    def forward(self, points: Float[Tensor, "*batch h w K 3"]) -> Float[Tensor, "B C h w"]:
        """Plane features of every point, NCHW; leading batch dims are flattened into ``B``."""
        points = self.ray_grid(points)
        batch, h, w = points.shape[:3]
        features = kplanes_features(self.grids, self.grid_coordinates(points.reshape(-1, 3)), self.combine)  # [LF, N]
        features = features.reshape(-1, batch, h, w, self.num_points).permute(1, 4, 0, 2, 3)  # [B, K, LF, h, w]
        features = features.reshape(batch, self.grid_channels, h, w)
        if self.encoding is None:
            return features
        return torch.cat([features, self.encoding(points)], dim=1)

    def grid_settings(self) -> Dict[str, Any]:
        """Combination and contraction."""
        return {"combine": self.combine, "contraction": self.contraction}

    def settings(self) -> Dict[str, Any]:
        """The grids' settings and the appended positional encoding's description (or None)."""
        return {
            **super().settings(),
            "positional_encoding": self.encoding.describe() if self.encoding is not None else None,
        }

    def flops(self, h: int, w: int) -> int:
        """Approximate FLOPs of the lookups on an ``h x w`` ray grid."""
        return lookup_flops(self.grids, h * w * self.num_points)
