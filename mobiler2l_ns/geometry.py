"""Pose and ray maths shared by every stage: one convention, one implementation.

Poses are nerfstudio camera-to-world matrices (OpenGL axes: the camera looks down its -Z, +Y up,
+X right), ``[3, 4]`` float64 numpy arrays, in the dataparser's normalised world unless a
function says otherwise. Look-at matrices are nerfstudio's :func:`~nerfstudio.cameras.camera_utils.viewmatrix`
(whose ``lookat`` argument is the camera's +Z, i.e. minus the viewing direction).
"""

from __future__ import annotations

import math
import warnings
from typing import Literal, Sequence, Tuple, Union

import numpy as np
import torch
from jaxtyping import Float
from numpy.typing import NDArray
from torch import Tensor

with warnings.catch_warnings():  # nerfstudio's torch.jit.script decorators warn on import (torch >= 2.9)
    warnings.simplefilter("ignore", FutureWarning)
    from nerfstudio.cameras.camera_utils import viewmatrix

from mobiler2l_ns.utils.errors import InputError

PoseLike = Union[np.ndarray, Sequence[Sequence[float]], Sequence[float]]
FloatArray = NDArray[np.float64]

ROTATION_TOLERANCE = 1e-3
"""Largest ``|R^T R - I|`` entry accepted in a camera pose (rounded JSON matrices stay far below it)."""


def check_rotation(rotation: FloatArray) -> None:
    """InputError unless ``rotation`` (3x3) is a rotation: orthonormal columns, determinant +1."""
    error = float(np.abs(rotation.T @ rotation - np.eye(3)).max())
    det = float(np.linalg.det(rotation))
    if error > ROTATION_TOLERANCE or det < 0:
        raise InputError(
            f"the camera pose's left 3x3 block is not a rotation (|R^T R - I| = {error:.3g}, det {det:.3g}): "
            "expected a camera-to-world matrix [R | t] with R orthonormal, det +1"
        )


def as_pose(c2w: PoseLike) -> FloatArray:
    """A ``[3, 4]`` float64 camera-to-world matrix from a 3x4 / 4x4 array (or 12 / 16 numbers)."""
    pose = np.asarray(c2w, dtype=np.float64)
    if pose.ndim == 1 and pose.size in (12, 16):
        pose = pose.reshape(-1, 4)
    if pose.shape not in ((3, 4), (4, 4)):
        raise InputError(f"a camera pose must be a 3x4 or 4x4 camera-to-world matrix, got shape {pose.shape}")
    if not np.isfinite(pose).all():
        raise InputError("the camera pose contains NaN or infinite values")
    check_rotation(pose[:3, :3])
    return pose[:3, :4].copy()


def to_normalised(c2w: PoseLike, transform: PoseLike, scale: float) -> FloatArray:
    """A c2w in the capture's original coordinates -> the dataparser's normalised world.

    ``transform`` ``T`` (3x4) and ``scale`` ``s`` are the dataparser's (``dataparser_transforms.json``):
    ``R' = T[:, :3] R``, ``t' = s (T[:, :3] t + T[:, 3])``.
    """
    pose = as_pose(c2w)
    T = np.asarray(transform, dtype=np.float64)[:3, :4]
    rotation = T[:, :3] @ pose[:, :3]
    translation = scale * (T[:, :3] @ pose[:, 3] + T[:, 3])
    return np.concatenate([rotation, translation[:, None]], axis=1)


def to_original(c2w: PoseLike, transform: PoseLike, scale: float) -> FloatArray:
    """Inverse of :func:`to_normalised`."""
    pose = as_pose(c2w)
    T = np.asarray(transform, dtype=np.float64)[:3, :4]
    inv = np.linalg.inv(T[:, :3])
    rotation = inv @ pose[:, :3]
    translation = inv @ (pose[:, 3] / scale - T[:, 3])
    return np.concatenate([rotation, translation[:, None]], axis=1)


def rotation_about(axis: Sequence[float], angle: float) -> FloatArray:
    """``[3, 3]`` Rodrigues rotation of ``angle`` radians about the (normalised) ``axis``."""
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + math.sin(angle) * K + (1.0 - math.cos(angle)) * (K @ K)


def rotate_about_point(pose: FloatArray, matrix: FloatArray, centre: FloatArray) -> FloatArray:
    """``[R | t] -> [M R | c + M (t - c)]``: a rigid rotation ``M`` of the camera about the point ``c``."""
    rotation = matrix @ pose[:, :3]
    translation = centre + matrix @ (pose[:, 3] - centre)
    return np.concatenate([rotation, translation[:, None]], axis=1)


def perpendicular_basis(up: FloatArray) -> Tuple[FloatArray, FloatArray]:
    """Unit ``e1, e2`` completing the unit vector ``up`` to a right-handed frame ``(e1, e2, up)``."""
    up = np.asarray(up, dtype=np.float64)
    helper = np.array([1.0, 0.0, 0.0]) if abs(up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
    e1 = np.cross(up, helper)
    e1 = e1 / np.linalg.norm(e1)
    return e1, np.cross(up, e1)


def look_along(position: Sequence[float], forward: Sequence[float], up: Sequence[float]) -> FloatArray:
    """``[3, 4]`` c2w at ``position`` looking along ``forward``, no roll about ``up``.

    Looking (anti)parallel to ``up``, any perpendicular right vector is taken.
    """
    position_v = np.asarray(position, dtype=np.float64)
    forward_v = np.asarray(forward, dtype=np.float64)
    forward_v = forward_v / np.linalg.norm(forward_v)
    up_v = np.asarray(up, dtype=np.float64)
    if float(np.linalg.norm(np.cross(forward_v, up_v))) < 1e-6 * float(np.linalg.norm(up_v)):
        up_v = -perpendicular_basis(forward_v)[1]  # looking along up: right = e1 (as camera.js lookAt)
    with warnings.catch_warnings():  # viewmatrix's torch.cross without dim= (deprecated; same result for 3-vectors)
        warnings.simplefilter("ignore", UserWarning)
        c2w = viewmatrix(torch.from_numpy(-forward_v), torch.from_numpy(up_v), torch.from_numpy(position_v))
    return c2w.numpy()


def look_at(position: Sequence[float], target: Sequence[float], up: Sequence[float]) -> FloatArray:
    """``[3, 4]`` c2w at ``position`` looking at ``target``, no roll about ``up``."""
    position_v = np.asarray(position, dtype=np.float64)
    return look_along(position_v, np.asarray(target, dtype=np.float64) - position_v, up)


# --------------------------------------------------------------------------- camera rigs

Layout = Literal["360", "forward"]

FORWARD_MAX_ANGLE_DEG = 60.0
"""A capture is forward facing when every viewing direction is within this angle of their mean."""


def unit(v: FloatArray) -> FloatArray:
    """``[..., 3]`` vectors normalised along the last axis (zero vectors stay near zero)."""
    return v / np.linalg.norm(v, axis=-1, keepdims=True).clip(min=1e-12)


def mean_up(c2w: FloatArray) -> FloatArray:
    """``[3]``: normalised mean of the cameras' up (+Y) axes of ``c2w`` ``[N, 3, 4]``; +Z when they cancel out."""
    mean = unit(c2w[:, :, 1]).mean(axis=0)
    norm = float(np.linalg.norm(mean))
    return mean / norm if norm > 1e-6 else np.array([0.0, 0.0, 1.0])


def detect_layout(directions: FloatArray) -> Layout:
    """'forward' when all unit viewing ``directions`` ``[N, 3]`` are within :data:`FORWARD_MAX_ANGLE_DEG`
    of their mean, else '360'."""
    mean = directions.mean(axis=0)
    if float(np.linalg.norm(mean)) < 1e-6:
        return "360"
    cosines = directions @ (mean / np.linalg.norm(mean))
    return "forward" if float(cosines.min()) >= math.cos(math.radians(FORWARD_MAX_ANGLE_DEG)) else "360"


def focus_point(centres: FloatArray, directions: FloatArray) -> FloatArray:
    """``[3]``: least-squares point nearest to every optical axis (``centres``, unit ``directions``,
    ``[N, 3]``); the origin when the axes are nearly parallel and no such point is defined."""
    projectors = np.eye(3)[None] - directions[:, :, None] * directions[:, None, :]  # I - d d^T
    a = projectors.sum(axis=0)
    b = (projectors @ centres[:, :, None]).sum(axis=0)[:, 0]
    if np.linalg.cond(a) > 1e6:
        return np.zeros(3)
    return np.linalg.solve(a, b)


def homogeneous(c2w: FloatArray) -> FloatArray:
    """``[3, 4]`` -> ``[4, 4]`` (last row ``0 0 0 1``)."""
    out = np.eye(4)
    out[:3, :4] = c2w[:3, :4]
    return out


def ray_box_intersect(
    origins: Float[Tensor, "*batch 3"], directions: Float[Tensor, "*batch 3"], box: Float[Tensor, "2 3"]
) -> Tuple[Float[Tensor, " *batch"], Float[Tensor, " *batch"]]:
    """Slab test: distances along each ray where it enters and leaves the box ``[min, max]``.

    ``leave < enter`` where the ray misses. Direction components are kept at least 1e-9 away from
    zero with their sign (no division by zero; the same ops export to ONNX).
    """
    safe = torch.where(directions >= 0, directions.clamp_min(1e-9), directions.clamp_max(-1e-9))
    t0 = (box[0] - origins) / safe
    t1 = (box[1] - origins) / safe
    return torch.minimum(t0, t1).amax(dim=-1), torch.maximum(t0, t1).amin(dim=-1)
