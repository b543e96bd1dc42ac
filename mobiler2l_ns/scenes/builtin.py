"""The project's procedural scenes: a 360 still life (:func:`object_scene`), its photo-like variant
(:func:`photo_scene`) and a forward-facing set (:func:`forward_scene`)."""

from __future__ import annotations

import dataclasses

import numpy as np

from mobiler2l_ns.scenes.arrays import normalize
from mobiler2l_ns.scenes.primitives import Box, Cylinder, Plane, Primitive, Scene, Sphere
from mobiler2l_ns.scenes.textures import checker3d, modulated, sphere_checker, stripes, value_noise


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
    light = normalize(np.array([0.45, -0.35, 0.82]))
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
        Sphere(
            (0.0, -0.15, 0.0), 0.45, sphere_checker((0.0, -0.15, 0.0), 1, 12, 6, (0.9, 0.15, 0.1), (0.95, 0.8, 0.15))
        ),
        Box((0.55, -0.6, -0.5), (0.95, -0.2, -0.1), stripes(0, 0.1, (0.1, 0.3, 0.85), (0.95, 0.95, 0.95))),
        Cylinder((-0.7, -0.15, -0.3), 0.18, 0.45, 1, stripes(1, 0.16, (0.1, 0.6, 0.2), (0.9, 0.95, 0.9))),
        Sphere((0.35, -0.42, 0.55), 0.18, checker3d(0.08, (0.55, 0.15, 0.7), (1.0, 0.55, 0.1))),
    )
    light = normalize(np.array([-0.4, 0.8, 0.45]))
    return Scene(prims, (float(light[0]), float(light[1]), float(light[2])), ambient=0.3)
