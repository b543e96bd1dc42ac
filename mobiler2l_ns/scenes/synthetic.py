"""Deterministic procedural scenes rendered by a tiny analytic ray tracer: public API and CLI.

The project ships its own redistributable test scenes instead of depending on
third-party datasets. Two capture layouts are provided (plus a pose-less photo set for COLMAP):

* :func:`render_blender_scene` - a 360-degree "NeRF-synthetic" style capture of
  a small object (Z-up world, bounded well inside ``[-1.2, 1.2]^3``), written in
  the Blender format read by nerfstudio's ``blender-data`` parser (RGBA PNGs,
  transparent background).
* :func:`render_forward_facing_scene` - an LLFF-like forward-facing capture
  (Y-up world) in front of a textured back wall and floor, written in the
  ``nerfstudio-data`` format (``transforms.json`` + opaque RGB PNGs).
* :func:`render_photo_capture` - a textured 360 photo folder without poses.

The parts: :mod:`~mobiler2l_ns.scenes.textures` (solid textures),
:mod:`~mobiler2l_ns.scenes.primitives` (shapes, :class:`Scene`), :mod:`~mobiler2l_ns.scenes.builtin`
(the scenes), :mod:`~mobiler2l_ns.scenes.tracer` (rays, shading, cameras),
:mod:`~mobiler2l_ns.scenes.camera_paths` (seeded poses) and :mod:`~mobiler2l_ns.scenes.datasets`
(the folders written). Output is a pure function of the arguments (seeded), so two runs with the
same seed produce byte-identical files on the same platform.

CLI::

    python -m mobiler2l_ns.scenes.synthetic blender OUT --size 64 --n-train 40 --n-val 4 --n-test 8 --seed 0
    python -m mobiler2l_ns.scenes.synthetic forward OUT --width 80 --height 60 --n-frames 20

Bad values end in one line naming the flag (``mobiler2l: --size must be an integer >= 8, got 4``,
exit status 1); usage errors (unknown flag, not a number) are tyro's message, exit status 2.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Callable, Optional, Sequence, Union

import tyro

from mobiler2l_ns.scenes.builtin import forward_scene, object_scene, photo_scene
from mobiler2l_ns.scenes.camera_paths import hemisphere_poses, planar_patch_poses
from mobiler2l_ns.scenes.datasets import (
    SKY_SRGB,
    RenderArgumentError,
    render_blender_scene,
    render_forward_facing_scene,
    render_photo_capture,
)
from mobiler2l_ns.scenes.primitives import Scene
from mobiler2l_ns.scenes.tracer import focal_from_fov, render_view
from mobiler2l_ns.utils.cli import run_cli
from mobiler2l_ns.utils.errors import InputError

__all__ = [
    "SKY_SRGB",
    "RenderArgumentError",
    "Scene",
    "focal_from_fov",
    "forward_scene",
    "hemisphere_poses",
    "main",
    "object_scene",
    "photo_scene",
    "planar_patch_poses",
    "render_blender_scene",
    "render_forward_facing_scene",
    "render_photo_capture",
    "render_view",
]

PROG = "python -m mobiler2l_ns.scenes.synthetic"


def _render(out: Path, overwrite: bool, render: Callable[[], Path], views: int) -> int:
    """Check OUT, run ``render`` (a renderer call on OUT); a bad value is an InputError naming its flag."""
    if out.exists() and not out.is_dir():
        raise InputError(f"OUT {str(out)!r} exists and is not a directory")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise InputError(f"OUT {str(out)!r} is not empty; pass --overwrite to write into it")
    try:
        written = render()
    except RenderArgumentError as err:  # raised before anything is written
        raise InputError(f"--{err.name.replace('_', '-')} must be {err.expected}, got {err.value}") from None
    print(f"wrote {views} views to {written}")
    return 0


@dataclass
class Blender:
    """360 object scene in Blender / NeRF-synthetic format (RGBA)."""

    out: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="OUT")]]
    """Output folder."""
    size: int = 64
    """Image width = height in pixels (>= 8)."""
    n_train: int = 40
    """Training views (>= 1)."""
    n_val: int = 4
    """Validation views (>= 1)."""
    n_test: int = 8
    """Test views (>= 1)."""
    seed: int = 0
    """Seed for poses and anti-aliasing jitter (>= 0)."""
    radius: float = 4.0
    """Camera distance from the origin (> 1.5)."""
    camera_angle_x: float = 0.69
    """Horizontal FOV in radians."""
    supersample: int = 2
    """Jittered sub-samples per pixel side (>= 1)."""
    overwrite: bool = False
    """Allow writing into a non-empty OUT."""

    def main(self) -> int:
        def render() -> Path:
            return render_blender_scene(
                self.out, self.size, self.n_train, self.n_val, self.n_test, self.seed,
                radius=self.radius, camera_angle_x=self.camera_angle_x, supersample=self.supersample,
            )  # fmt: skip

        return _render(self.out, self.overwrite, render, self.n_train + self.n_val + self.n_test)


@dataclass
class Forward:
    """Forward-facing scene in nerfstudio-data format (RGB)."""

    out: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="OUT")]]
    """Output folder."""
    width: int = 80
    """Image width in pixels (>= 8)."""
    height: int = 60
    """Image height in pixels (>= 8)."""
    n_frames: int = 20
    """Number of frames (>= 1)."""
    seed: int = 0
    """Seed for poses and anti-aliasing jitter (>= 0)."""
    camera_angle_x: float = 0.96
    """Horizontal FOV in radians."""
    patch_width: float = 0.5
    """Width of the camera patch (world units)."""
    supersample: int = 2
    """Jittered sub-samples per pixel side (>= 1)."""
    overwrite: bool = False
    """Allow writing into a non-empty OUT."""

    def main(self) -> int:
        def render() -> Path:
            return render_forward_facing_scene(
                self.out, self.width, self.height, self.n_frames, self.seed,
                camera_angle_x=self.camera_angle_x, patch_width=self.patch_width, supersample=self.supersample,
            )  # fmt: skip

        return _render(self.out, self.overwrite, render, self.n_frames)


Command = Union[
    Annotated[Blender, tyro.conf.subcommand("blender")],
    Annotated[Forward, tyro.conf.subcommand("forward")],
]


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; returns the process exit status."""
    return run_cli(
        Command, argv, prog=PROG, description="Render a deterministic procedural scene (project-owned, Apache-2.0)."
    )


if __name__ == "__main__":
    sys.exit(main())
