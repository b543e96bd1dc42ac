"""The student's embedders, one contract: ``points [*batch, h, w, K, 3] -> features [B, C, h, w]``.

* ``pe`` (:class:`~.embedder.PointEmbedder`): the paper's fixed positional encoding, 312 channels
  for K = 8; no parameters, so the network must learn the whole scene.
* ``planes`` (:class:`~.planes_embedder.PlanesEmbedder`): learned multi-resolution k-planes looked
  up at every point.
* ``slab`` (:class:`~.slab_embedder.SlabEmbedder`): learned light-slab grids of each ray
  (LightSpeed), six blended slabs for 360 scenes.
* ``volume`` (:class:`~.volume_embedder.VolumeEmbedder`): k-planes at the points, alpha-composited
  along each ray into one feature vector (deferred shading: the network decodes it).

Every embedder is a :class:`~.ray_embedder.RayEmbedder` (``out_channels``, ``describe()``,
``parameter_count()``, ``flops()``); the learned ones (:class:`~.feature_grids.GridEmbedder`) keep
their grids (and the scene box that normalises the points) inside the module, so ``embedder.onnx``
holds them.
"""

from __future__ import annotations

from typing import Literal

import torch
from jaxtyping import Float
from torch import Tensor

from mobiler2l_ns.student.embedder import PointEmbedder
from mobiler2l_ns.student.planes_embedder import PlanesEmbedder
from mobiler2l_ns.student.ray_embedder import RayEmbedder
from mobiler2l_ns.student.slab_embedder import SlabEmbedder
from mobiler2l_ns.student.volume_embedder import VolumeEmbedder

EmbedderKind = Literal["pe", "planes", "slab", "volume"]
Embedder = RayEmbedder
NDC_BOX = ((-1.0, -1.0, -1.0), (1.0, 1.0, 1.0))
"""The box of NDC points (forward-facing scenes): the grids cover the NDC frustum."""


def build_embedder(config, aabb: Float[Tensor, "2 3"]) -> Embedder:
    """The embedder a :class:`~.model.MobileR2LModelConfig` asks for; ``aabb``: the scene box
    (ignored in NDC mode, where points live in ``[-1, 1]^3``)."""
    kind = config.embedder
    box = torch.tensor(NDC_BOX) if config.use_ndc else aabb
    grids = dict(
        num_levels=config.grid_levels,
        features=config.grid_features,
        min_resolution=config.grid_min_resolution,
        max_resolution=config.grid_max_resolution,
    )
    if kind == "pe":
        return PointEmbedder(config.num_points, config.num_frequencies, config.min_freq_exp)
    if kind == "planes":
        return PlanesEmbedder(
            config.num_points,
            box,
            combine=config.planes_combine,
            contraction=config.grid_contraction,
            pe_frequencies=config.planes_pe_frequencies,
            **grids,
        )
    if kind == "volume":
        return VolumeEmbedder(config.num_points, box, contraction=config.grid_contraction, **grids)
    if kind == "slab":
        return SlabEmbedder(config.num_points, box, axes=config.slab_axes, extent=config.slab_extent, **grids)
    raise ValueError(f"unknown embedder {kind!r}: expected 'pe', 'planes', 'slab' or 'volume'")


def embedder_parameters(embedder: Embedder) -> int:
    """Learned values of an embedder (0 for the positional encoding)."""
    return embedder.parameter_count()


def embedder_flops(embedder: Embedder, h: int, w: int) -> int:
    """FLOPs of a learned embedder's lookups on an ``h x w`` ray grid; 0 for the positional encoding
    (its sines are not counted, as in the paper's FLOP figures)."""
    return int(embedder.flops(h, w))
