"""The browser viewer's orbit camera, in Python: the reference that ``static/camera.js`` ports.

Poses are those of :mod:`mobiler2l_ns.geometry` (nerfstudio camera-to-world, OpenGL axes, 3x4,
the dataparser's normalised world), whose pose maths this uses. The viewer's camera is the
reference runner's orbit (``metadata["orbit"]``, :func:`~mobiler2l_ns.export.runtime.orbit_poses`)
with two more degrees of freedom; :func:`viewer_pose` maps ``(base, a, b, zoom)`` to a pose:

``turntable`` (360 scenes): ``a`` is the azimuth (radians) about ``orbit["axis"]`` through
``orbit["center"]``, ``b`` the elevation (radians) about the base camera's right axis (its +X)
through the centre, ``zoom`` scales the camera's distance to the centre. The pose is
``A E (base)`` with ``A = rot(axis, a)``, ``E = rot(x_base, b)``, each rotation ``M`` acting as
``R -> M R``, ``t -> c + M (t - c)``, after ``t -> c + zoom (t - c)``.

``circle`` (forward-facing): the rotation stays the base's; the camera centre moves by
``radius (a x + b y + (zoom - 1) z)`` (``x, y, z``: the base camera's axes; ``zoom < 1`` moves it
forwards, ``radius = orbit["radius"]``).

So ``viewer_pose(base, orbit, 2 pi i / N, 0, 1)`` is frame ``i`` of ``orbit_poses(base, orbit, N)``
for a turntable, and ``viewer_pose(base, orbit, cos(2 pi i / N), sin(2 pi i / N), 1)`` for a circle:
the viewer starts at the reference runner's default view and its orbit passes through the
runner's ``--orbit`` frames. The orbit has no look-at step: like the runner's, it keeps the base
pose's orientation relative to the orbit, so the first frame is exactly the base pose.
:func:`~mobiler2l_ns.geometry.look_at` (``lookAt`` in JS, ``window.mobiler2l.lookAt``) places a
camera the way the pseudo views do.
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from mobiler2l_ns.geometry import PoseLike, as_pose, rotate_about_point, rotation_about


def viewer_pose(base: PoseLike, orbit: Dict[str, Any], a: float, b: float, zoom: float = 1.0) -> np.ndarray:
    """The viewer camera's ``[3, 4]`` c2w for orbit parameters ``(a, b, zoom)`` (module docstring)."""
    pose = as_pose(base)
    if orbit["kind"] == "turntable":
        centre = np.asarray(orbit["center"], dtype=np.float64)
        pose[:, 3] = centre + zoom * (pose[:, 3] - centre)
        pose = rotate_about_point(pose, rotation_about(pose[:, 0], b), centre)
        return rotate_about_point(pose, rotation_about(orbit["axis"], a), centre)
    radius = float(orbit["radius"])
    pose[:, 3] = pose[:, 3] + radius * (a * pose[:, 0] + b * pose[:, 1] + (zoom - 1.0) * pose[:, 2])
    return pose
