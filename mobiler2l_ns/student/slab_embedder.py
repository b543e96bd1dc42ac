"""Light-slab features (LightSpeed, NeurIPS 2023): each ray as its crossings of two parallel planes.

A ray (taken from its first and last sample point, in the scene box's ``[-1, 1]^3`` frame) crosses
the two box faces perpendicular to an axis ``a`` at its entry point ``(s, t)`` and its exit point
``(u, v)`` (the other two coordinates, divided by ``extent``). The four slab coordinates are
looked up in six multi-resolution 2D grids, one per pair ``st, su, sv, tu, tv, uv``, and the six
features are concatenated (LightSpeed's parametrisation).

360 scenes ("divide and conquer"): one slab per axis and direction sign (``+x, -x, +y, -y, +z,
-z``: six slabs, each with its own grids). Every ray is looked up in the three slabs its direction
points along and their features are blended with weights ``d_a^2 / |d|^2`` (summing to 1). A weight
vanishes exactly where its slab's parametrisation degenerates (the ray parallel to the faces), so
the blend is continuous over all directions: no seams when a camera orbits. With ``axes=("z",)``
and one sign it is a single slab, the forward-facing layout.

Channel order: ``l * 6F + pair * F + f`` (level l, pair in the order above, feature f).
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import torch
from jaxtyping import Float
from torch import Tensor

from mobiler2l_ns.student.feature_grids import GridEmbedder, default_init, lookup_flops, lookup_planes, normalise_to_box

PAIRS = ((0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3))
"""Slab coordinate pairs (s, t, u, v) = (0, 1, 2, 3): st, su, sv, tu, tv, uv."""
AXES = {"x": (0, 1, 2), "y": (1, 0, 2), "z": (2, 0, 1)}
"""Slab axis -> (axis, first in-plane coordinate, second in-plane coordinate)."""
EPS = 1e-6


def slab_coordinates(
    origin: Float[Tensor, "N 3"],
    direction: Float[Tensor, "N 3"],
    axis: Tuple[int, int, int],
    sign: float,
    extent: float,
) -> Float[Tensor, "N 4"]:
    """``(s, t, u, v) / extent``: the ray's crossings of the faces ``x_a = -sign`` (entry) and ``x_a = +sign``.

    ``axis = (a, b, c)``: the slab axis and the two in-plane coordinates. Rays parallel to the faces
    (``|d_a| < 1e-6``) get a finite, meaningless value (their blend weight is ~0).
    """
    a, b, c = axis
    da = direction[:, a]
    da = torch.where(da.abs() < EPS, torch.full_like(da, EPS * sign), da)
    t_entry = (-sign - origin[:, a]) / da
    t_exit = (sign - origin[:, a]) / da
    entry = origin + t_entry[:, None] * direction
    exit_ = origin + t_exit[:, None] * direction
    coords = torch.stack([entry[:, b], entry[:, c], exit_[:, b], exit_[:, c]], dim=-1) / extent
    return coords.clamp(-2.0, 2.0)  # beyond [-1, 1]: zero features; clamped only to stay finite


class SlabEmbedder(GridEmbedder):
    """``[*batch, h, w, K, 3]`` points -> ``[B, C, h, w]`` light-slab features of each ray.

    Args:
        aabb: ``[2, 3]`` scene box; its faces are the slab planes.
        num_levels, features, min_resolution, max_resolution: L levels of F features per pair grid.
        axes: slab axes (``"x"``, ``"y"``, ``"z"``); 360 scenes use all three.
        signs: direction signs with a slab each (``(1.0, -1.0)``: both).
        extent: slab coordinates are divided by this (crossings beyond it get zero features).
    """

    KIND = "slab"
    FORMULA = (
        "ray from the first to the last point (aabb -> [-1, 1]^3); per slab (axis, sign): entry / exit "
        "crossings (s, t, u, v) / extent of the faces x_a = -sign / +sign; pair grids st su sv tu tv uv "
        "concatenated; slabs blended with d_a^2 / |d|^2 for the sign the ray points along"
    )
    CHANNEL_ORDER = "l * 6F + pair * F + f"

    def __init__(
        self,
        num_points: int,
        aabb: Float[Tensor, "2 3"],
        num_levels: int = 4,
        features: int = 8,
        min_resolution: int = 32,
        max_resolution: int = 256,
        axes: Sequence[str] = ("x", "y", "z"),
        signs: Sequence[float] = (1.0, -1.0),
        extent: float = 2.0,
    ):
        if not axes or any(a not in AXES for a in axes) or not signs or any(s not in (1.0, -1.0) for s in signs):
            raise ValueError(f"slab axes must be among x, y, z and signs among +1, -1, got {axes}, {signs}")
        slabs = len(axes) * len(signs)
        super().__init__(num_points, aabb, slabs * len(PAIRS), num_levels, features, min_resolution, max_resolution,
                         default_init("sum"))  # fmt: skip
        self.axes = [AXES[a] for a in axes]
        self.signs = [float(s) for s in signs]
        self.extent = float(extent)
        self.out_channels = len(self.resolutions) * len(PAIRS) * features

    def slab_weights(self, direction: Float[Tensor, "N 3"]) -> List[Float[Tensor, "N"]]:  # noqa: F821
        """Blend weight of every (axis, sign) slab: ``d_a^2 / |d_a'|^2`` summed over the used axes, when
        the ray points along ``sign``, else 0."""
        squares = [direction[:, a] ** 2 for a, _, _ in self.axes]
        total = torch.stack(squares).sum(dim=0).clamp_min(EPS)
        weights = []
        for (a, _, _), square in zip(self.axes, squares):
            for sign in self.signs:
                along = (direction[:, a] * sign >= 0).to(direction.dtype) if len(self.signs) > 1 else 1.0
                weights.append(square / total * along)
        return weights

    def forward(self, points: Float[Tensor, "*batch h w K 3"]) -> Float[Tensor, "B C h w"]:
        """Blended slab features of every ray, NCHW; leading batch dims are flattened into ``B``."""
        points = self.ray_grid(points)
        batch, h, w = points.shape[:3]
        first = normalise_to_box(points[..., 0, :].reshape(-1, 3), self.aabb)
        last = normalise_to_box(points[..., -1, :].reshape(-1, 3), self.aabb)
        direction = last - first
        coords, weights = [], self.slab_weights(direction)
        for axis in self.axes:
            for sign in self.signs:
                slab = slab_coordinates(first, direction, axis, sign, self.extent)  # [N, 4]
                coords += [torch.stack([slab[:, i], slab[:, j]], dim=-1) for i, j in PAIRS]
        coords_t = torch.stack(coords)  # [S * 6, N, 2]
        levels = []
        for grid in self.grids:
            feats = lookup_planes(grid, coords_t)  # [S * 6, F, N]
            feats = feats.reshape(len(weights), len(PAIRS) * self.features, -1)  # [S, 6F, N]
            levels.append(sum(weight * feats[i] for i, weight in enumerate(weights)))
        features = torch.cat(levels, dim=0)  # [L * 6F, N]
        return features.reshape(self.out_channels, batch, h, w).permute(1, 0, 2, 3).contiguous()

    def grid_settings(self) -> Dict[str, Any]:
        """Slab axes, direction signs and coordinate extent."""
        names = {v: k for k, v in AXES.items()}
        return {"axes": [names[a] for a in self.axes], "signs": self.signs, "extent": self.extent}

    def flops(self, h: int, w: int) -> int:
        """Approximate FLOPs of the lookups on an ``h x w`` ray grid."""
        return lookup_flops(self.grids, h * w)
