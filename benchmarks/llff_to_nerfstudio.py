"""A ``nerfstudio-data`` folder from a capture's reference LLFF poses (``poses_bounds.npy``), for benchmarks
that measure the teacher apart from structure-from-motion (not the user path: that is COLMAP).

    python benchmarks/llff_to_nerfstudio.py ../shared/data/ethiopian-head-photos runs/eth-llff

Writes ``OUT/transforms.json`` (OpenGL camera-to-world, one pinhole camera, focal from the file) and
``OUT/images/`` (symbolic links to the photos, name-sorted, one per row of ``poses_bounds.npy``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from mobiler2l_ns.utils.data_checks import list_photos
from mobiler2l_ns.utils.io import write_json_atomic


def convert(capture: Path, out: Path) -> Path:
    rows = np.load(capture / "poses_bounds.npy")
    poses = rows[:, :15].reshape(-1, 3, 5)
    photos = sorted(list_photos(capture / "images"))
    if len(photos) != len(poses):
        raise SystemExit(f"{capture}: {len(photos)} photos but {len(poses)} poses in poses_bounds.npy")
    height, width, focal = poses[0, :, 4]
    (out / "images").mkdir(parents=True, exist_ok=True)
    frames = []
    for photo, pose in zip(photos, poses):
        link = out / "images" / photo.name
        if not link.exists():
            link.symlink_to(photo.resolve())
        down, right, back, centre = pose[:, 0], pose[:, 1], pose[:, 2], pose[:, 3]
        c2w = np.eye(4)
        c2w[:3, :4] = np.stack([right, -down, back, centre], axis=1)  # LLFF [down, right, back] -> OpenGL
        frames.append({"file_path": f"images/{photo.name}", "transform_matrix": c2w.tolist()})
    meta = {"w": int(width), "h": int(height), "fl_x": float(focal), "fl_y": float(focal),
            "cx": width / 2.0, "cy": height / 2.0, "camera_model": "OPENCV", "frames": frames}  # fmt: skip
    write_json_atomic(out / "transforms.json", meta)
    return out / "transforms.json"


if __name__ == "__main__":
    if len(sys.argv) != 3:
        raise SystemExit("usage: llff_to_nerfstudio.py CAPTURE OUT")
    print(f"wrote {convert(Path(sys.argv[1]), Path(sys.argv[2]))}")
