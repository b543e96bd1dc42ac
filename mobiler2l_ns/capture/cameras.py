"""Camera geometry of a capture: centres, viewing directions, scene centre, up, 360 / forward layout,
and the azimuth / elevation / nearest-neighbour figures the checks and the plot use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Tuple

import numpy as np
from numpy.typing import NDArray

from mobiler2l_ns.geometry import Layout, detect_layout, focus_point, mean_up, perpendicular_basis, unit

FloatArray = NDArray[np.float64]


@dataclass
class CameraLayout:
    """Camera geometry of a capture in the dataparser's world (for checks and the plot)."""

    centres: FloatArray
    """[N, 3] camera centres."""
    directions: FloatArray
    """[N, 3] unit viewing directions (the camera's -Z)."""
    centre: FloatArray
    """[3] scene centre: least-squares point nearest to the optical axes."""
    up: FloatArray
    """[3] unit up direction (mean camera up)."""
    layout: Layout


def camera_layout(cameras) -> CameraLayout:
    """Centres, viewing directions, scene centre, up and layout (360 / forward) of nerfstudio cameras."""
    c2w = cameras.camera_to_worlds.detach().cpu().double().numpy().reshape(-1, 3, 4)
    if c2w.shape[0] == 0:
        raise ValueError("no cameras in the capture")
    centres = c2w[:, :, 3].copy()
    directions = unit(-c2w[:, :, 2])
    return CameraLayout(
        centres=centres,
        directions=directions,
        centre=focus_point(centres, directions),
        up=mean_up(c2w),
        layout=detect_layout(directions),
    )


def azimuths_elevations(cams: CameraLayout) -> Tuple[FloatArray, FloatArray]:
    """Azimuth in [0, 360) and elevation in degrees of every camera about the centre and up axis
    (azimuth measured in :func:`~mobiler2l_ns.geometry.perpendicular_basis` of ``up``)."""
    e1, e2 = perpendicular_basis(cams.up)
    offsets = cams.centres - cams.centre
    radii = np.linalg.norm(offsets, axis=-1).clip(min=1e-12)
    azimuth = np.degrees(np.arctan2(offsets @ e2, offsets @ e1)) % 360.0
    elevation = np.degrees(np.arcsin(np.clip((offsets @ cams.up) / radii, -1.0, 1.0)))
    return azimuth, elevation


def largest_azimuth_gap(azimuth: FloatArray) -> Tuple[float, int, int]:
    """Largest circular gap (degrees) between sorted azimuths and the indices of the frames bordering
    it (counter-clockwise: from ``i`` to ``j``)."""
    order = np.argsort(azimuth)
    sorted_az = azimuth[order]
    gaps = np.diff(np.concatenate([sorted_az, sorted_az[:1] + 360.0]))
    k = int(np.argmax(gaps))
    return float(gaps[k]), int(order[k]), int(order[(k + 1) % len(order)])


def nearest_neighbour(values: FloatArray, metric: Literal["angle", "distance"]) -> FloatArray:
    """Per row of ``values`` ``[N, 3]``: angle in degrees between unit vectors, or Euclidean distance,
    to the nearest other row, ``[N]``."""
    if metric == "angle":
        cosines = np.clip(values @ values.T, -1.0, 1.0)
        table = np.degrees(np.arccos(cosines))
    else:
        table = np.linalg.norm(values[:, None, :] - values[None, :, :], axis=-1)
    np.fill_diagonal(table, np.inf)
    return table.min(axis=1)
