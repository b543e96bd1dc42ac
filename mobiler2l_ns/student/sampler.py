"""Where the MobileR2L student looks: K points on each ray of a low-resolution ray grid.

The student renders an ``H x W`` image from rays cast on an ``h x w = ceil(H/s) x ceil(W/s)``
grid (``s``: the super-resolution factor): the target camera with its intrinsics divided by
``s``. Low-res pixel ``(i, j)`` is the ray through the centre of the ``s x s`` block of target
pixels ``[j*s, (j+1)*s) x [i*s, (i+1)*s)``. When ``H`` or ``W`` is not a multiple of ``s`` the grid
covers a padded ``h*s x w*s`` image whose top-left ``H x W`` is the requested one.

Conventions (the ONNX exporter and the browser runtime reproduce them with these functions):

* Camera frame: OpenGL / nerfstudio. The camera looks down -Z, +X right, +Y up. Pixel ``(u, v)``
  (column, row) has its centre at ``(u + 0.5, v + 0.5)``. The direction through it is
  ``((u + 0.5 - cx) / fx, -(v + 0.5 - cy) / fy, -1)``: NOT normalised, so the ray parameter is
  the z-depth in front of the camera (as in NeRF / R2L, where Blender's near 2 / far 6 are z-depths).
* World points: ``p = t + (R @ d) * depth`` with ``R, t`` the camera-to-world rotation / centre.
* Depths: K stratified bins between near and far. Training draws one uniform jitter per bin per
  ray; evaluation uses the bin midpoints ``near + (far - near) * (k + 0.5) / K`` (deterministic).
* NDC (forward-facing scenes, optional): the NeRF/LLFF NDC ray of each world ray with near plane
  ``n = 1``; points are linear in NDC depth ``t' in [0, 1)`` with the same K bins on ``[0, 1)``.

Every function here is a pure tensor function of a camera pose and intrinsics (no nerfstudio
state), so an exporter can call them, or trace them, with a bare ``[3, 4]`` pose.
"""

from __future__ import annotations

from typing import Optional, Tuple, Union

import torch
from jaxtyping import Float
from torch import Tensor

from mobiler2l_ns.geometry import ray_box_intersect

Scalar = Union[float, Float[Tensor, "*batch"]]

DATA_NEAR_FAR_KEY = "mobiler2l_near_far"
"""Dataset-metadata key of the ``(near, far, source)`` the student datamanager derives from the
training data (:func:`points_near_far`, else the scene box) for ``near_far_from_data`` models."""


OCCUPANCY_KEY = "mobiler2l_occupancy"
"""Dataset-metadata key of the ``(occupancy [G, G, G], grid box [2, 3], source)`` a datamanager takes from
the teacher, read by models with ``occupancy_sampling``."""

SAMPLE_BOX_KEY = "mobiler2l_sample_box"
"""Dataset-metadata key of the ``(box [6], source)`` a datamanager derives for the student's sampling box
(the teacher's occupied region), read by models without a configured ``sample_box``."""


def lowres_grid_size(height: int, width: int, sr_factor: int) -> Tuple[int, int]:
    """Size ``(h, w)`` of the low-res ray grid that covers an ``height x width`` image.

    ``h = ceil(height / s)``, ``w = ceil(width / s)``; raises ValueError for an empty image.
    """
    if height < 1 or width < 1:
        raise ValueError(f"cannot render a {height}x{width} (HxW) image: height and width must be >= 1")
    if sr_factor < 1:
        raise ValueError(f"super-resolution factor must be >= 1, got {sr_factor}")
    return -(-height // sr_factor), -(-width // sr_factor)


def lowres_pixel_directions(
    fx: Scalar, fy: Scalar, cx: Scalar, cy: Scalar, h: int, w: int
) -> Float[Tensor, "*batch h w 3"]:
    """Camera-frame ray directions (z = -1, OpenGL) through the pixel centres of an ``h x w`` grid.

    The intrinsics are those of the grid itself (for the student: the target camera's divided by
    the super-resolution factor). Each may be a float or a tensor of shape ``[*batch]``; the result
    is ``[*batch, h, w, 3]`` (``[h, w, 3]`` for floats).

    Returns ``d[v, u] = ((u + 0.5 - cx) / fx, -(v + 0.5 - cy) / fy, -1)``.
    """
    ref = next((x for x in (fx, fy, cx, cy) if isinstance(x, Tensor)), None)
    device = ref.device if ref is not None else None
    dtype = ref.dtype if ref is not None and ref.is_floating_point() else torch.float32
    fx, fy, cx, cy = (torch.as_tensor(x, device=device, dtype=dtype) for x in (fx, fy, cx, cy))
    u = torch.arange(w, device=device, dtype=dtype) + 0.5  # [w]
    v = torch.arange(h, device=device, dtype=dtype) + 0.5  # [h]
    x = (u - cx[..., None]) / fx[..., None]  # [*batch, w]
    y = -(v - cy[..., None]) / fy[..., None]  # [*batch, h]
    batch = torch.broadcast_shapes(x.shape[:-1], y.shape[:-1])
    x = x[..., None, :].expand(*batch, h, w)
    y = y[..., :, None].expand(*batch, h, w)
    return torch.stack([x, y, -torch.ones_like(x)], dim=-1)


def sample_fractions(
    num_points: int,
    shape: Tuple[int, ...],
    jitter: bool,
    device: Optional[torch.device] = None,
    generator: Optional[torch.Generator] = None,
) -> Float[Tensor, "*shape K"]:
    """Positions of K samples in ``[0, 1)``, one per equal bin: ``(k + u_k) / K``.

    ``u_k ~ U[0, 1)`` drawn independently for every entry of ``shape`` (every ray) when ``jitter``,
    else ``u_k = 0.5`` (bin midpoints, broadcast over ``shape``).
    """
    k = torch.arange(num_points, device=device, dtype=torch.float32)
    if jitter:
        u = torch.rand(*shape, num_points, device=device, generator=generator)
        return (k + u) / num_points
    return ((k + 0.5) / num_points).expand(*shape, num_points)


def depths_between(
    near: Float[Tensor, "*batch"], far: Float[Tensor, "*batch"], fractions: Float[Tensor, "*batch h w K"]
) -> Float[Tensor, "*batch h w K"]:
    """Depths ``near + (far - near) * fractions`` with per-camera ``near`` / ``far`` of shape ``[*batch]``."""
    near = near[..., None, None, None]
    far = far[..., None, None, None]
    return near + (far - near) * fractions


def world_directions(
    R: Float[Tensor, "*batch 3 3"], dirs_cam: Float[Tensor, "*batch h w 3"]
) -> Float[Tensor, "*batch h w 3"]:
    """Camera-frame ray directions rotated into the world: ``R @ d`` for every ray."""
    return torch.matmul(dirs_cam, R.transpose(-1, -2).unsqueeze(-3))


def points_from_pose(
    R: Float[Tensor, "*batch 3 3"],
    t: Float[Tensor, "*batch 3"],
    dirs_cam: Float[Tensor, "*batch h w 3"],
    depths: Float[Tensor, "*batch h w K"],
) -> Float[Tensor, "*batch h w K 3"]:
    """World points ``t + (R @ d) * depth`` for every ray direction ``d`` and each of its K depths.

    ``R`` / ``t``: camera-to-world rotation and camera centre. ``dirs_cam`` may be ``[h, w, 3]``
    (shared by the batch) and ``depths`` may be ``[K]`` (shared by all rays): everything broadcasts.
    """
    dirs_world = world_directions(R, dirs_cam)  # [*batch, h, w, 3]
    return t[..., None, None, None, :] + dirs_world[..., None, :] * depths[..., None]


def ray_box_near_far(
    R: Float[Tensor, "*batch 3 3"],
    t: Float[Tensor, "*batch 3"],
    dirs_cam: Float[Tensor, "*batch h w 3"],
    aabb: Float[Tensor, "2 3"],
    min_near: float,
) -> Tuple[Float[Tensor, "*batch h w"], Float[Tensor, "*batch h w"]]:
    """Per-ray near / far z-depths: where each ray ``t + (R d) z`` enters and leaves the box ``aabb``.

    ``near >= min_near``; a ray that misses the box gets ``far = near`` (all its points coincide).
    The slab test is :func:`mobiler2l_ns.geometry.ray_box_intersect` (unnormalised directions, so
    its distances are z-depths).
    """
    enter, leave = ray_box_intersect(t[..., None, None, :], world_directions(R, dirs_cam), aabb)
    near = enter.clamp_min(min_near)
    return near, torch.maximum(leave, near)


def occupied_near_far(
    R: Float[Tensor, "*batch 3 3"],
    t: Float[Tensor, "*batch 3"],
    dirs_cam: Float[Tensor, "*batch h w 3"],
    box: Float[Tensor, "2 3"],
    occupancy: Float[Tensor, "G G G"],
    grid_box: Float[Tensor, "2 3"],
    steps: int,
    min_near: float,
) -> Tuple[Float[Tensor, "*batch h w"], Float[Tensor, "*batch h w"]]:
    """Per-ray near / far z-depths around what an occupancy grid marks occupied along the ray.

    The ray's chord through ``box`` (:func:`ray_box_near_far`) is cut into ``steps`` equal steps;
    the step midpoints are looked up in ``occupancy`` (``[G, G, G]``, x-major, 1 = occupied, over
    ``grid_box``; a plain gather); near / far are the start of the first and the end of the last
    occupied step. A ray through no occupied cell keeps ``far = near`` at the chord's end.
    """
    near, far = ray_box_near_far(R, t, dirs_cam, box, min_near)  # [*batch, h, w]
    step = (far - near) / steps
    k = torch.arange(steps, device=near.device, dtype=near.dtype)
    depths = near[..., None] + step[..., None] * (k + 0.5)  # [*batch, h, w, M]
    points = points_from_pose(R, t, dirs_cam, depths)  # [*batch, h, w, M, 3]
    g = occupancy.shape[0]
    cell = ((points - grid_box[0]) / (grid_box[1] - grid_box[0]) * g).floor().clamp(0, g - 1).long()
    inside = ((points >= grid_box[0]) & (points <= grid_box[1])).all(dim=-1)
    index = (cell[..., 0] * g + cell[..., 1]) * g + cell[..., 2]
    occupied = (occupancy.reshape(-1)[index.reshape(-1)].reshape(index.shape) > 0.5) & inside  # [*batch, h, w, M]
    first = torch.where(occupied, k, torch.full_like(k, steps)).amin(dim=-1)
    last = torch.where(occupied, k, torch.full_like(k, -1)).amax(dim=-1)
    hit = last >= 0
    ray_near = torch.where(hit, near + step * first, far)
    ray_far = torch.where(hit, near + step * (last + 1.0), far)
    return ray_near, ray_far


def ndc_rays(
    origins: Float[Tensor, "*rays 3"],
    directions: Float[Tensor, "*rays 3"],
    ndc_scale: Tuple[float, float],
    near_plane: float = 1.0,
) -> Tuple[Float[Tensor, "*rays 3"], Float[Tensor, "*rays 3"]]:
    """NeRF/LLFF normalised-device-coordinate rays (Mildenhall et al. 2020, ``ndc_rays``).

    ``ndc_scale = (ax, ay) = (2 fx / W, 2 fy / H)`` of the reference camera that defines the NDC
    frustum (the ``-1 / (W / (2 focal))`` factors of NeRF's formula). The world frame must be the
    LLFF one: cameras look roughly down world -Z and the scene lies beyond ``z = -near_plane``.
    Each ray is first moved to the near plane; the returned NDC ray ``o' + t' d'`` spans the
    frustum from the near plane (``t' = 0``) to infinity (``t' = 1``).
    """
    ax, ay = ndc_scale
    t_near = -(near_plane + origins[..., 2]) / directions[..., 2]
    o = origins + t_near[..., None] * directions
    ox, oy, oz = o.unbind(-1)
    dx, dy, dz = directions.unbind(-1)
    o_ndc = torch.stack([-ax * ox / oz, -ay * oy / oz, 1.0 + 2.0 * near_plane / oz], dim=-1)
    d_ndc = torch.stack([-ax * (dx / dz - ox / oz), -ay * (dy / dz - oy / oz), -2.0 * near_plane / oz], dim=-1)
    return o_ndc, d_ndc


def ndc_points_from_pose(
    R: Float[Tensor, "*batch 3 3"],
    t: Float[Tensor, "*batch 3"],
    dirs_cam: Float[Tensor, "*batch h w 3"],
    ndc_depths: Float[Tensor, "*batch h w K"],
    ndc_scale: Tuple[float, float],
    near_plane: float = 1.0,
) -> Float[Tensor, "*batch h w K 3"]:
    """NDC points ``o' + t' d'`` (see :func:`ndc_rays`) at NDC depths ``t' in [0, 1)`` for every ray."""
    dirs_world = world_directions(R, dirs_cam)  # [*batch, h, w, 3]
    origins = t[..., None, None, :].expand_as(dirs_world)
    o_ndc, d_ndc = ndc_rays(origins, dirs_world, ndc_scale, near_plane)
    return o_ndc[..., None, :] + d_ndc[..., None, :] * ndc_depths[..., None]


def scene_box_near_far(
    centres: Float[Tensor, "*batch 3"], aabb: Float[Tensor, "2 3"], min_near: float
) -> Tuple[Float[Tensor, "*batch"], Float[Tensor, "*batch"]]:
    """Per-camera near / far from a scene box: distance to the box centre -/+ the box radius.

    The radius is half the box diagonal (the box's bounding sphere); ``near`` is clamped to
    ``>= min_near`` (a camera inside the box starts sampling just in front of itself).
    """
    aabb = aabb.to(centres)
    box_centre = aabb.mean(dim=0)
    radius = 0.5 * torch.linalg.norm(aabb[1] - aabb[0])
    dist = torch.linalg.norm(centres - box_centre, dim=-1)
    near = (dist - radius).clamp_min(min_near)
    far = torch.maximum(dist + radius, near + min_near)
    return near, far


def points_near_far(
    c2w: Float[Tensor, "N 3 4"],
    intrinsics: Float[Tensor, "N 6"],
    points: Float[Tensor, "P 3"],
    percentiles: Tuple[float, float] = (1.0, 99.0),
    min_points: int = 8,
) -> Tuple[Float[Tensor, "N"], Float[Tensor, "N"]]:  # noqa: F821
    """Per-camera near / far z-depths of the sparse points each camera sees (LLFF's ``poses_bounds``).

    ``intrinsics`` rows are ``(fx, fy, cx, cy, width, height)``. A point counts for a camera when it
    lies in front of it and projects inside its image; near / far are the given percentiles of those
    points' z-depths. Cameras that see fewer than ``min_points`` points get NaN.
    """
    near = torch.full((c2w.shape[0],), float("nan"), dtype=torch.float64)
    far = near.clone()
    pts = points.double()
    q = torch.tensor([p / 100.0 for p in percentiles], dtype=torch.float64)
    for i in range(c2w.shape[0]):
        rotation, centre = c2w[i, :, :3].double(), c2w[i, :, 3].double()
        local = (pts - centre) @ rotation  # camera frame (OpenGL: looking down -Z)
        depth = -local[:, 2]
        fx, fy, cx, cy, width, height = intrinsics[i].double().tolist()
        ahead = depth > 1e-6
        u = cx + fx * local[:, 0] / depth.clamp_min(1e-6)
        v = cy - fy * local[:, 1] / depth.clamp_min(1e-6)
        seen = ahead & (u >= 0) & (u <= width) & (v >= 0) & (v <= height)
        if int(seen.sum()) >= min_points:
            near[i], far[i] = torch.quantile(depth[seen], q)
    return near.to(c2w.dtype), far.to(c2w.dtype)


def ndc_depth_to_camera_depth(ndc_depth: float, near_plane: float = 1.0) -> float:
    """World z-distance in front of the near plane's origin of NDC depth ``t'`` (``n / (1 - t')``)."""
    if not 0.0 <= ndc_depth < 1.0:
        raise ValueError(f"NDC depth must be in [0, 1), got {ndc_depth}")
    return near_plane / (1.0 - ndc_depth)


__all__ = [
    "lowres_grid_size",
    "lowres_pixel_directions",
    "sample_fractions",
    "depths_between",
    "world_directions",
    "points_from_pose",
    "ray_box_near_far",
    "occupied_near_far",
    "ndc_rays",
    "ndc_points_from_pose",
    "scene_box_near_far",
    "points_near_far",
    "ndc_depth_to_camera_depth",
]
