"""Ray-traceable primitives (sphere, box, cylinder, plane) and the :class:`Scene` holding them.

``intersect(o, d)`` takes ray origins / unit directions (N, 3) and returns the nearest hit distance
t (N,) with ``inf`` for misses (t > :data:`EPS`). ``normal(p)`` returns outward unit normals (N, 3)
for points on the surface.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Union

import numpy as np

from mobiler2l_ns.scenes.arrays import FloatArray, Vec3, vec3
from mobiler2l_ns.scenes.textures import Texture

EPS = 1e-4
"""Minimum ray parameter counted as a hit / offset used to leave a surface."""


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
        oc = o - vec3(self.center)[None, :]
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
        return (p - vec3(self.center)[None, :]) / self.radius


@dataclass(frozen=True)
class Box:
    """Axis-aligned box spanning ``lo`` .. ``hi``."""

    lo: Vec3
    hi: Vec3
    texture: Texture

    def intersect(self, o: FloatArray, d: FloatArray) -> FloatArray:
        """Slab-method hit distance, o/d (N, 3) -> t (N,)."""
        lo, hi = vec3(self.lo), vec3(self.hi)
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
        lo, hi = vec3(self.lo), vec3(self.hi)
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
        oa, ou, ov = self._split(o - vec3(self.center)[None, :])
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
        q = p - vec3(self.center)[None, :]
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
        n = vec3(self.normal_vec)
        denom = d @ n
        ok = np.abs(denom) > 1e-12
        t = np.where(ok, ((vec3(self.point)[None, :] - o) @ n) / np.where(ok, denom, 1.0), np.inf)
        return _nearest_positive(t)

    def normal(self, p: FloatArray) -> FloatArray:
        """Constant normal broadcast to (N, 3)."""
        return np.broadcast_to(vec3(self.normal_vec), p.shape).copy()


Primitive = Union[Sphere, Box, Cylinder, Plane]


@dataclass(frozen=True)
class Scene:
    """A list of primitives lit by one directional light plus ambient."""

    primitives: tuple[Primitive, ...]
    light_dir: Vec3  # unit vector pointing *towards* the light
    ambient: float = 0.3
