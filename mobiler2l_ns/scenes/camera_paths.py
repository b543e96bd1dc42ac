"""Seeded camera placements: a 360 hemisphere around the origin and a forward-facing planar patch."""

from __future__ import annotations

import math

import numpy as np

from mobiler2l_ns.geometry import homogeneous, look_at
from mobiler2l_ns.scenes.arrays import FloatArray, Vec3


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
        poses[i] = homogeneous(look_at(eye, (0.0, 0.0, 0.0), (0.0, 0.0, 1.0)))
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
        poses[i] = homogeneous(look_at(eye, target, (0.0, 1.0, 0.0)))
    return poses
