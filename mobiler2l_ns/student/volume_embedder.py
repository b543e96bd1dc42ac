"""Composited feature planes: the K points of each ray looked up in k-planes and alpha-composited.

A small volume inside the embedder (deferred shading, as in SNeRG / TensoRF, feeding MobileR2L's
network): each point's feature vector ``v_k`` (multi-resolution k-planes, :mod:`.planes_embedder`'s
lookup) gives a density ``sigma_k = softplus(w . v_k + b)``; with ``delta_k`` the distance to the
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
from nerfstudio.field_components.encodings import NeRFEncoding
from torch import Tensor, nn

from mobiler2l_ns.student.embedder import R2L_MIN_FREQ_EXP
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
from mobiler2l_ns.student.planes_embedder import PLANE_AXES


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


class VolumeEmbedder(nn.Module):
    """``[*batch, h, w, K, 3]`` points -> ``[B, C, h, w]`` composited plane features of each ray.

    Args:
        num_points: K, points per ray (the sampler's; more points, finer compositing).
        aabb: ``[2, 3]`` scene box mapped onto the grids' ``[-1, 1]^3``.
        num_levels, features, min_resolution, max_resolution: the k-planes (product of xy, xz, yz).
        contraction: contract points outside the box (unbounded captures).
        direction_frequencies: D, frequencies of the ray-direction encoding.
        density_bias: initial density logit (negative: mostly transparent at the start).
    """

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
        super().__init__()
        if num_points < 2:
            raise ValueError(f"the volume embedder composites along each ray: it needs K >= 2 points, got {num_points}")
        self.num_points = num_points
        self.features = features
        self.contraction = contraction
        self.resolutions = level_resolutions(num_levels, min_resolution, max_resolution)
        self.register_buffer("aabb", aabb.detach().float().clone().reshape(2, 3))
        self.grids = make_grids(len(PLANE_AXES), features, self.resolutions, default_init("product"))
        channels = len(self.resolutions) * features
        self.density = nn.Linear(channels, 1)
        with torch.no_grad():
            self.density.weight.normal_(0.0, 1.0 / channels**0.5)
            self.density.bias.fill_(density_bias)
        self.direction_encoding = NeRFEncoding(
            in_dim=3,
            num_frequencies=direction_frequencies,
            min_freq_exp=R2L_MIN_FREQ_EXP,
            max_freq_exp=R2L_MIN_FREQ_EXP + max(direction_frequencies - 1, 0),
            include_input=True,
            implementation="torch",
        )
        self.direction_frequencies = direction_frequencies
        self.feature_channels = channels
        self.out_channels = channels + 1 + self.direction_encoding.get_out_dim()

    def point_features(self, x: Float[Tensor, "N 3"]) -> Float[Tensor, "N LF"]:
        """k-planes features (product of the three planes, levels concatenated) at grid coordinates."""
        coords = torch.stack([torch.stack([x[:, a], x[:, b]], dim=-1) for a, b in PLANE_AXES])  # [3, N, 2]
        levels = []
        for grid in self.grids:
            planes = lookup_planes(grid, coords)  # [3, F, N]
            levels.append(planes[0] * planes[1] * planes[2])
        return torch.cat(levels, dim=0).transpose(0, 1)  # [N, L * F]

    def forward(self, points: Float[Tensor, "*batch h w K 3"]) -> Float[Tensor, "B C h w"]:
        """Composited features of every ray, NCHW; leading batch dims are flattened into ``B``."""
        if points.shape[-2:] != (self.num_points, 3):
            raise ValueError(f"expected points [..., h, w, {self.num_points}, 3], got {tuple(points.shape)}")
        h, w = points.shape[-4], points.shape[-3]
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

    def describe(self) -> Dict[str, Any]:
        """Settings and channel layout for metadata.json (the grids themselves live in the graph)."""
        return {
            "kind": "volume",
            "num_points": self.num_points,
            "channels": self.out_channels,
            "levels": self.resolutions,
            "features": self.features,
            "contraction": self.contraction,
            "direction_frequencies": self.direction_frequencies,
            "aabb": self.aabb.tolist(),
            "parameters": self.parameter_count(),
            "formula": (
                "x = (p - aabb centre) / aabb half size; v_k = k-planes features (xy * xz * yz per level); "
                "sigma_k = softplus(w . v_k + b); w_k = exp(-sum_{j<k} sigma_j delta_j) (1 - exp(-sigma_k delta_k)) "
                "with delta_k = |x_{k+1} - x_k|; features = sum_k w_k v_k, opacity = sum_k w_k, encoding of the direction"
            ),
            "channel_order": "L * F composited features, opacity, direction encoding (sin, cos, raw)",
        }

    def parameter_count(self) -> int:
        """Grid values plus the density map."""
        return grid_parameters(self.grids) + sum(p.numel() for p in self.density.parameters())

    def flops(self, h: int, w: int) -> int:
        """Approximate FLOPs: the lookups plus compositing (``~4 C`` per point)."""
        return lookup_flops(self.grids, h * w * self.num_points) + 4 * h * w * self.num_points * self.feature_channels
