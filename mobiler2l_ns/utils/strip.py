"""Comparison strip: ground truth | teacher | student | |student - ground truth| for a few views.

    python -m mobiler2l_ns.utils.strip RENDERS --out strip.png [--views 4]

RENDERS holds ``ns-render dataset`` outputs: ``teacher/test/{gt-rgb,rgb}/*.png`` and
``student/test/rgb/*.png``. Also prints each model's mean PSNR over all test views.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, List, Optional, Sequence

import numpy as np
import tyro

from mobiler2l_ns.utils.cli import run_cli
from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.utils.io import read_rgb, write_png
from mobiler2l_ns.utils.metrics import psnr

COLUMNS = ("teacher/test/gt-rgb", "teacher/test/rgb", "student/test/rgb")
"""Folders under RENDERS: ground truth, teacher, student."""
ERROR_GAIN = 4.0
"""The error column shows ``ERROR_GAIN x |student - ground truth|`` (mean over RGB), clipped to 1."""


def comparison_strip(columns: List[List[Path]], views: int) -> np.ndarray:
    """``[views * H, (len(columns) + 1) * W, 3]`` float image: rows of views, columns of sources (first
    column = ground truth), plus an error column of the last source against the ground truth."""
    rows = []
    for i in range(min(views, *(len(c) for c in columns))):
        images = [read_rgb(c[i]) for c in columns]
        error = np.abs(images[-1] - images[0]).mean(-1, keepdims=True).repeat(3, -1)
        rows.append(np.concatenate(images + [np.clip(error * ERROR_GAIN, 0, 1)], axis=1))
    return np.concatenate(rows, axis=0)


@dataclass
class Strip:
    """Write the comparison strip of RENDERS and print the teacher's and student's mean PSNR."""

    renders: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="RENDERS")]]
    """Folder of ns-render dataset outputs (teacher/test/{gt-rgb,rgb}, student/test/rgb)."""
    out: Path
    """Output PNG."""
    views: int = 4
    """Rows (test views) in the strip."""

    def main(self) -> None:
        if self.views < 1:
            raise InputError(f"--views {self.views}: expected a positive number of views")
        folders = [self.renders / name for name in COLUMNS]
        columns = [sorted(f.glob("*.png")) for f in folders]
        for folder, files in zip(folders, columns):
            if not files:
                raise InputError(f"{folder}: no PNG renders (run ns-render dataset first)")
        write_png(self.out, comparison_strip(columns, self.views), what=f"--out {self.out}")
        truths = [read_rgb(f) for f in columns[0]]
        for name, files in (("teacher", columns[1]), ("student", columns[2])):
            scores = [psnr(read_rgb(f), truth) for f, truth in zip(files, truths)]
            print(f"{name}: mean PSNR {np.mean(scores):.2f} dB over {len(scores)} test views")
        print(f"wrote {self.out} (ground truth | teacher | student | 4x |student - ground truth|)")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; returns the exit status."""
    return run_cli(Strip, argv, prog="python -m mobiler2l_ns.utils.strip", description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
