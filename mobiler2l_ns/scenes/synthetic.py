"""Deterministic procedural scenes rendered by a tiny analytic ray tracer.

The project ships its own redistributable test scenes instead of depending on
third-party datasets.  Everything here uses only numpy and Pillow.

Two capture layouts are provided:

* :func:`render_blender_scene` - a 360-degree "NeRF-synthetic" style capture of
  a small object (Z-up world, bounded well inside ``[-1.2, 1.2]^3``), written in
  the Blender format read by nerfstudio's ``blender-data`` parser (RGBA PNGs,
  transparent background).
* :func:`render_forward_facing_scene` - an LLFF-like forward-facing capture
  (Y-up world) in front of a textured back wall and floor, written in the
  ``nerfstudio-data`` format (``transforms.json`` + opaque RGB PNGs).

Camera conventions follow nerfstudio / Blender: camera-to-world matrices are
OpenGL style (the camera looks down its local -Z axis, +Y is up, +X is right),
pinhole intrinsics, pixel ``(row v, col u)`` covers ``[u, u+1) x [v, v+1)`` so
its centre is at ``(u + 0.5, v + 0.5)``.

Output is a pure function of the arguments (seeded ``numpy.random.Generator``
streams for poses and anti-aliasing jitter), so two runs with the same seed
produce byte-identical files on the same platform.

CLI::

    python -m mobiler2l_ns.scenes.synthetic blender OUT --size 64 --n-train 40 --n-val 4 --n-test 8 --seed 0
    python -m mobiler2l_ns.scenes.synthetic forward OUT --width 80 --height 60 --n-frames 20
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import io
import json
import math
import os
import re
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence, Union

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from mobiler2l_ns.utils.errors import OneLineArgumentParser

FloatArray = NDArray[np.float64]
Vec3 = tuple[float, float, float]
# A texture maps surface points (N, 3) (world space) to linear RGB albedo (N, 3) in [0, 1].
Texture = Callable[[FloatArray], FloatArray]

EPS = 1e-4
"""Minimum ray parameter counted as a hit / offset used to leave a surface."""

MAX_RAYS_PER_CHUNK = 1 << 18
"""Rays traced at once; bounds peak memory for large images."""

BLENDER_SPLITS = ("train", "val", "test")

_MIN_SIZE = 8

# --------------------------------------------------------------------------- #
# Textures (procedural, solid - no UV parameterisation needed)
# --------------------------------------------------------------------------- #


def _rgb(c: Sequence[float]) -> FloatArray:
    """Colour as a (3,) float array."""
    return np.asarray(c, dtype=np.float64).reshape(3)


def _mix(mask: NDArray[np.bool_], c1: FloatArray, c2: FloatArray) -> FloatArray:
    """Pick ``c1`` where ``mask`` (N,) is true and ``c2`` elsewhere -> (N, 3)."""
    return np.where(mask[:, None], c1[None, :], c2[None, :])


def checker3d(scale: float, c1: Sequence[float], c2: Sequence[float]) -> Texture:
    """Solid 3-D checkerboard with cubes of edge ``scale``; returns a texture (N,3)->(N,3)."""
    a, b = _rgb(c1), _rgb(c2)

    def tex(p: FloatArray) -> FloatArray:
        parity = np.floor(p / scale).astype(np.int64).sum(axis=1) % 2
        return _mix(parity == 0, a, b)

    return tex


def stripes(axis: int, period: float, c1: Sequence[float], c2: Sequence[float]) -> Texture:
    """Stripes perpendicular to world ``axis`` with the given ``period``; (N,3)->(N,3)."""
    a, b = _rgb(c1), _rgb(c2)

    def tex(p: FloatArray) -> FloatArray:
        band = np.floor(p[:, axis] / (0.5 * period)).astype(np.int64) % 2
        return _mix(band == 0, a, b)

    return tex


def sphere_checker(
    center: Vec3, pole_axis: int, n_lon: int, n_lat: int, c1: Sequence[float], c2: Sequence[float]
) -> Texture:
    """Beach-ball checker in longitude/latitude around ``pole_axis``; (N,3)->(N,3)."""
    a, b = _rgb(c1), _rgb(c2)
    c = _rgb(center)
    u_axis, v_axis = [i for i in range(3) if i != pole_axis]

    def tex(p: FloatArray) -> FloatArray:
        q = p - c[None, :]
        lon = np.arctan2(q[:, v_axis], q[:, u_axis])  # (-pi, pi]
        lat = np.arctan2(q[:, pole_axis], np.hypot(q[:, u_axis], q[:, v_axis]))  # [-pi/2, pi/2]
        i = np.floor((lon + math.pi) / (2 * math.pi) * n_lon).astype(np.int64)
        j = np.floor((lat + 0.5 * math.pi) / math.pi * n_lat).astype(np.int64)
        return _mix((i + j) % 2 == 0, a, b)

    return tex


def value_noise(seed: int, cell: float, octaves: int = 3) -> Texture:
    """Solid multi-octave value noise with random colours per lattice point; (N,3)->(N,3).

    Lattice points ``cell`` apart (halved per octave) carry colours from a seeded table, blended
    trilinearly with a smoothstep, contrast-stretched 2.5x about 0.5: a non-repeating texture with
    detail at several scales, which feature detectors such as SIFT (COLMAP) can match across views
    (checkers repeat too much).
    """
    rng = np.random.default_rng([seed, 7])
    perm = rng.permutation(256)
    table = rng.random((256, 3))

    def lattice(i: NDArray[np.int64], j: NDArray[np.int64], k: NDArray[np.int64]) -> FloatArray:
        return table[perm[(perm[(perm[i % 256] + j) % 256] + k) % 256]]

    def tex(p: FloatArray) -> FloatArray:
        out = np.zeros_like(p)
        amplitude, total = 1.0, 0.0
        for octave in range(octaves):
            q = p / (cell * 0.5**octave) + 17.0 * octave
            base = np.floor(q).astype(np.int64)
            f = q - base
            f = f * f * (3.0 - 2.0 * f)  # smoothstep
            layer = np.zeros_like(p)
            for corner in range(8):
                offset = np.array([(corner >> 2) & 1, (corner >> 1) & 1, corner & 1])
                weight = np.prod(np.where(offset[None, :] == 1, f, 1.0 - f), axis=1)
                c = base + offset[None, :]
                layer += weight[:, None] * lattice(c[:, 0], c[:, 1], c[:, 2])
            out += amplitude * layer
            total += amplitude
            amplitude *= 0.5
        return np.clip(0.5 + 2.5 * (out / total - 0.5), 0.0, 1.0)  # stretch: octave averaging flattens contrast

    return tex


def modulated(base: Texture, noise: Texture, strength: float = 0.6) -> Texture:
    """``base`` albedo scaled by ``(1 - strength) + strength * noise`` (per channel); (N,3)->(N,3)."""

    def tex(p: FloatArray) -> FloatArray:
        return base(p) * ((1.0 - strength) + strength * noise(p))

    return tex


# --------------------------------------------------------------------------- #
# Primitives.  ``intersect(o, d)`` takes ray origins / unit directions (N, 3)
# and returns the nearest hit distance t (N,) with ``inf`` for misses (t > EPS).
# ``normal(p)`` returns outward unit normals (N, 3) for points on the surface.
# --------------------------------------------------------------------------- #


def _nearest_positive(*ts: FloatArray) -> FloatArray:
    """Elementwise smallest candidate t (each (N,)) that is > EPS, else inf -> (N,)."""
    out = np.full(ts[0].shape, np.inf)
    for t in ts:
        ok = np.isfinite(t) & (t > EPS)
        out = np.where(ok & (t < out), t, out)
    return out


@dataclass(frozen=True)
class Sphere:
    """Sphere with ``center`` and ``radius``."""

    center: Vec3
    radius: float
    texture: Texture

    def intersect(self, o: FloatArray, d: FloatArray) -> FloatArray:
        """Ray-sphere hit distance, o/d (N, 3) -> t (N,)."""
        oc = o - _rgb(self.center)[None, :]
        b = np.einsum("ij,ij->i", oc, d)
        c = np.einsum("ij,ij->i", oc, oc) - self.radius**2
        disc = b * b - c
        hit = disc >= 0.0
        sq = np.sqrt(np.where(hit, disc, 0.0))
        t0 = np.where(hit, -b - sq, np.inf)
        t1 = np.where(hit, -b + sq, np.inf)
        return _nearest_positive(t0, t1)

    def normal(self, p: FloatArray) -> FloatArray:
        """Outward normals at surface points p (N, 3) -> (N, 3)."""
        return (p - _rgb(self.center)[None, :]) / self.radius


@dataclass(frozen=True)
class Box:
    """Axis-aligned box spanning ``lo`` .. ``hi``."""

    lo: Vec3
    hi: Vec3
    texture: Texture

    def intersect(self, o: FloatArray, d: FloatArray) -> FloatArray:
        """Slab-method hit distance, o/d (N, 3) -> t (N,)."""
        lo, hi = _rgb(self.lo), _rgb(self.hi)
        with np.errstate(divide="ignore", invalid="ignore"):
            inv = 1.0 / d
            ta = (lo[None, :] - o) * inv
            tb = (hi[None, :] - o) * inv
        t_near = np.nanmax(np.minimum(ta, tb), axis=1)
        t_far = np.nanmin(np.maximum(ta, tb), axis=1)
        hit = (t_far >= t_near) & (t_far > EPS)
        t_near = np.where(hit, t_near, np.inf)
        t_far = np.where(hit, t_far, np.inf)
        return _nearest_positive(t_near, t_far)

    def normal(self, p: FloatArray) -> FloatArray:
        """Face normals at surface points p (N, 3) -> (N, 3)."""
        lo, hi = _rgb(self.lo), _rgb(self.hi)
        q = (p - 0.5 * (lo + hi)[None, :]) / (0.5 * (hi - lo))[None, :]
        axis = np.argmax(np.abs(q), axis=1)
        n = np.zeros_like(p)
        rows = np.arange(p.shape[0])
        n[rows, axis] = np.sign(q[rows, axis])
        return n


@dataclass(frozen=True)
class Cylinder:
    """Closed cylinder whose axis is world axis ``axis`` through ``center``.

    It spans ``center[axis] - half_height .. center[axis] + half_height``.
    """

    center: Vec3
    radius: float
    half_height: float
    axis: int
    texture: Texture

    def _split(self, x: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
        """Split (N, 3) into (axial, radial-u, radial-v) components, each (N,)."""
        u, v = [i for i in range(3) if i != self.axis]
        return x[:, self.axis], x[:, u], x[:, v]

    def intersect(self, o: FloatArray, d: FloatArray) -> FloatArray:
        """Side + cap hit distance, o/d (N, 3) -> t (N,)."""
        oa, ou, ov = self._split(o - _rgb(self.center)[None, :])
        da, du, dv = self._split(d)
        r2, h = self.radius**2, self.half_height
        a = du * du + dv * dv
        b = ou * du + ov * dv
        c = ou * ou + ov * ov - r2
        disc = b * b - a * c
        side_ok = (disc >= 0.0) & (a > 1e-12)
        sq = np.sqrt(np.where(side_ok, disc, 0.0))
        a_safe = np.where(side_ok, a, 1.0)
        sides = []
        for sgn in (-1.0, 1.0):
            t = np.where(side_ok, (-b + sgn * sq) / a_safe, np.inf)
            within = np.abs(oa + t * da) <= h
            sides.append(np.where(within, t, np.inf))
        caps = []
        da_safe = np.where(np.abs(da) > 1e-12, da, 1.0)
        for level in (-h, h):
            t = np.where(np.abs(da) > 1e-12, (level - oa) / da_safe, np.inf)
            pu, pv = ou + t * du, ov + t * dv
            caps.append(np.where(pu * pu + pv * pv <= r2, t, np.inf))
        return _nearest_positive(*sides, *caps)

    def normal(self, p: FloatArray) -> FloatArray:
        """Side or cap normals at surface points p (N, 3) -> (N, 3)."""
        q = p - _rgb(self.center)[None, :]
        u, v = [i for i in range(3) if i != self.axis]
        cap = np.abs(q[:, self.axis]) >= self.half_height - 1e-6
        n = np.zeros_like(p)
        n[:, u] = np.where(cap, 0.0, q[:, u] / self.radius)
        n[:, v] = np.where(cap, 0.0, q[:, v] / self.radius)
        n[:, self.axis] = np.where(cap, np.sign(q[:, self.axis]), 0.0)
        return n


@dataclass(frozen=True)
class Plane:
    """Infinite plane through ``point`` with unit ``normal_vec`` (one-sided normal)."""

    point: Vec3
    normal_vec: Vec3
    texture: Texture

    def intersect(self, o: FloatArray, d: FloatArray) -> FloatArray:
        """Ray-plane hit distance, o/d (N, 3) -> t (N,)."""
        n = _rgb(self.normal_vec)
        denom = d @ n
        ok = np.abs(denom) > 1e-12
        t = np.where(ok, ((_rgb(self.point)[None, :] - o) @ n) / np.where(ok, denom, 1.0), np.inf)
        return _nearest_positive(t)

    def normal(self, p: FloatArray) -> FloatArray:
        """Constant normal broadcast to (N, 3)."""
        return np.broadcast_to(_rgb(self.normal_vec), p.shape).copy()


Primitive = Union[Sphere, Box, Cylinder, Plane]


@dataclass(frozen=True)
class Scene:
    """A list of primitives lit by one directional light plus ambient."""

    primitives: tuple[Primitive, ...]
    light_dir: Vec3  # unit vector pointing *towards* the light
    ambient: float = 0.3


# --------------------------------------------------------------------------- #
# The two scenes
# --------------------------------------------------------------------------- #


def object_scene() -> Scene:
    """The 360 scene: a textured still life on a pedestal (Z-up), inside [-0.8, 0.8]^2 x [-0.75, 0.55]."""
    prims: tuple[Primitive, ...] = (
        # pedestal slab with a checkerboard top
        Box((-0.8, -0.8, -0.75), (0.8, 0.8, -0.5), checker3d(0.2, (0.85, 0.85, 0.8), (0.15, 0.2, 0.45))),
        # central beach ball (covers the origin, so every view's centre pixel is opaque)
        Sphere((0.0, 0.0, 0.0), 0.5, sphere_checker((0.0, 0.0, 0.0), 2, 12, 6, (0.9, 0.15, 0.1), (0.95, 0.8, 0.15))),
        # striped green column
        Cylinder((-0.5, 0.5, 0.025), 0.18, 0.525, 2, stripes(2, 0.16, (0.1, 0.6, 0.2), (0.9, 0.95, 0.9))),
        # blue/white checkered crate
        Box((0.35, -0.75, -0.5), (0.75, -0.35, -0.1), checker3d(0.1, (0.1, 0.3, 0.85), (0.95, 0.95, 0.95))),
        # small purple/orange ball
        Sphere((0.5, 0.5, -0.3), 0.2, checker3d(0.08, (0.55, 0.15, 0.7), (1.0, 0.55, 0.1))),
    )
    light = _normalize(np.array([0.45, -0.35, 0.82]))
    return Scene(prims, (float(light[0]), float(light[1]), float(light[2])), ambient=0.3)


def photo_scene(seed: int = 0) -> Scene:
    """The 360 object scene with noise-modulated textures, standing on an infinite noisy floor (z = -0.75).

    A stand-in for a hand-held photo capture: every surface carries non-repeating detail, so COLMAP's
    SIFT features register the views (see :func:`render_photo_capture`).
    """
    noise = [value_noise(seed * 16 + i, cell) for i, cell in enumerate((0.15, 0.1, 0.08, 0.06, 0.05, 0.3))]
    base = object_scene()
    prims = tuple(
        dataclasses.replace(prim, texture=modulated(prim.texture, noise[i])) for i, prim in enumerate(base.primitives)
    )
    floor_texture = modulated(checker3d(1.0, (0.7, 0.65, 0.55), (0.5, 0.55, 0.6)), noise[5], 0.8)
    floor = Plane((0.0, 0.0, -0.75), (0.0, 0.0, 1.0), floor_texture)
    return Scene(prims + (floor,), base.light_dir, base.ambient)


def forward_scene() -> Scene:
    """The forward-facing scene (Y-up): objects on a floor (y=-0.6) in front of a wall (z=-1.6)."""
    prims: tuple[Primitive, ...] = (
        Plane((0.0, 0.0, -1.6), (0.0, 0.0, 1.0), checker3d(0.3, (0.75, 0.55, 0.4), (0.45, 0.25, 0.2))),
        Plane((0.0, -0.6, 0.0), (0.0, 1.0, 0.0), checker3d(0.25, (0.8, 0.8, 0.78), (0.3, 0.3, 0.32))),
        Sphere((0.0, -0.15, 0.0), 0.45, sphere_checker((0.0, -0.15, 0.0), 1, 12, 6, (0.9, 0.15, 0.1), (0.95, 0.8, 0.15))),
        Box((0.55, -0.6, -0.5), (0.95, -0.2, -0.1), stripes(0, 0.1, (0.1, 0.3, 0.85), (0.95, 0.95, 0.95))),
        Cylinder((-0.7, -0.15, -0.3), 0.18, 0.45, 1, stripes(1, 0.16, (0.1, 0.6, 0.2), (0.9, 0.95, 0.9))),
        Sphere((0.35, -0.42, 0.55), 0.18, checker3d(0.08, (0.55, 0.15, 0.7), (1.0, 0.55, 0.1))),
    )
    light = _normalize(np.array([-0.4, 0.8, 0.45]))
    return Scene(prims, (float(light[0]), float(light[1]), float(light[2])), ambient=0.3)


# --------------------------------------------------------------------------- #
# Tracing and shading
# --------------------------------------------------------------------------- #


def _normalize(v: FloatArray) -> FloatArray:
    """Normalise vectors along the last axis, (..., 3) -> (..., 3)."""
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


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
    light = _rgb(scene.light_dir)
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


# --------------------------------------------------------------------------- #
# Cameras
# --------------------------------------------------------------------------- #


def look_at(eye: Sequence[float], target: Sequence[float], up: Sequence[float]) -> FloatArray:
    """OpenGL camera-to-world (4, 4) at ``eye`` looking at ``target`` (camera -Z -> target, +Y ~ up)."""
    eye_v, target_v, up_v = _rgb(eye), _rgb(target), _rgb(up)
    z = _normalize(eye_v - target_v)  # camera looks along -z
    x = _normalize(np.cross(up_v, z))
    y = np.cross(z, x)
    c2w = np.eye(4)
    c2w[:3, 0], c2w[:3, 1], c2w[:3, 2], c2w[:3, 3] = x, y, z, eye_v
    return c2w


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
    d = _normalize(dirs_cam @ c2w[:3, :3].T)
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


def to_uint8(img: FloatArray) -> NDArray[np.uint8]:
    """Quantise an image in [0, 1] (H, W, C) to uint8 (H, W, C)."""
    return np.round(np.clip(img, 0.0, 1.0) * 255.0).astype(np.uint8)


# --------------------------------------------------------------------------- #
# Atomic file output
# --------------------------------------------------------------------------- #


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` via a temp file in the same folder and ``os.replace``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def write_png(path: Path, img: NDArray[np.uint8]) -> None:
    """Atomically write a uint8 (H, W, 3) RGB or (H, W, 4) RGBA image as PNG."""
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(img)).save(buf, format="PNG", optimize=True)
    atomic_write_bytes(path, buf.getvalue())


def write_json(path: Path, obj: object) -> None:
    """Atomically write ``obj`` as indented JSON."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2) + "\n").encode("utf-8"))


def _remove_stale(folder: Path, pattern: str, keep: set[str]) -> None:
    """Delete files in ``folder`` whose names fully match regex ``pattern`` and are not in ``keep``."""
    if not folder.is_dir():
        return
    rx = re.compile(pattern)
    for f in folder.iterdir():
        if f.is_file() and rx.fullmatch(f.name) and f.name not in keep:
            f.unlink()


# --------------------------------------------------------------------------- #
# Pose sampling
# --------------------------------------------------------------------------- #


def hemisphere_poses(
    n: int,
    rng: np.random.Generator,
    radius: float,
    elev_range_deg: tuple[float, float] = (10.0, 70.0),
) -> FloatArray:
    """``n`` OpenGL camera-to-world matrices (n, 4, 4) on the upper (z > 0) hemisphere, looking at the origin.

    Azimuths are stratified over 360 degrees (one jittered sample per stratum
    plus a random global rotation) and elevations are stratified in
    ``elev_range_deg``; both are randomly permuted (a Latin-hypercube design), so
    small sets and any prefix of a set cover the hemisphere reasonably well.
    """
    az = (rng.random() + (rng.permutation(n) + rng.random(n)) / n) * 2.0 * math.pi
    lo, hi = elev_range_deg
    el_strata = (np.arange(n) + rng.random(n)) / n
    el = np.deg2rad(lo + (hi - lo) * el_strata[rng.permutation(n)])
    poses = np.empty((n, 4, 4))
    for i in range(n):
        eye = radius * np.array([math.cos(el[i]) * math.cos(az[i]), math.cos(el[i]) * math.sin(az[i]), math.sin(el[i])])
        poses[i] = look_at(eye, (0.0, 0.0, 0.0), (0.0, 0.0, 1.0))
    return poses


def planar_patch_poses(
    n: int,
    rng: np.random.Generator,
    patch_width: float = 0.5,
    patch_height: float = 0.3,
    center: Vec3 = (0.0, 0.1, 3.0),
    target: Vec3 = (0.0, -0.15, -0.2),
) -> FloatArray:
    """``n`` forward-facing camera-to-world matrices (n, 4, 4) on a plane z = center[2].

    Positions are jittered samples on a ``patch_width`` x ``patch_height``
    rectangle; every camera looks at ``target`` (roughly along world -Z, Y up).
    """
    cols = max(1, int(math.ceil(math.sqrt(n * patch_width / patch_height))))
    rows = int(math.ceil(n / cols))
    cells = rng.permutation(rows * cols)[:n]
    gx = (cells % cols + rng.random(n)) / cols - 0.5
    gy = (cells // cols + rng.random(n)) / rows - 0.5
    poses = np.empty((n, 4, 4))
    for i in range(n):
        eye = (center[0] + patch_width * gx[i], center[1] + patch_height * gy[i], center[2])
        poses[i] = look_at(eye, target, (0.0, 1.0, 0.0))
    return poses


# --------------------------------------------------------------------------- #
# Public renderers
# --------------------------------------------------------------------------- #


def _check_positive(name: str, value: int, minimum: int = 1) -> None:
    """Raise ValueError unless ``value`` is an int >= ``minimum``."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")


def _matrix_to_list(m: FloatArray) -> list[list[float]]:
    """(4, 4) array -> nested list of Python floats for JSON (``-0.0`` written as ``0.0``)."""
    return [[float(x) + 0.0 for x in row] for row in m]


def render_blender_scene(
    out_dir: Union[str, Path],
    size: int,
    n_train: int,
    n_val: int,
    n_test: int,
    seed: int,
    radius: float = 4.0,
    camera_angle_x: float = 0.69,
    supersample: int = 2,
) -> Path:
    """Render the 360 object scene in Blender / NeRF-synthetic format.

    Writes ``transforms_{train,val,test}.json`` and RGBA PNGs
    ``{train,val,test}/r_{i}.png`` (``size`` x ``size``, alpha 0 on background)
    into ``out_dir`` and returns it as a Path.  Camera poses are seeded by
    ``seed``; each split draws its own poses, so splits do not share views.
    """
    _check_positive("size", size, _MIN_SIZE)
    for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        _check_positive(name, value)
    _check_positive("supersample", supersample)
    _check_positive("seed", seed, 0)
    if not (radius > 1.5 and 0.0 < camera_angle_x < math.pi):
        raise ValueError("need radius > 1.5 and 0 < camera_angle_x < pi")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scene = object_scene()
    focal = focal_from_fov(size, camera_angle_x)
    pose_rng = np.random.default_rng([seed, 0])
    counts = {"train": n_train, "val": n_val, "test": n_test}
    for split_idx, split in enumerate(BLENDER_SPLITS):
        poses = hemisphere_poses(counts[split], pose_rng, radius)
        frames = []
        for i, c2w in enumerate(poses):
            jitter_rng = np.random.default_rng([seed, 1, split_idx, i])
            img = render_view(scene, c2w, size, size, focal, focal, size / 2.0, size / 2.0, jitter_rng, supersample)
            write_png(out / split / f"r_{i}.png", to_uint8(img))
            frames.append({"file_path": f"./{split}/r_{i}", "rotation": 0.0, "transform_matrix": _matrix_to_list(c2w)})
        _remove_stale(out / split, r"r_\d+\.png", {f"r_{i}.png" for i in range(len(poses))})
        write_json(out / f"transforms_{split}.json", {"camera_angle_x": float(camera_angle_x), "frames": frames})
    return out


def render_forward_facing_scene(
    out_dir: Union[str, Path],
    width: int,
    height: int,
    n_frames: int,
    seed: int,
    camera_angle_x: float = 0.96,
    patch_width: float = 0.5,
    supersample: int = 2,
) -> Path:
    """Render the forward-facing scene in nerfstudio-data format.

    Writes ``transforms.json`` (shared OPENCV intrinsics with zero distortion,
    one OpenGL ``transform_matrix`` per frame) and opaque RGB PNGs
    ``images/frame_00001.png`` ... (``height`` x ``width``) into ``out_dir``;
    returns it as a Path.  Cameras lie on a ``patch_width``-wide planar patch
    at z = 3 looking at the objects (roughly along -Z); a back wall and floor
    make every pixel opaque.
    """
    _check_positive("width", width, _MIN_SIZE)
    _check_positive("height", height, _MIN_SIZE)
    _check_positive("n_frames", n_frames)
    _check_positive("supersample", supersample)
    _check_positive("seed", seed, 0)
    if not (0.0 < camera_angle_x < 0.75 * math.pi and 0.0 < patch_width < 2.0):
        raise ValueError("need 0 < camera_angle_x < 0.75*pi and 0 < patch_width < 2")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scene = forward_scene()
    focal = focal_from_fov(width, camera_angle_x)
    cx, cy = width / 2.0, height / 2.0
    poses = planar_patch_poses(n_frames, np.random.default_rng([seed, 0]), patch_width=patch_width, patch_height=0.6 * patch_width)
    frames = []
    names = set()
    for i, c2w in enumerate(poses):
        jitter_rng = np.random.default_rng([seed, 1, i])
        img = render_view(scene, c2w, width, height, focal, focal, cx, cy, jitter_rng, supersample)
        name = f"frame_{i + 1:05d}.png"
        names.add(name)
        write_png(out / "images" / name, to_uint8(img[..., :3]))
        frames.append({"file_path": f"images/{name}", "transform_matrix": _matrix_to_list(c2w)})
    _remove_stale(out / "images", r"frame_\d{5}\.png", names)
    meta = {
        "camera_model": "OPENCV",
        "fl_x": float(focal),
        "fl_y": float(focal),
        "cx": float(cx),
        "cy": float(cy),
        "w": int(width),
        "h": int(height),
        "k1": 0.0,
        "k2": 0.0,
        "p1": 0.0,
        "p2": 0.0,
        "frames": frames,
    }
    write_json(out / "transforms.json", meta)
    return out


SKY_SRGB = (0.62, 0.7, 0.8)
"""Colour of the background (rays that miss the photo scene), sRGB."""


def render_photo_capture(
    out_dir: Union[str, Path],
    size: int,
    n_views: int,
    seed: int,
    radius: float = 3.2,
    camera_angle_x: float = 0.8,
    elev_range_deg: tuple[float, float] = (15.0, 55.0),
    supersample: int = 2,
) -> Path:
    """Render a hand-held-style 360 photo capture of :func:`photo_scene`: images only, no poses.

    Writes opaque RGB PNGs ``photo_0001.png`` ... (``size`` x ``size``, background :data:`SKY_SRGB`)
    into ``out_dir`` and returns it, as a phone's photo folder would be before ``ns-process-data
    images`` recovers the poses with COLMAP. Cameras lie on a hemisphere of ``radius`` looking at the
    origin (azimuths stratified over 360 degrees, elevations in ``elev_range_deg``).
    """
    _check_positive("size", size, _MIN_SIZE)
    _check_positive("n_views", n_views)
    _check_positive("supersample", supersample)
    _check_positive("seed", seed, 0)
    if not (radius > 1.5 and 0.0 < camera_angle_x < math.pi):
        raise ValueError("need radius > 1.5 and 0 < camera_angle_x < pi")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scene = photo_scene(seed)
    focal = focal_from_fov(size, camera_angle_x)
    poses = hemisphere_poses(n_views, np.random.default_rng([seed, 0]), radius, elev_range_deg)
    names = set()
    sky = _rgb(SKY_SRGB)
    for i, c2w in enumerate(poses):
        jitter_rng = np.random.default_rng([seed, 1, i])
        img = render_view(scene, c2w, size, size, focal, focal, size / 2.0, size / 2.0, jitter_rng, supersample)
        rgb = img[..., :3] * img[..., 3:] + sky * (1.0 - img[..., 3:])
        name = f"photo_{i + 1:04d}.png"
        names.add(name)
        write_png(out / name, to_uint8(rgb))
    _remove_stale(out, r"photo_\d{4}\.png", names)
    return out


# --------------------------------------------------------------------------- #
# CLI
# --------------------------------------------------------------------------- #


def _build_parser() -> argparse.ArgumentParser:
    """Argument parser with ``blender`` and ``forward`` sub-commands."""
    parser = OneLineArgumentParser(
        prog="python -m mobiler2l_ns.scenes.synthetic",
        description="Render a deterministic procedural scene (project-owned, Apache-2.0).",
    )
    sub = parser.add_subparsers(dest="layout", required=True, metavar="{blender,forward}")
    b = sub.add_parser("blender", help="360 object scene in Blender / NeRF-synthetic format (RGBA)")
    b.add_argument("out", type=Path, metavar="OUT", help="output folder")
    b.add_argument("--size", type=int, default=64, help="image width = height in pixels (>= 8)")
    b.add_argument("--n-train", type=int, default=40, help="training views (>= 1)")
    b.add_argument("--n-val", type=int, default=4, help="validation views (>= 1)")
    b.add_argument("--n-test", type=int, default=8, help="test views (>= 1)")
    b.add_argument("--seed", type=int, default=0, help="seed for poses and anti-aliasing jitter (>= 0)")
    b.add_argument("--radius", type=float, default=4.0, help="camera distance from the origin (> 1.5)")
    b.add_argument("--camera-angle-x", type=float, default=0.69, help="horizontal FOV in radians")
    b.add_argument("--supersample", type=int, default=2, help="jittered sub-samples per pixel side (>= 1)")
    b.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty OUT")
    f = sub.add_parser("forward", help="forward-facing scene in nerfstudio-data format (RGB)")
    f.add_argument("out", type=Path, metavar="OUT", help="output folder")
    f.add_argument("--width", type=int, default=80, help="image width in pixels (>= 8)")
    f.add_argument("--height", type=int, default=60, help="image height in pixels (>= 8)")
    f.add_argument("--n-frames", type=int, default=20, help="number of frames (>= 1)")
    f.add_argument("--seed", type=int, default=0, help="seed for poses and anti-aliasing jitter (>= 0)")
    f.add_argument("--camera-angle-x", type=float, default=0.96, help="horizontal FOV in radians")
    f.add_argument("--patch-width", type=float, default=0.5, help="width of the camera patch (world units)")
    f.add_argument("--supersample", type=int, default=2, help="jittered sub-samples per pixel side (>= 1)")
    f.add_argument("--overwrite", action="store_true", help="allow writing into a non-empty OUT")
    return parser


def _validate(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Reject bad argument values with a one-line ``parser.error`` naming the flag."""
    minimums: list[tuple[str, str, int]] = [("--seed", "seed", 0), ("--supersample", "supersample", 1)]
    if args.layout == "blender":
        minimums += [("--size", "size", _MIN_SIZE), ("--n-train", "n_train", 1), ("--n-val", "n_val", 1), ("--n-test", "n_test", 1)]
        if not args.radius > 1.5:
            parser.error(f"--radius must be > 1.5, got {args.radius}")
        if not 0.0 < args.camera_angle_x < math.pi:
            parser.error(f"--camera-angle-x must be in (0, pi), got {args.camera_angle_x}")
    else:
        minimums += [("--width", "width", _MIN_SIZE), ("--height", "height", _MIN_SIZE), ("--n-frames", "n_frames", 1)]
        if not 0.0 < args.camera_angle_x < 0.75 * math.pi:
            parser.error(f"--camera-angle-x must be in (0, 0.75*pi), got {args.camera_angle_x}")
        if not 0.0 < args.patch_width < 2.0:
            parser.error(f"--patch-width must be in (0, 2), got {args.patch_width}")
    for flag, attr, minimum in minimums:
        value = getattr(args, attr)
        if value < minimum:
            parser.error(f"{flag} must be >= {minimum}, got {value}")
    out: Path = args.out
    if out.exists() and not out.is_dir():
        parser.error(f"OUT {str(out)!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        parser.error(f"OUT {str(out)!r} is not empty; pass --overwrite to write into it")


def main(argv: Sequence[str] | None = None) -> int:
    """CLI entry point; returns the process exit status."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    _validate(parser, args)
    if args.layout == "blender":
        out = render_blender_scene(
            args.out, args.size, args.n_train, args.n_val, args.n_test, args.seed,
            radius=args.radius, camera_angle_x=args.camera_angle_x, supersample=args.supersample,
        )
        n = args.n_train + args.n_val + args.n_test
    else:
        out = render_forward_facing_scene(
            args.out, args.width, args.height, args.n_frames, args.seed,
            camera_angle_x=args.camera_angle_x, patch_width=args.patch_width, supersample=args.supersample,
        )
        n = args.n_frames
    print(f"wrote {n} views to {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
