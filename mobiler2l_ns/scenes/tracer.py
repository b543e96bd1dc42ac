"""The analytic ray tracer: nearest hits, Lambertian shading with hard shadows, pinhole cameras with
jittered supersampling.

Camera conventions follow nerfstudio / Blender: camera-to-world matrices are OpenGL style (the
camera looks down its local -Z axis, +Y is up, +X is right), pinhole intrinsics, pixel
``(row v, col u)`` covers ``[u, u+1) x [v, v+1)`` so its centre is at ``(u + 0.5, v + 0.5)``.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from mobiler2l_ns.scenes.arrays import FloatArray, normalize, vec3
from mobiler2l_ns.scenes.primitives import EPS, Scene

MAX_RAYS_PER_CHUNK = 1 << 18
"""Rays traced at once; bounds peak memory for large images."""


def trace(scene: Scene, o: FloatArray, d: FloatArray) -> tuple[FloatArray, NDArray[np.int64]]:
    """Nearest hit for rays o/d (N, 3): returns t (N,) (inf = miss) and primitive index (N,)."""
    ts = np.stack([prim.intersect(o, d) for prim in scene.primitives], axis=0)  # (P, N)
    idx = np.argmin(ts, axis=0)
    t = ts[idx, np.arange(o.shape[0])]
    return t, idx


def occluded(scene: Scene, o: FloatArray, d: FloatArray) -> NDArray[np.bool_]:
    """Whether rays o/d (N, 3) hit anything at all (shadow test) -> (N,) bool."""
    blocked = np.zeros(o.shape[0], dtype=bool)
    for prim in scene.primitives:
        blocked |= np.isfinite(prim.intersect(o, d))
    return blocked


def shade(scene: Scene, o: FloatArray, d: FloatArray) -> tuple[FloatArray, NDArray[np.bool_]]:
    """Linear RGB radiance (N, 3) and hit mask (N,) for rays o/d (N, 3).

    Lambertian surfaces, one directional light with hard shadows, plus ambient.
    Missed rays get colour 0.
    """
    t, idx = trace(scene, o, d)
    hit = np.isfinite(t)
    rgb = np.zeros_like(o)
    if not hit.any():
        return rgb, hit
    light = vec3(scene.light_dir)
    normals = np.zeros_like(o)
    albedo = np.zeros_like(o)
    p_all = o + np.where(hit, t, 0.0)[:, None] * d
    for k, prim in enumerate(scene.primitives):
        sel = hit & (idx == k)
        if not sel.any():
            continue
        p = p_all[sel]
        n = prim.normal(p)
        # face the normal towards the viewer (matters for planes seen from behind)
        flip = np.einsum("ij,ij->i", n, d[sel]) > 0
        n[flip] *= -1.0
        normals[sel] = n
        # evaluate solid textures just inside the surface: stable on faces lying on texture cell borders
        albedo[sel] = prim.texture(p - EPS * n)
    ph, nh = p_all[hit], normals[hit]
    lambert = np.clip(nh @ light, 0.0, None)
    lit = lambert > 0
    if lit.any():
        shadow_o = ph[lit] + 10 * EPS * nh[lit]
        shadow_d = np.broadcast_to(light, shadow_o.shape)
        in_shadow = occluded(scene, shadow_o, np.ascontiguousarray(shadow_d))
        lam = lambert[lit]
        lam[in_shadow] = 0.0
        lambert[lit] = lam
    intensity = scene.ambient + (1.0 - scene.ambient) * lambert
    rgb[hit] = albedo[hit] * intensity[:, None]
    return rgb, hit


def focal_from_fov(width: int, camera_angle_x: float) -> float:
    """Pinhole focal length in pixels for horizontal FOV ``camera_angle_x`` (radians)."""
    return 0.5 * width / math.tan(0.5 * camera_angle_x)


def camera_rays(
    c2w: FloatArray, fx: float, fy: float, cx: float, cy: float, pixel_offsets: FloatArray
) -> tuple[FloatArray, FloatArray]:
    """World-space rays through sub-pixel positions.

    ``pixel_offsets`` is (H, W, S, 2) with (du, dv) in [0, 1) inside each pixel;
    the ray for pixel (v, u) goes through image point (u + du, v + dv).
    Returns origins and unit directions, each (H * W * S, 3).
    """
    h, w = pixel_offsets.shape[:2]
    u = np.arange(w, dtype=np.float64)[None, :, None] + pixel_offsets[..., 0]
    v = np.arange(h, dtype=np.float64)[:, None, None] + pixel_offsets[..., 1]
    dirs_cam = np.stack([(u - cx) / fx, -(v - cy) / fy, -np.ones_like(u)], axis=-1).reshape(-1, 3)
    d = normalize(dirs_cam @ c2w[:3, :3].T)
    o = np.broadcast_to(c2w[:3, 3], d.shape).copy()
    return o, d


def jittered_offsets(height: int, width: int, supersample: int, rng: np.random.Generator) -> FloatArray:
    """Stratified jittered sub-pixel offsets, (H, W, supersample**2, 2) in [0, 1)."""
    s = supersample
    grid = np.stack(np.meshgrid(np.arange(s), np.arange(s), indexing="xy"), axis=-1).reshape(-1, 2)  # (S, 2)
    jitter = rng.random((height, width, s * s, 2))
    return (grid[None, None, :, :] + jitter) / s


def render_view(
    scene: Scene,
    c2w: FloatArray,
    width: int,
    height: int,
    fx: float,
    fy: float,
    cx: float,
    cy: float,
    rng: np.random.Generator,
    supersample: int = 2,
) -> FloatArray:
    """Render one view to straight (un-premultiplied) sRGB + coverage alpha, (H, W, 4) in [0, 1]."""
    offsets = jittered_offsets(height, width, supersample, rng)
    o, d = camera_rays(c2w, fx, fy, cx, cy, offsets)
    n = o.shape[0]
    rgb = np.empty((n, 3))
    hit = np.empty(n, dtype=bool)
    for start in range(0, n, MAX_RAYS_PER_CHUNK):
        sl = slice(start, start + MAX_RAYS_PER_CHUNK)
        rgb[sl], hit[sl] = shade(scene, o[sl], d[sl])
    s = supersample * supersample
    rgb = rgb.reshape(height, width, s, 3)
    hitf = hit.reshape(height, width, s).astype(np.float64)
    count = hitf.sum(axis=2)
    linear = rgb.sum(axis=2) / np.maximum(count, 1.0)[..., None]  # mean over covered sub-samples
    srgb = np.clip(linear, 0.0, 1.0) ** (1.0 / 2.2)
    alpha = count / s
    return np.concatenate([srgb, alpha[..., None]], axis=-1)
