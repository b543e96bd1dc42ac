"""The pure-torch occupancy-grid marcher renders what a dense brute-force volume render gives."""

from __future__ import annotations

import nerfacc
import pytest
import torch

from mobiler2l_ns.geometry import ray_box_intersect
from mobiler2l_ns.teacher.marcher import filter_visible, march_torch, occupied, render_weights

AABB = torch.tensor([-1.0, -1.0, -1.0, 1.0, 1.0, 1.0])
RADIUS = 0.45
CENTER = torch.tensor([0.2, -0.1, 0.05])
STEP = 2 * 3**0.5 / 256


def sphere_density(points: torch.Tensor) -> torch.Tensor:
    """A solid ball of varying density (zero outside it)."""
    r = (points - CENTER).norm(dim=-1)
    return torch.where(r < RADIUS, 8.0 + 40.0 * (RADIUS - r), torch.zeros_like(r))


def sphere_color(points: torch.Tensor) -> torch.Tensor:
    return torch.sigmoid(4 * (points - CENTER))


def exact_grid(resolution: int = 32) -> nerfacc.OccGridEstimator:
    """Occupancy grid whose occupied cells are exactly those the ball touches."""
    est = nerfacc.OccGridEstimator(roi_aabb=AABB, resolution=resolution, levels=1)
    size = (AABB[3:] - AABB[:3]) / resolution
    lo = AABB[:3] + est.grid_coords.float() * size
    nearest = torch.maximum(torch.minimum(CENTER, lo + size), lo)
    est.binaries = ((nearest - CENTER).norm(dim=-1) < RADIUS).view(est.binaries.shape)
    return est


def rays(n: int = 300, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    origins = torch.nn.functional.normalize(torch.randn(n, 3, generator=g), dim=-1) * 3.0
    targets = CENTER + 0.6 * (torch.rand(n, 3, generator=g) - 0.5)
    return origins, torch.nn.functional.normalize(targets - origins, dim=-1)


def brute_force(origins, directions):
    """Dense render: every step through the box, no skipping, no early termination."""
    t0, t1 = ray_box_intersect(origins, directions, AABB.view(2, 3))
    t0 = t0.clamp(min=0.0)
    count = int(((t1 - t0).max() / STEP).item()) + 2
    starts = t0.min() + STEP * torch.arange(count)[None].float().expand(len(origins), -1)
    ends = starts + STEP
    mids = (starts + ends) / 2
    inside = (mids >= t0[:, None]) & (mids <= t1[:, None])
    pts = origins[:, None] + mids[..., None] * directions[:, None]
    sigma = sphere_density(pts) * inside
    weights = nerfacc.render_weight_from_density(t_starts=starts, t_ends=ends, sigmas=sigma)[0]
    return (weights[..., None] * sphere_color(pts)).sum(1), weights.sum(1)


def render_marched(origins, directions, est, **kwargs):
    def sigma_fn(t_starts, t_ends, ray_indices):
        mids = ((t_starts + t_ends) / 2)[:, None]
        return sphere_density(origins[ray_indices] + directions[ray_indices] * mids)

    samples = march_torch(
        est, origins, directions, near_plane=0.0, far_plane=1e3, render_step_size=STEP, sigma_fn=sigma_fn, **kwargs
    )
    mids = ((samples.t_starts + samples.t_ends) / 2)[:, None]
    pts = origins[samples.ray_indices] + directions[samples.ray_indices] * mids
    weights = render_weights(samples, sphere_density(pts), len(origins))
    rgb = nerfacc.accumulate_along_rays(weights, sphere_color(pts), samples.ray_indices, len(origins))
    acc = nerfacc.accumulate_along_rays(weights, None, samples.ray_indices, len(origins))
    return rgb, acc[:, 0], samples, pts


@pytest.mark.parametrize("early_stop_eps, tolerance", [(0.0, 1e-5), (1e-4, 1e-3)])
def test_marcher_matches_dense_volume_render(early_stop_eps, tolerance):
    """Stated tolerance: 1e-5 with no early termination, 1e-3 with the default eps of 1e-4."""
    origins, directions = rays()
    rgb_ref, acc_ref = brute_force(origins, directions)
    assert acc_ref.max() > 0.99 and acc_ref.min() < 0.5  # opaque and grazing rays both present
    rgb, acc, _, _ = render_marched(origins, directions, exact_grid(), early_stop_eps=early_stop_eps, alpha_thre=0.0)
    assert (rgb - rgb_ref).abs().max() <= tolerance
    assert (acc - acc_ref).abs().max() <= tolerance


def test_marcher_skips_empty_space_and_terminates_early():
    origins, directions = rays()
    est = exact_grid()
    _, _, all_samples, pts = render_marched(origins, directions, est, early_stop_eps=0.0, alpha_thre=0.0)
    assert bool(occupied(est, pts).all())  # every sample lies in an occupied cell
    dense_count = len(origins) * int(2 * 3.0 / STEP)
    assert len(all_samples.ray_indices) < 0.2 * dense_count
    _, _, early, _ = render_marched(origins, directions, est, early_stop_eps=1e-2, alpha_thre=0.0)
    assert len(early.ray_indices) < 0.7 * len(all_samples.ray_indices)


def reference_weights(samples, sigmas: torch.Tensor, num_rays: int) -> torch.Tensor:
    """``w_i = exp(-sum_{j<i} tau_j) (1 - exp(-tau_i))``, ``tau = sigma (t_end - t_start)``, ray by ray."""
    weights = []
    for ray in range(num_rays):
        tau = (sigmas * (samples.t_ends - samples.t_starts))[samples.ray_indices == ray]
        before = torch.cat([tau.new_zeros(1), torch.cumsum(tau, dim=0)[:-1]])
        weights.append(torch.exp(-before) * (1.0 - torch.exp(-tau)))
    return torch.cat(weights)


def test_render_weights_and_their_gradients_equal_volume_rendering():
    origins, directions = rays(20)
    samples = march_torch(exact_grid(), origins, directions, near_plane=0.0, far_plane=1e3, render_step_size=STEP)
    assert bool((samples.ray_indices[1:] >= samples.ray_indices[:-1]).all())  # packed by ray
    generator = torch.Generator().manual_seed(0)
    values = torch.rand(len(samples.ray_indices), generator=generator) * 60.0
    upstream = torch.randn(len(samples.ray_indices), generator=generator)
    sigmas, reference = values.clone().requires_grad_(), values.clone().requires_grad_()
    weights = render_weights(samples, sigmas, len(origins))
    expected = reference_weights(samples, reference, len(origins))
    torch.testing.assert_close(weights, expected, rtol=1e-5, atol=1e-6)
    (weights * upstream).sum().backward()
    (expected * upstream).sum().backward()
    torch.testing.assert_close(sigmas.grad, reference.grad, rtol=1e-4, atol=1e-6)
    assert float(reference.grad.abs().max()) > 1e-3  # the comparison is not between zeros


def test_grid_update_marks_the_ball_occupied():
    est = nerfacc.OccGridEstimator(roi_aabb=AABB, resolution=32, levels=1)
    for step in range(0, 64, 16):
        est.update_every_n_steps(step, lambda x: sphere_density(x)[:, None] * STEP, warmup_steps=1000)
    truth = exact_grid().binaries
    assert bool((est.binaries & ~truth).sum() == 0)  # nothing outside the ball
    size = (AABB[3:] - AABB[:3]) / 32
    centers = AABB[:3] + (est.grid_coords.float() + 0.5) * size
    interior = ((centers - CENTER).norm(dim=-1) + size.norm() / 2 < RADIUS).view(truth.shape)
    assert interior.sum() > 100 and bool(est.binaries[interior].all())  # every cell inside the ball


@pytest.mark.parametrize("early_stop_eps, alpha_thre", [(1e-4, 0.0), (1e-4, 0.01), (0.0, 0.0)])
def test_filter_visible_keeps_exactly_the_samples_march_torch_keeps(early_stop_eps, alpha_thre):
    """One-pass inference (march without sigma_fn, then filter) == march with the density pass."""
    origins, directions = rays()
    est = exact_grid()
    kwargs = dict(early_stop_eps=early_stop_eps, alpha_thre=alpha_thre)
    _, _, reference, _ = render_marched(origins, directions, est, **kwargs)
    occupied_samples = march_torch(
        est, origins, directions, near_plane=0.0, far_plane=1e3, render_step_size=STEP, sigma_fn=None, **kwargs
    )
    mids = ((occupied_samples.t_starts + occupied_samples.t_ends) / 2)[:, None]
    sigmas = sphere_density(origins[occupied_samples.ray_indices] + directions[occupied_samples.ray_indices] * mids)
    keep = filter_visible(est, occupied_samples, sigmas, len(origins), **kwargs)
    kept = occupied_samples.select(keep)
    if early_stop_eps > 0.0:
        assert len(kept.ray_indices) < len(occupied_samples.ray_indices)  # the filter did something
    assert torch.equal(kept.ray_indices, reference.ray_indices)
    assert torch.equal(kept.step_indices, reference.step_indices)
    assert torch.equal(kept.t_starts, reference.t_starts)
