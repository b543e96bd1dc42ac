"""Procedural solid textures: functions from world points ``(N, 3)`` to linear RGB albedo ``(N, 3)`` in [0, 1].

Solid (3-D) textures need no UV parameterisation, so any primitive can carry any texture.
"""

from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
from numpy.typing import NDArray

from mobiler2l_ns.scenes.arrays import FloatArray, Vec3, vec3

Texture = Callable[[FloatArray], FloatArray]
"""A texture maps surface points (N, 3) (world space) to linear RGB albedo (N, 3) in [0, 1]."""


def _mix(mask: NDArray[np.bool_], c1: FloatArray, c2: FloatArray) -> FloatArray:
    """Pick ``c1`` where ``mask`` (N,) is true and ``c2`` elsewhere -> (N, 3)."""
    return np.where(mask[:, None], c1[None, :], c2[None, :])


def checker3d(scale: float, c1: Sequence[float], c2: Sequence[float]) -> Texture:
    """Solid 3-D checkerboard with cubes of edge ``scale``; returns a texture (N,3)->(N,3)."""
    a, b = vec3(c1), vec3(c2)

    def tex(p: FloatArray) -> FloatArray:
        parity = np.floor(p / scale).astype(np.int64).sum(axis=1) % 2
        return _mix(parity == 0, a, b)

    return tex


def stripes(axis: int, period: float, c1: Sequence[float], c2: Sequence[float]) -> Texture:
    """Stripes perpendicular to world ``axis`` with the given ``period``; (N,3)->(N,3)."""
    a, b = vec3(c1), vec3(c2)

    def tex(p: FloatArray) -> FloatArray:
        band = np.floor(p[:, axis] / (0.5 * period)).astype(np.int64) % 2
        return _mix(band == 0, a, b)

    return tex


def sphere_checker(
    center: Vec3, pole_axis: int, n_lon: int, n_lat: int, c1: Sequence[float], c2: Sequence[float]
) -> Texture:
    """Beach-ball checker in longitude/latitude around ``pole_axis``; (N,3)->(N,3)."""
    a, b = vec3(c1), vec3(c2)
    c = vec3(center)
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
