"""Comparison strip: ground truth | teacher | student | |student - ground truth| for a few views.

    python -m mobiler2l_ns.utils.strip RENDERS --out strip.png [--views 4]

RENDERS holds ``ns-render dataset`` outputs: ``teacher/test/{gt-rgb,rgb}/*.png`` and
``student/test/rgb/*.png``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import List

import numpy as np
from PIL import Image

from mobiler2l_ns.utils.errors import InputError


def load(path: Path) -> np.ndarray:
    """An image as float [H, W, 3] in [0, 1]."""
    return np.asarray(Image.open(path).convert("RGB"), dtype=np.float32) / 255.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    return float(-10.0 * np.log10(max(float(np.mean((a - b) ** 2)), 1e-10)))


def comparison_strip(columns: List[List[Path]], views: int) -> np.ndarray:
    """Rows of views, columns of sources (first column = ground truth), plus an error column."""
    rows = []
    for i in range(min(views, *(len(c) for c in columns))):
        images = [load(c[i]) for c in columns]
        error = np.abs(images[-1] - images[0]).mean(-1, keepdims=True).repeat(3, -1)
        rows.append(np.concatenate(images + [np.clip(error * 4, 0, 1)], axis=1))
    return np.concatenate(rows, axis=0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("renders", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--views", type=int, default=4)
    args = parser.parse_args()
    folders = [args.renders / "teacher/test/gt-rgb", args.renders / "teacher/test/rgb", args.renders / "student/test/rgb"]
    columns = [sorted(f.glob("*.png")) for f in folders]
    for folder, files in zip(folders, columns):
        if not files:
            raise InputError(f"{folder}: no PNG renders (run ns-render dataset first)")
    strip = comparison_strip(columns, args.views)
    tmp = args.out.with_name(args.out.name + ".tmp.png")
    Image.fromarray((strip * 255).round().astype(np.uint8)).save(tmp)
    os.replace(tmp, args.out)
    for name, files in (("teacher", columns[1]), ("student", columns[2])):
        scores = [psnr(load(f), load(g)) for f, g in zip(files, columns[0])]
        print(f"{name}: mean PSNR {np.mean(scores):.2f} dB over {len(scores)} test views")
    print(f"wrote {args.out} (ground truth | teacher | student | 4x |student - ground truth|)")


if __name__ == "__main__":
    main()
