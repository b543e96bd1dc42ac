"""Composited feature planes: the K points of each ray looked up in k-planes and alpha-composited.

A small volume inside the embedder (deferred shading, as in SNeRG / TensoRF, feeding MobileR2L's
network): each point's feature vector ``v_k`` (multi-resolution k-planes,
:func:`.feature_grids.kplanes_features`) gives a density ``sigma_k = softplus(w . v_k + b)``; with ``delta_k`` the distance to the
next point (the last point repeats the previous spacing), the ray's weights are the volume
rendering ones::

    tau_k = sigma_k delta_k,  T_k = exp(-sum_{j<k} tau_j),  w_k = T_k (1 - exp(-tau_k))

and the ray's input to the network is ``sum_k w_k v_k`` (``L F`` channels), its opacity
``sum_k w_k`` (1 channel), and a positional encoding of its unit direction (``3 (2 D + 1)``
channels, ``D`` frequencies). The network (1x1-conv body + super-resolution head) decodes these
features into colour patches, so colour and view dependence stay with the network; the grids only
need to say what is where. Distances are in scene-box units (the box mapped onto ``[-1, 1]^3``).

Channel order: ``L F`` composited features (level-major, as the planes embedder), opacity, then the
direction encoding (NeRFEncoding order: sines, cosines, raw).
"""

from __future__ import annotations

from typing import Any, Dict

import torch
import torch.nn.functional as F
from jaxtyping import Float
from torch import Tensor, nn

from mobiler2l_ns.student.embedder import R2L_MIN_FREQ_EXP
from mobiler2l_ns.student.feature_grids import (
    PLANE_AXES,
    GridEmbedder,
    contract,
    default_init,
    kplanes_features,
    lookup_flops,
    normalise_to_box,
)
from mobiler2l_ns.student.ray_embedder import nerf_encoding


def composite(
    features: Float[Tensor, "R K C"], sigma: Float[Tensor, "R K"], delta: Float[Tensor, "R K"]
) -> Float[Tensor, "R C+1"]:
    """Volume-rendering weights ``w_k = T_k (1 - exp(-sigma_k delta_k))`` applied to ``features``;
    returns the composited features and the opacity ``sum_k w_k`` as the last channel."""
    tau = sigma * delta
    transmittance = torch.exp(-(torch.cumsum(tau, dim=-1) - tau))  # exclusive cumulative sum
    weights = transmittance * (1.0 - torch.exp(-tau))  # [R, K]
    composited = (weights[..., None] * features).sum(dim=-2)
    return torch.cat([composited, weights.sum(dim=-1, keepdim=True)], dim=-1)


class VolumeEmbedder(GridEmbedder):
    """``[*batch, h, w, K, 3]`` points -> ``[B, C, h, w]`` composited plane features of each ray.

    Args:
        num_points: K, points per ray (the sampler's; more points, finer compositing).
        aabb: ``[2, 3]`` scene box mapped onto the grids' ``[-1, 1]^3``.
        num_levels, features, min_resolution, max_resolution: the k-planes (product of xy, xz, yz).
        contraction: contract points outside the box (unbounded captures).
        direction_frequencies: D, frequencies of the ray-direction encoding.
        density_bias: initial density logit (negative: mostly transparent at the start).
    """

    KIND = "volume"
    FORMULA = (
        "x = (p - aabb centre) / aabb half size; v_k = k-planes features (xy * xz * yz per level); "
        "sigma_k = softplus(w . v_k + b); w_k = exp(-sum_{j<k} sigma_j delta_j) (1 - exp(-sigma_k delta_k)) "
        "with delta_k = |x_{k+1} - x_k|; features = sum_k w_k v_k, opacity = sum_k w_k, encoding of the direction"
    )
    CHANNEL_ORDER = "L * F composited features, opacity, direction encoding (sin, cos, raw)"

    def __init__(
        self,
        num_points: int,
        aabb: Float[Tensor, "2 3"],
        num_levels: int = 4,
        features: int = 8,
        min_resolution: int = 32,
        max_resolution: int = 256,
        contraction: bool = False,
        direction_frequencies: int = 2,
        density_bias: float = -2.0,
    ):
        if num_points < 2:
            raise ValueError(f"the volume embedder composites along each ray: it needs K >= 2 points, got {num_points}")
        super().__init__(num_points, aabb, len(PLANE_AXES), num_levels, features, min_resolution, max_resolution,
                         default_init("product"))  # fmt: skip
        self.contraction = contraction
        channels = len(self.resolutions) * features
        self.density = nn.Linear(channels, 1)
        with torch.no_grad():
            self.density.weight.normal_(0.0, 1.0 / channels**0.5)
            self.density.bias.fill_(density_bias)
        self.direction_encoding = nerf_encoding(direction_frequencies, R2L_MIN_FREQ_EXP)
        self.direction_frequencies = direction_frequencies
        self.feature_channels = channels
        self.out_channels = channels + 1 + self.direction_encoding.get_out_dim()

    def point_features(self, x: Float[Tensor, "N 3"]) -> Float[Tensor, "N LF"]:
        """k-planes features (product of the three planes, levels concatenated) at grid coordinates."""
        return kplanes_features(self.grids, x).transpose(0, 1)

    def forward(self, points: Float[Tensor, "*batch h w K 3"]) -> Float[Tensor, "B C h w"]:
        """Composited features of every ray, NCHW; leading batch dims are flattened into ``B``."""
        points = self.ray_grid(points)
        h, w = points.shape[1:3]
        K = self.num_points
        x = normalise_to_box(points.reshape(-1, K, 3), self.aabb)  # [R, K, 3] box units
        gaps = torch.linalg.norm(x[:, 1:] - x[:, :-1], dim=-1)  # [R, K - 1]
        delta = torch.cat([gaps, gaps[:, -1:]], dim=-1)  # [R, K]
        grid_x = contract(x) if self.contraction else x
        v = self.point_features(grid_x.reshape(-1, 3)).reshape(-1, K, self.feature_channels)  # [R, K, LF]
        sigma = F.softplus(self.density(v)[..., 0])  # [R, K]
        ray = composite(v, sigma, delta)  # [R, LF + 1]
        direction = x[:, -1] - x[:, 0]
        direction = direction / torch.linalg.norm(direction, dim=-1, keepdim=True).clamp_min(1e-9)
        out = torch.cat([ray, self.direction_encoding(direction)], dim=-1)  # [R, C]
        return out.reshape(-1, h, w, self.out_channels).permute(0, 3, 1, 2).contiguous()

    def grid_settings(self) -> Dict[str, Any]:
        """Contraction and direction-encoding frequencies."""
        return {"contraction": self.contraction, "direction_frequencies": self.direction_frequencies}

    def flops(self, h: int, w: int) -> int:
        """Approximate FLOPs: the lookups plus compositing (``~4 C`` per point)."""
        return lookup_flops(self.grids, h * w * self.num_points) + 4 * h * w * self.num_points * self.feature_channels
