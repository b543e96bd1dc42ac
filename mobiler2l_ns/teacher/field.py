"""Instant-NGP radiance field: hash grid -> density MLP, SH(direction) + features -> colour MLP."""

from __future__ import annotations

from typing import Optional, Tuple

import torch
from jaxtyping import Float
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.field_components.activations import trunc_exp
from nerfstudio.field_components.encodings import SHEncoding
from nerfstudio.field_components.mlp import MLP
from nerfstudio.field_components.spatial_distortions import SceneContraction
from torch import Tensor, nn

from mobiler2l_ns.teacher.hash_grid import HashGrid


class TeacherField(nn.Module):
    """Density and colour of points, Instant-NGP style.

    Args:
        aabb: [2, 3] scene box; points are normalised by it (bounded scenes).
        contract: map unbounded space into the box with nerfstudio's L-inf SceneContraction.
        hash_grid: the positional encoding.
        hidden_dim, hidden_dim_color, geo_feat_dim, sh_degree: MLP sizes as in Instant-NGP.
        average_init_density: scale of the density (nerfstudio's convention): below 1, space starts
            nearly empty, so the occupancy grid prunes from the first update.
    """

    def __init__(
        self,
        aabb: Float[Tensor, "2 3"],
        hash_grid: HashGrid,
        contract: bool = False,
        hidden_dim: int = 64,
        hidden_dim_color: int = 64,
        geo_feat_dim: int = 15,
        sh_degree: int = 4,
        average_init_density: float = 1.0,
    ) -> None:
        super().__init__()
        self.register_buffer("aabb", aabb.clone().float())
        self.contraction: Optional[SceneContraction] = SceneContraction(order=float("inf")) if contract else None
        self.hash_grid = hash_grid
        self.geo_feat_dim = geo_feat_dim
        self.average_init_density = average_init_density
        self.density_mlp = MLP(
            in_dim=hash_grid.output_dim,
            num_layers=2,
            layer_width=hidden_dim,
            out_dim=1 + geo_feat_dim,
            activation=nn.ReLU(),
            implementation="torch",
        )
        self.direction_encoding = SHEncoding(levels=sh_degree, implementation="torch")
        self.color_mlp = MLP(
            in_dim=self.direction_encoding.get_out_dim() + geo_feat_dim,
            num_layers=3,
            layer_width=hidden_dim_color,
            out_dim=3,
            activation=nn.ReLU(),
            out_activation=nn.Sigmoid(),
            implementation="torch",
        )

    def normalize(self, positions: Float[Tensor, "*bs 3"]) -> Tuple[Float[Tensor, "*bs 3"], Tensor]:
        """World positions -> [0, 1]^3 grid coordinates, and a mask of points inside the grid."""
        if self.contraction is not None:
            unit = (self.contraction(SceneBox.get_normalized_positions(positions, self.aabb) * 2 - 1) + 2.0) / 4.0
        else:
            unit = SceneBox.get_normalized_positions(positions, self.aabb)
        inside = ((unit >= 0.0) & (unit <= 1.0)).all(dim=-1)
        return unit.clamp(0.0, 1.0), inside

    def density_and_features(self, positions: Float[Tensor, "*bs 3"]) -> Tuple[Tensor, Tensor]:
        """Returns density [*bs, 1] (zero outside the grid) and geometry features [*bs, geo]."""
        unit, inside = self.normalize(positions)
        h = self.density_mlp(self.hash_grid(unit))
        density = self.average_init_density * trunc_exp(h[..., :1].float()) * inside[..., None]
        return density, h[..., 1:]

    def density_fn(self, positions: Float[Tensor, "*bs 3"]) -> Float[Tensor, "*bs 1"]:
        """Density only: used by the occupancy grid and the sample filter."""
        return self.density_and_features(positions)[0]

    def forward(
        self, positions: Float[Tensor, "N 3"], directions: Float[Tensor, "N 3"]
    ) -> Tuple[Float[Tensor, "N 1"], Float[Tensor, "N 3"]]:
        """Density and RGB in [0, 1] of N samples seen along unit ``directions``."""
        density, features = self.density_and_features(positions)
        return density, self.rgb(features, directions)

    def rgb(self, features: Float[Tensor, "N geo"], directions: Float[Tensor, "N 3"]) -> Float[Tensor, "N 3"]:
        """RGB in [0, 1] from ``density_and_features``' geometry features and unit view directions."""
        sh = self.direction_encoding(directions)  # torch SH takes unit vectors
        return self.color_mlp(torch.cat([sh, features], dim=-1))
