"""Occupancy-grid ray marching: nerfacc's CUDA kernel, or a pure-torch marcher that runs anywhere.

Both read the same ``nerfacc.OccGridEstimator`` (its ``binaries`` and ``aabbs`` buffers), so a
checkpoint's grid is valid for either. The torch marcher behaves like nerfacc's: samples only in
occupied cells, a visibility pass that drops samples behind an opaque surface (early ray
termination, ``early_stop_eps``) or nearly transparent (``alpha_thre``), and packed samples
sorted by ray for volume rendering.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Callable, Optional

import nerfacc
import torch
from jaxtyping import Bool, Float, Int
from torch import Tensor

from mobiler2l_ns.geometry import ray_box_intersect

SigmaFn = Callable[[Tensor, Tensor, Tensor], Tensor]


def sample_points(
    origins: Float[Tensor, "R 3"],
    directions: Float[Tensor, "R 3"],
    t_starts: Float[Tensor, " M"],
    t_ends: Float[Tensor, " M"],
    ray_indices: Int[Tensor, " M"],
) -> Float[Tensor, "M 3"]:
    """Midpoints ``o + d (t_start + t_end) / 2`` of packed samples on the rays ``ray_indices``."""
    return origins[ray_indices] + directions[ray_indices] * ((t_starts + t_ends) / 2.0)[:, None]


@dataclass
class PackedSamples:
    """Samples of many rays, flattened and sorted by ray.

    ``step_indices`` (torch marcher only) locate each sample in a dense [num_rays, num_steps]
    layout, which lets transmittance be computed with batched cumulative sums on any device.
    """

    ray_indices: Int[Tensor, " M"]
    t_starts: Float[Tensor, " M"]
    t_ends: Float[Tensor, " M"]
    step_indices: Optional[Int[Tensor, " M"]] = None
    num_steps: int = 0

    def midpoints(self) -> Float[Tensor, "M 1"]:
        """Distance of each sample's midpoint along its ray."""
        return ((self.t_starts + self.t_ends) / 2.0)[:, None]

    def positions(self, origins: Float[Tensor, "R 3"], directions: Float[Tensor, "R 3"]) -> Float[Tensor, "M 3"]:
        """World positions of the samples' midpoints."""
        return sample_points(origins, directions, self.t_starts, self.t_ends, self.ray_indices)

    def select(self, keep: Bool[Tensor, " M"]) -> "PackedSamples":
        """The samples where ``keep`` is True (order kept)."""
        steps = None if self.step_indices is None else self.step_indices[keep]
        return PackedSamples(self.ray_indices[keep], self.t_starts[keep], self.t_ends[keep], steps, self.num_steps)


@functools.lru_cache(maxsize=1)
def nerfacc_cuda_available() -> bool:
    """Whether nerfacc's CUDA kernels can be loaded (they are built on first use)."""
    if not torch.cuda.is_available():
        return False
    try:
        from nerfacc.cuda._backend import _C  # noqa: F401  pylint: disable=import-outside-toplevel

        return _C is not None
    except Exception:  # pylint: disable=broad-except
        return False


def step_boundaries(
    t_lo: float, t_hi: float, step: float, cone_angle: float, device: torch.device
) -> Float[Tensor, " S"]:
    """Sample boundaries from t_lo to t_hi: constant ``step``, or growing as t * cone_angle."""
    if cone_angle <= 0.0:
        count = max(int((t_hi - t_lo) / step) + 1, 1)
        return t_lo + step * torch.arange(count + 1, device=device, dtype=torch.float32)
    values, t = [t_lo], t_lo
    while t < t_hi:
        t = t + max(t * cone_angle, step)
        values.append(t)
    if len(values) == 1:
        values.append(t_lo + step)
    return torch.tensor(values, device=device, dtype=torch.float32)


def occupied(estimator: nerfacc.OccGridEstimator, points: Float[Tensor, "*bs 3"]) -> Tensor:
    """Whether ``points`` lie in an occupied cell of the finest grid level containing them.

    Boolean with the batch shape; False outside every level.
    """
    aabbs = estimator.aabbs  # [L, 6], nested: level l+1 encloses level l
    res = estimator.resolution.to(points.device)
    unit = (points[..., None, :] - aabbs[:, :3]) / (aabbs[:, 3:] - aabbs[:, :3])  # [*bs, L, 3]
    inside_level = ((unit >= 0.0) & (unit < 1.0)).all(dim=-1)  # [*bs, L]
    num_inside = inside_level.sum(dim=-1)
    inside = num_inside > 0
    level = (aabbs.shape[0] - num_inside).clamp(max=aabbs.shape[0] - 1)  # finest containing level
    unit_at_level = torch.gather(unit, -2, level[..., None, None].expand(*level.shape, 1, 3))[..., 0, :]
    cell = (unit_at_level * res).long().clamp(min=0)
    cell = torch.minimum(cell, res - 1)
    occ = estimator.binaries[level, cell[..., 0], cell[..., 1], cell[..., 2]]
    return occ & inside


@torch.no_grad()
def march_torch(
    estimator: nerfacc.OccGridEstimator,
    origins: Float[Tensor, "R 3"],
    directions: Float[Tensor, "R 3"],
    near_plane: float,
    far_plane: float,
    render_step_size: float,
    cone_angle: float = 0.0,
    stratified: bool = False,
    sigma_fn: Optional[SigmaFn] = None,
    early_stop_eps: float = 1e-4,
    alpha_thre: float = 0.0,
) -> PackedSamples:
    """Pure-torch equivalent of ``OccGridEstimator.sampling`` (same arguments, same meaning)."""
    num_rays, device = origins.shape[0], origins.device
    t_enter, t_exit = ray_box_intersect(origins, directions, estimator.aabbs[-1].view(2, 3))
    t_min = t_enter.clamp(min=near_plane)
    t_max = t_exit.clamp(max=far_plane)
    hit = t_max > t_min
    if not bool(hit.any()):
        empty = torch.zeros(0, device=device)
        return PackedSamples(empty.long(), empty, empty, empty.long(), 1)
    bounds = step_boundaries(float(t_min[hit].min()), float(t_max[hit].max()), render_step_size, cone_angle, device)
    deltas = bounds[1:] - bounds[:-1]  # [S]
    offsets = torch.rand(num_rays, 1, device=device) if stratified else torch.zeros(num_rays, 1, device=device)
    t_starts = bounds[None, :-1] + offsets * deltas[None]  # [R, S]
    t_ends = t_starts + deltas[None]
    t_mids = 0.5 * (t_starts + t_ends)
    valid = (t_mids >= t_min[:, None]) & (t_mids <= t_max[:, None])
    points = origins[:, None, :] + t_mids[..., None] * directions[:, None, :]
    mask = valid & occupied(estimator, points)
    if sigma_fn is not None and (early_stop_eps > 0.0 or alpha_thre > 0.0):
        ray_idx, step_idx = mask.nonzero(as_tuple=True)
        sigmas = torch.zeros_like(t_starts)
        if ray_idx.numel() > 0:
            sigmas[ray_idx, step_idx] = sigma_fn(t_starts[ray_idx, step_idx], t_ends[ray_idx, step_idx], ray_idx)
        mask = mask & dense_visibility(estimator, t_starts, t_ends, sigmas, early_stop_eps, alpha_thre)
    ray_idx, step_idx = mask.nonzero(as_tuple=True)
    return PackedSamples(
        ray_indices=ray_idx,
        t_starts=t_starts[ray_idx, step_idx],
        t_ends=t_ends[ray_idx, step_idx],
        step_indices=step_idx,
        num_steps=t_starts.shape[1],
    )


def dense_visibility(
    estimator: nerfacc.OccGridEstimator,
    t_starts: Float[Tensor, "R S"],
    t_ends: Float[Tensor, "R S"],
    sigmas: Float[Tensor, "R S"],
    early_stop_eps: float,
    alpha_thre: float,
) -> Bool[Tensor, "R S"]:
    """nerfacc's sample filter on a dense layout: False behind an opaque surface or nearly transparent.

    ``alpha_thre`` is capped by the grid's mean occupancy, as nerfacc's ``OccGridEstimator.sampling`` does.
    """
    alpha_thre = min(alpha_thre, float(estimator.occs.mean()))
    return nerfacc.render_visibility_from_density(
        t_starts=t_starts, t_ends=t_ends, sigmas=sigmas, early_stop_eps=early_stop_eps, alpha_thre=alpha_thre
    )


def filter_visible(
    estimator: nerfacc.OccGridEstimator,
    samples: PackedSamples,
    sigmas: Float[Tensor, " M"],
    num_rays: int,
    early_stop_eps: float,
    alpha_thre: float,
) -> Bool[Tensor, " M"]:
    """Which of the torch marcher's packed ``samples`` (marched without ``sigma_fn``) pass the filter.

    The same filter ``march_torch`` applies with a ``sigma_fn``, from densities already computed:
    an inference renderer evaluates the field once and keeps the samples this marks.
    """
    assert samples.step_indices is not None, "filter_visible needs the torch marcher's dense step indices"
    if early_stop_eps <= 0.0 and alpha_thre <= 0.0:
        return torch.ones_like(sigmas, dtype=torch.bool)
    shape = (num_rays, samples.num_steps)
    index = (samples.ray_indices, samples.step_indices)
    dense = [torch.zeros(shape, device=sigmas.device).index_put(index, v) for v in (samples.t_starts, samples.t_ends)]
    dense_sigmas = torch.zeros(shape, device=sigmas.device).index_put(index, sigmas.float())
    return dense_visibility(estimator, dense[0], dense[1], dense_sigmas, early_stop_eps, alpha_thre)[index]


def render_weights(samples: PackedSamples, sigmas: Float[Tensor, " M"], num_rays: int) -> Float[Tensor, " M"]:
    """Volume-rendering weights T_i * alpha_i of packed samples (differentiable in ``sigmas``)."""
    if samples.step_indices is None:  # nerfacc-packed samples: CUDA scan kernels
        return nerfacc.render_weight_from_density(
            t_starts=samples.t_starts,
            t_ends=samples.t_ends,
            sigmas=sigmas,
            ray_indices=samples.ray_indices,
            n_rays=num_rays,
        )[0]
    shape = (num_rays, samples.num_steps)
    index = (samples.ray_indices, samples.step_indices)
    dense_sigmas = torch.zeros(shape, device=sigmas.device, dtype=sigmas.dtype).index_put(index, sigmas)
    dense_starts = torch.zeros(shape, device=sigmas.device).index_put(index, samples.t_starts)
    dense_ends = torch.zeros(shape, device=sigmas.device).index_put(index, samples.t_ends)
    weights = nerfacc.render_weight_from_density(t_starts=dense_starts, t_ends=dense_ends, sigmas=dense_sigmas)[0]
    return weights[index]


def march(
    estimator: nerfacc.OccGridEstimator,
    origins: Float[Tensor, "R 3"],
    directions: Float[Tensor, "R 3"],
    use_nerfacc: bool,
    **kwargs,
) -> PackedSamples:
    """Dispatch to nerfacc's CUDA marcher or the torch marcher (same keyword arguments)."""
    if use_nerfacc:
        ray_indices, t_starts, t_ends = estimator.sampling(origins, directions, **kwargs)
        return PackedSamples(ray_indices.long(), t_starts, t_ends)
    return march_torch(estimator, origins, directions, **kwargs)
