"""Dataset folders rendered from the procedural scenes: Blender (360), nerfstudio-data (forward
facing) and a pose-less photo folder (for COLMAP).

Output is a pure function of the arguments (seeded ``numpy.random.Generator`` streams for poses and
anti-aliasing jitter), so two runs with the same seed produce byte-identical files on the same
platform. Every file is written atomically (:mod:`mobiler2l_ns.utils.io`); views left over from an
earlier, larger render into the same folder are removed.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Union

import numpy as np

from mobiler2l_ns.scenes.arrays import FloatArray, vec3
from mobiler2l_ns.scenes.builtin import forward_scene, object_scene, photo_scene
from mobiler2l_ns.scenes.camera_paths import hemisphere_poses, planar_patch_poses
from mobiler2l_ns.scenes.tracer import focal_from_fov, render_view
from mobiler2l_ns.utils.data_checks import BLENDER_SPLITS
from mobiler2l_ns.utils.io import write_json_atomic, write_png

MIN_SIZE = 8
"""Smallest image side (pixels) the renderers accept."""

SKY_SRGB = (0.62, 0.7, 0.8)
"""Colour of the background (rays that miss the photo scene), sRGB."""


class RenderArgumentError(ValueError):
    """A render argument out of range; ``name`` is the Python argument (``n_train``), ``expected`` the rule."""

    def __init__(self, name: str, expected: str, value: object) -> None:
        super().__init__(f"{name} must be {expected}, got {value!r}")
        self.name, self.expected, self.value = name, expected, value


def _require(name: str, value: object, ok: bool, expected: str) -> None:
    """Raise :class:`RenderArgumentError` unless ``ok``."""
    if not ok:
        raise RenderArgumentError(name, expected, value)


def _check_count(name: str, value: int, minimum: int = 1) -> None:
    """Raise :class:`RenderArgumentError` unless ``value`` is an int >= ``minimum``."""
    ok = not isinstance(value, bool) and isinstance(value, (int, np.integer)) and value >= minimum
    _require(name, value, ok, f"an integer >= {minimum}")


def _check_360(radius: float, camera_angle_x: float) -> None:
    """The camera distance and field of view of the 360 renders."""
    _require("radius", radius, radius > 1.5, "> 1.5")
    _require("camera_angle_x", camera_angle_x, 0.0 < camera_angle_x < math.pi, "in (0, pi)")


def _matrix_to_list(m: FloatArray) -> list[list[float]]:
    """(4, 4) array -> nested list of Python floats for JSON (``-0.0`` written as ``0.0``)."""
    return [[float(x) + 0.0 for x in row] for row in m]


def _remove_stale(folder: Path, pattern: str, keep: set[str]) -> None:
    """Delete files in ``folder`` whose names fully match regex ``pattern`` and are not in ``keep``."""
    if not folder.is_dir():
        return
    rx = re.compile(pattern)
    for f in folder.iterdir():
        if f.is_file() and rx.fullmatch(f.name) and f.name not in keep:
            f.unlink()


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
    Raises :class:`RenderArgumentError` (a ValueError) for an argument out of range.
    """
    _check_count("size", size, MIN_SIZE)
    for name, value in (("n_train", n_train), ("n_val", n_val), ("n_test", n_test)):
        _check_count(name, value)
    _check_count("supersample", supersample)
    _check_count("seed", seed, 0)
    _check_360(radius, camera_angle_x)
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
            write_png(out / split / f"r_{i}.png", img, optimize=True)
            frames.append({"file_path": f"./{split}/r_{i}", "rotation": 0.0, "transform_matrix": _matrix_to_list(c2w)})
        _remove_stale(out / split, r"r_\d+\.png", {f"r_{i}.png" for i in range(len(poses))})
        write_json_atomic(out / f"transforms_{split}.json", {"camera_angle_x": float(camera_angle_x), "frames": frames})
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
    make every pixel opaque. Raises :class:`RenderArgumentError` for an argument out of range.
    """
    _check_count("width", width, MIN_SIZE)
    _check_count("height", height, MIN_SIZE)
    _check_count("n_frames", n_frames)
    _check_count("supersample", supersample)
    _check_count("seed", seed, 0)
    _require("camera_angle_x", camera_angle_x, 0.0 < camera_angle_x < 0.75 * math.pi, "in (0, 0.75*pi)")
    _require("patch_width", patch_width, 0.0 < patch_width < 2.0, "in (0, 2)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scene = forward_scene()
    focal = focal_from_fov(width, camera_angle_x)
    cx, cy = width / 2.0, height / 2.0
    poses = planar_patch_poses(
        n_frames, np.random.default_rng([seed, 0]), patch_width=patch_width, patch_height=0.6 * patch_width
    )
    frames = []
    names = set()
    for i, c2w in enumerate(poses):
        jitter_rng = np.random.default_rng([seed, 1, i])
        img = render_view(scene, c2w, width, height, focal, focal, cx, cy, jitter_rng, supersample)
        name = f"frame_{i + 1:05d}.png"
        names.add(name)
        write_png(out / "images" / name, img[..., :3], optimize=True)
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
    write_json_atomic(out / "transforms.json", meta)
    return out


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
    """Render a hand-held-style 360 photo capture of :func:`~mobiler2l_ns.scenes.builtin.photo_scene`:
    images only, no poses.

    Writes opaque RGB PNGs ``photo_0001.png`` ... (``size`` x ``size``, background :data:`SKY_SRGB`)
    into ``out_dir`` and returns it, as a phone's photo folder would be before ``ns-process-data
    images`` recovers the poses with COLMAP. Cameras lie on a hemisphere of ``radius`` looking at the
    origin (azimuths stratified over 360 degrees, elevations in ``elev_range_deg``).
    """
    _check_count("size", size, MIN_SIZE)
    _check_count("n_views", n_views)
    _check_count("supersample", supersample)
    _check_count("seed", seed, 0)
    _check_360(radius, camera_angle_x)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    scene = photo_scene(seed)
    focal = focal_from_fov(size, camera_angle_x)
    poses = hemisphere_poses(n_views, np.random.default_rng([seed, 0]), radius, elev_range_deg)
    names = set()
    sky = vec3(SKY_SRGB)
    for i, c2w in enumerate(poses):
        jitter_rng = np.random.default_rng([seed, 1, i])
        img = render_view(scene, c2w, size, size, focal, focal, size / 2.0, size / 2.0, jitter_rng, supersample)
        rgb = img[..., :3] * img[..., 3:] + sky * (1.0 - img[..., 3:])
        name = f"photo_{i + 1:04d}.png"
        names.add(name)
        write_png(out / name, rgb, optimize=True)
    _remove_stale(out, r"photo_\d{4}\.png", names)
    return out
