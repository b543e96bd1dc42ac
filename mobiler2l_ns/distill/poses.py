"""Poses of the pseudo views the teacher renders for the student (MobileR2L / R2L "pseudo data").

Two layouts, chosen from the training cameras (``scene_type="auto"``) or forced:

* ``"360"``: camera centres on a shell around the scene centre, at radii between the training
  cameras' smallest and largest distance to it, elevations drawn from the training cameras'
  elevations (a kernel density estimate clipped to their range), azimuths uniform, every camera
  looking at the centre with no roll. The centre is the point closest to all training optical
  axes (least squares), the "up" direction the mean of the training cameras' up vectors.
* ``"forward"``: camera centres uniform in the axis-aligned box of the training camera centres,
  and viewing directions uniform (then normalised, keeping only those still inside) in the box of
  the training viewing directions, both boxes enlarged by ``bbox_scale`` (1.1) about their
  centres; no roll with respect to the mean up vector.

Intrinsics (fx, fy, cx, cy, width, height) are those of a training camera drawn at random.
View ``i`` depends only on ``(seed, i)`` and the training cameras (``numpy.random.default_rng
([seed, i])``), so any subset of views (a shard, a rank's share) is reproducible on its own.
Cameras follow nerfstudio: OpenGL camera-to-world matrices (the camera looks down -Z) in the
dataparser's world frame, built by :func:`mobiler2l_ns.geometry.look_along`.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import asdict, dataclass
from typing import Dict, Literal, Optional, Tuple

import numpy as np
import torch
from jaxtyping import Float
from nerfstudio.cameras.cameras import Cameras, CameraType
from numpy.typing import NDArray
from torch import Tensor

from mobiler2l_ns.geometry import detect_layout, focus_point, look_along, mean_up, perpendicular_basis, unit

SceneType = Literal["auto", "360", "forward"]

MAX_ELEVATION_DEG = 89.0
"""360 elevations are clipped to +-this (a look-at camera is undefined straight above the centre)."""


@dataclass(frozen=True)
class PoseConfig:
    """Everything that decides the pseudo poses (recorded in the cache and compared on reuse)."""

    count: int = 10_000
    """Number of pseudo views (the paper uses 10k)."""
    seed: int = 0
    """Seed of the pose generator."""
    scene_type: SceneType = "auto"
    """'360', 'forward' or 'auto' (from the spread of the training view directions)."""
    bbox_scale: float = 1.1
    """Forward-facing: enlargement of the training position / direction boxes about their centres."""
    patch_size: Optional[Tuple[int, int]] = None
    """(height, width) of pseudo *patches*: each view is a random window of its camera's image (an
    aligned crop: principal point shifted) instead of the whole image. A patch costs the teacher
    ``patch pixels / image pixels`` of a view, so the same minutes cover many more poses. None: whole views."""
    patch_alignment: int = 1
    """Patch offsets are multiples of this (the student's super-resolution factor)."""

    def validate(self) -> None:
        """Raise ValueError on a value no sampler can use."""
        if self.count < 1:
            raise ValueError(f"pseudo view count must be >= 1, got {self.count}")
        if self.seed < 0:
            raise ValueError(f"pseudo pose seed must be >= 0, got {self.seed}")
        if self.scene_type not in ("auto", "360", "forward"):
            raise ValueError(f"scene type must be auto, 360 or forward, got {self.scene_type!r}")
        if not self.bbox_scale >= 1.0:
            raise ValueError(f"bbox scale must be >= 1, got {self.bbox_scale}")
        if self.patch_size is not None and (len(self.patch_size) != 2 or min(self.patch_size) < 1):
            raise ValueError(f"patch size must be (height, width) >= 1, got {self.patch_size}")
        if self.patch_alignment < 1:
            raise ValueError(f"patch alignment must be >= 1, got {self.patch_alignment}")


@dataclass(frozen=True)
class ShellStats:
    """The training cameras' shell (360): centre, up, radius range and elevations."""

    centre: NDArray[np.float64]
    up: NDArray[np.float64]
    radius_range: Tuple[float, float]
    elevations: NDArray[np.float64]
    """Training elevations in radians (angle above the plane through the centre normal to up)."""


@dataclass(frozen=True)
class ForwardStats:
    """The training cameras' boxes (forward-facing), already enlarged."""

    position_box: NDArray[np.float64]
    """[2, 3]: min and max corner."""
    direction_box: NDArray[np.float64]
    """[2, 3]: min and max corner of the unit viewing directions."""
    up: NDArray[np.float64]
    directions: NDArray[np.float64]
    """[N, 3] training viewing directions (fallback samples: always inside the box)."""


@dataclass(frozen=True)
class TrainingRig:
    """Training camera data the sampler needs, as float64 numpy arrays."""

    c2w: NDArray[np.float64]
    """[N, 3, 4] OpenGL camera-to-world."""
    intrinsics: NDArray[np.float64]
    """[N, 6]: fx, fy, cx, cy, width, height."""

    @classmethod
    def from_cameras(cls, cameras: Cameras) -> "TrainingRig":
        """From nerfstudio cameras (any batch shape; perspective ones)."""
        flat = cameras.reshape((-1,))
        if flat.shape[0] == 0:
            raise ValueError("no training cameras to sample pseudo poses from")
        if bool((flat.camera_type.reshape(-1) != CameraType.PERSPECTIVE.value).any()):
            raise ValueError("pseudo poses need perspective training cameras")
        c2w = flat.camera_to_worlds.detach().cpu().double().numpy().reshape(-1, 3, 4)
        columns = [flat.fx, flat.fy, flat.cx, flat.cy, flat.width, flat.height]
        intrinsics = np.stack([c.detach().cpu().double().numpy().reshape(-1) for c in columns], axis=-1)
        return cls(c2w=c2w, intrinsics=intrinsics)

    @property
    def centres(self) -> NDArray[np.float64]:
        return self.c2w[:, :, 3]

    @property
    def view_directions(self) -> NDArray[np.float64]:
        """[N, 3] unit forward (-Z) axes."""
        return unit(-self.c2w[:, :, 2])

    @property
    def up(self) -> NDArray[np.float64]:
        """Normalised mean of the cameras' up (+Y) axes; +Z when they cancel out."""
        return mean_up(self.c2w)


def detect_scene_type(rig: TrainingRig) -> Literal["360", "forward"]:
    """'forward' when all view directions are within :data:`~mobiler2l_ns.geometry.FORWARD_MAX_ANGLE_DEG` of their
    mean, else '360'."""
    return detect_layout(rig.view_directions)


def shell_stats(rig: TrainingRig) -> ShellStats:
    """Centre, up, radius range and elevations of a 360 capture."""
    centre = focus_point(rig.centres, rig.view_directions)
    up = rig.up
    offsets = rig.centres - centre
    radii = np.linalg.norm(offsets, axis=-1)
    if float(radii.min()) <= 1e-9:
        raise ValueError("a training camera sits at the scene centre: cannot sample a 360 shell")
    elevations = np.arcsin(np.clip((offsets @ up) / radii, -1.0, 1.0))
    return ShellStats(centre, up, (float(radii.min()), float(radii.max())), elevations)


def enlarged_box(points: NDArray[np.float64], scale: float) -> NDArray[np.float64]:
    """[2, 3] axis-aligned box of ``points`` [N, 3] scaled by ``scale`` about its centre."""
    lo, hi = points.min(axis=0), points.max(axis=0)
    mid, half = 0.5 * (lo + hi), 0.5 * (hi - lo) * scale
    return np.stack([mid - half, mid + half])


def forward_stats(rig: TrainingRig, bbox_scale: float) -> ForwardStats:
    """Enlarged position and direction boxes of a forward-facing capture."""
    dirs = rig.view_directions
    return ForwardStats(
        position_box=enlarged_box(rig.centres, bbox_scale),
        direction_box=enlarged_box(dirs, bbox_scale),
        up=rig.up,
        directions=dirs,
    )


def _sample_360(stats: ShellStats, rng: np.random.Generator) -> NDArray[np.float64]:
    elevations = stats.elevations
    n = elevations.shape[0]
    spread = float(elevations.std())
    bandwidth = 1.06 * spread * n ** (-0.2)  # Silverman's rule
    elevation = float(elevations[rng.integers(n)]) + bandwidth * float(rng.standard_normal())
    limit = math.radians(MAX_ELEVATION_DEG)
    elevation = float(np.clip(elevation, max(elevations.min(), -limit), min(elevations.max(), limit)))
    azimuth = float(rng.uniform(0.0, 2.0 * math.pi))
    r_min, r_max = stats.radius_range
    radius = float(rng.uniform(r_min, r_max))
    e1, e2 = perpendicular_basis(stats.up)
    direction = math.cos(elevation) * (math.cos(azimuth) * e1 + math.sin(azimuth) * e2) + math.sin(elevation) * stats.up
    position = stats.centre + radius * direction
    return look_along(position, stats.centre - position, stats.up)


def _sample_forward(stats: ForwardStats, rng: np.random.Generator) -> NDArray[np.float64]:
    lo, hi = stats.position_box
    position = lo + (hi - lo) * rng.random(3)
    d_lo, d_hi = stats.direction_box
    direction = None
    for _ in range(16):  # rejection: normalised samples that stay in the box
        candidates = unit(d_lo + (d_hi - d_lo) * rng.random((64, 3)))
        inside = np.all((candidates >= d_lo - 1e-9) & (candidates <= d_hi + 1e-9), axis=-1)
        if inside.any():
            direction = candidates[int(np.argmax(inside))]
            break
    if direction is None:  # a degenerate (flat) box: a training direction is always inside
        direction = stats.directions[rng.integers(stats.directions.shape[0])]
    return look_along(position, direction, stats.up)


def resolve_scene_type(rig: TrainingRig, scene_type: SceneType) -> Literal["360", "forward"]:
    """``scene_type`` with 'auto' replaced by :func:`detect_scene_type`."""
    return detect_scene_type(rig) if scene_type == "auto" else scene_type  # type: ignore[return-value]


def sample_poses(
    rig: TrainingRig, config: PoseConfig, start: int = 0, stop: int | None = None
) -> Tuple[Float[Tensor, "N 3 4"], Float[Tensor, "N 6"]]:
    """c2w ``[N, 3, 4]`` and intrinsics ``[N, 6]`` (fx, fy, cx, cy, width, height), float32, of views
    ``start .. stop-1`` (default: all ``config.count``)."""
    config.validate()
    stop = config.count if stop is None else stop
    if not 0 <= start <= stop <= config.count:
        raise ValueError(f"view range {start}..{stop} outside 0..{config.count}")
    kind = resolve_scene_type(rig, config.scene_type)
    stats = shell_stats(rig) if kind == "360" else forward_stats(rig, config.bbox_scale)
    c2ws, intrinsics = [], []
    for index in range(start, stop):
        rng = np.random.default_rng([config.seed, index])
        camera = rig.intrinsics[rng.integers(rig.intrinsics.shape[0])]
        c2ws.append(_sample_360(stats, rng) if kind == "360" else _sample_forward(stats, rng))  # type: ignore[arg-type]
        if config.patch_size is not None:
            camera = random_patch(camera, config.patch_size, config.patch_alignment, rng)
        intrinsics.append(camera)
    if not c2ws:
        return torch.zeros(0, 3, 4), torch.zeros(0, 6)
    return (
        torch.from_numpy(np.stack(c2ws)).float(),
        torch.from_numpy(np.stack(intrinsics)).float(),
    )


def random_patch(
    intrinsics: NDArray[np.float64], size: Tuple[int, int], alignment: int, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Intrinsics ``(fx, fy, cx, cy, width, height)`` of a random aligned window of ``size`` (height,
    width; clamped to the image) of a camera: principal point shifted by the window's offset."""
    fx, fy, cx, cy, width, height = intrinsics
    patch_h, patch_w = min(size[0], int(height)), min(size[1], int(width))
    y0 = alignment * rng.integers(0, (int(height) - patch_h) // alignment + 1)
    x0 = alignment * rng.integers(0, (int(width) - patch_w) // alignment + 1)
    return np.array([fx, fy, cx - x0, cy - y0, patch_w, patch_h], dtype=np.float64)


def make_cameras(c2w: Float[Tensor, "N 3 4"], intrinsics: Float[Tensor, "N 6"], like: Cameras | None = None) -> Cameras:
    """Perspective nerfstudio cameras from :func:`sample_poses` output (intrinsics dtype of ``like``)."""
    dtype = like.fx.dtype if like is not None else torch.float32
    column = lambda i: intrinsics[:, i : i + 1].to(dtype)  # noqa: E731
    return Cameras(
        camera_to_worlds=c2w.float(),
        fx=column(0),
        fy=column(1),
        cx=column(2),
        cy=column(3),
        width=intrinsics[:, 4:5].round().long(),
        height=intrinsics[:, 5:6].round().long(),
        camera_type=CameraType.PERSPECTIVE,
    )


def pose_fingerprint(rig: TrainingRig, config: PoseConfig) -> Dict[str, object]:
    """The pose config as recorded in a cache: the settings, the resolved scene type and a hash of
    the training rig (so a cache sampled around other training cameras is recognised)."""
    rig_bytes = np.round(np.concatenate([rig.c2w.reshape(-1), rig.intrinsics.reshape(-1)]), 4)
    rig_bytes = (rig_bytes + 0.0).astype("<f8").tobytes()  # +0.0: -0.0 and 0.0 hash alike
    settings = asdict(config)
    if config.patch_size is None:  # whole views: the fingerprint of caches made before patches existed
        del settings["patch_size"], settings["patch_alignment"]
    settings["scene_type"] = resolve_scene_type(rig, config.scene_type)
    settings["training_cameras"] = hashlib.sha256(rig_bytes).hexdigest()[:16]
    settings["hash"] = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
    return settings
