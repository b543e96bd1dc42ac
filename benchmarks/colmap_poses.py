"""How close the camera poses COLMAP found for a capture are to a reference (e.g. the authors' LLFF poses).

    python benchmarks/colmap_poses.py PROCESSED [PROCESSED ...] \
        --reference ../shared/data/ethiopian-head-photos/poses_bounds.npy

``PROCESSED`` is an ``ns-process-data`` folder (``transforms.json``) of the same photos, in the same
(name-sorted) order as the reference's rows. The camera centres are aligned to the reference's by the
best similarity transform (Umeyama: rotation, uniform scale, translation); printed per folder: frames
registered, the centres' RMS error after alignment as a share of the reference cameras' mean distance to
their centroid, the focal length(s) against the reference's (pixels, at the processed image width), and
the mean angle between the aligned and reference viewing directions.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np


def umeyama(src: np.ndarray, dst: np.ndarray) -> Tuple[np.ndarray, float, np.ndarray]:
    """``(R [3, 3], s, t [3])`` minimising ``|s R src + t - dst|`` over rows ``[N, 3]`` (a proper rotation)."""
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    u, sigma, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ d @ vt
    scale = float(np.trace(np.diag(sigma) @ d) / (a**2).sum(1).mean())
    return rotation, scale, mu_d - scale * rotation @ mu_s


def reference_poses(path: Path) -> Tuple[np.ndarray, np.ndarray, float, float]:
    """LLFF ``poses_bounds.npy``: camera centres ``[N, 3]``, viewing directions ``[N, 3]``, focal, width."""
    poses = np.load(path)[:, :15].reshape(-1, 3, 5)
    # LLFF columns: [down, right, backwards] axes, centre, [h, w, focal]; the camera looks along -backwards
    return poses[:, :, 3], -poses[:, :, 2], float(poses[0, 2, 4]), float(poses[0, 1, 4])


def processed_poses(folder: Path) -> Tuple[List[str], np.ndarray, np.ndarray, Dict[str, float]]:
    """transforms.json (OpenGL camera-to-world): names, centres, viewing directions, intrinsics."""
    meta = json.loads((folder / "transforms.json").read_text())
    frames = sorted(meta["frames"], key=lambda f: f["file_path"])
    c2w = np.array([f["transform_matrix"] for f in frames], dtype=np.float64)
    intrinsics = {k: float(meta[k]) for k in ("fl_x", "fl_y", "w") if k in meta}
    return [f["file_path"] for f in frames], c2w[:, :3, 3], -c2w[:, :3, 2], intrinsics


def compare(folder: Path, reference: Path) -> Dict[str, float]:
    ref_centres, ref_dirs, ref_focal, ref_width = reference_poses(reference)
    names, centres, dirs, intrinsics = processed_poses(folder)
    # ns-process-data's frame_00001.jpg ... are the sorted photos (a missing number: a photo COLMAP did not
    # register); other names are the photos themselves, all of them, sorted
    stems = [Path(n).stem for n in names]
    if all(s.startswith("frame_") and s[6:].isdigit() for s in stems):
        index = [int(s[6:]) - 1 for s in stems]
    else:
        index = list(range(len(names)))
    rotation, scale, shift = umeyama(centres, ref_centres[index])
    aligned = scale * centres @ rotation.T + shift
    radius = np.linalg.norm(ref_centres - ref_centres.mean(0), axis=1).mean()
    cosines = np.clip(((dirs @ rotation.T) * ref_dirs[index]).sum(1), -1.0, 1.0)
    focal_scale = intrinsics.get("w", ref_width) / ref_width
    return {
        "registered": len(names),
        "of": len(ref_centres),
        "centre_rms_share": float(np.sqrt(((aligned - ref_centres[index]) ** 2).sum(1).mean()) / radius),
        "view_angle_deg": float(np.degrees(np.arccos(cosines)).mean()),
        "fl_x": intrinsics.get("fl_x", float("nan")),
        "fl_y": intrinsics.get("fl_y", float("nan")),
        "reference_focal": ref_focal * focal_scale,
    }


def main(argv: List[str]) -> None:
    if "--reference" not in argv or argv.index("--reference") + 1 >= len(argv):
        raise SystemExit("usage: colmap_poses.py PROCESSED [PROCESSED ...] --reference poses_bounds.npy")
    at = argv.index("--reference")
    reference = Path(argv[at + 1])
    if not reference.is_file():
        raise SystemExit(f"--reference {reference}: no such file (expected an LLFF poses_bounds.npy)")
    folders = [Path(a) for a in argv[:at] + argv[at + 2 :]]
    for folder in folders:
        if not (folder / "transforms.json").is_file():
            raise SystemExit(f"{folder}: expected an ns-process-data folder with transforms.json")
    for folder in folders:
        r = compare(folder, reference)
        print(f"{folder}: {r['registered']}/{r['of']} registered, centre RMS {100 * r['centre_rms_share']:.1f} % of "
              f"the ring radius, viewing directions {r['view_angle_deg']:.1f} deg off, focal {r['fl_x']:.0f} x "
              f"{r['fl_y']:.0f} px (reference {r['reference_focal']:.0f})")  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
