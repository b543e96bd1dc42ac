"""Tests for the procedural scene renderer (mobiler2l_ns.scenes.synthetic)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mobiler2l_ns.scenes.synthetic import main, render_blender_scene, render_forward_facing_scene
from mobiler2l_ns.utils.errors import InputError

REPO_ROOT = Path(__file__).resolve().parents[1]
SIZE = 24
COUNTS = {"train": 4, "val": 1, "test": 2}


def _blender(out: Path, seed: int = 0) -> Path:
    return render_blender_scene(out, SIZE, COUNTS["train"], COUNTS["val"], COUNTS["test"], seed)


def _forward(out: Path, seed: int = 0) -> Path:
    return render_forward_facing_scene(out, 32, 24, 6, seed)


def _all_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def _poses(root: Path, split: str) -> np.ndarray:
    meta = json.loads((root / f"transforms_{split}.json").read_text())
    return np.array([f["transform_matrix"] for f in meta["frames"]])


@pytest.fixture(scope="module")
def blender_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _blender(tmp_path_factory.mktemp("blender"))


@pytest.fixture(scope="module")
def forward_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _forward(tmp_path_factory.mktemp("forward"))


# ----------------------------------------------------------------- blender ---


def test_blender_structure_and_alpha(blender_dir: Path) -> None:
    expected = {f"transforms_{s}.json" for s in COUNTS} | {f"{s}/r_{i}.png" for s, n in COUNTS.items() for i in range(n)}
    assert set(_all_files(blender_dir)) == expected  # no stray temp files
    for split, n in COUNTS.items():
        meta = json.loads((blender_dir / f"transforms_{split}.json").read_text())
        assert meta["camera_angle_x"] == pytest.approx(0.69)
        assert len(meta["frames"]) == n
        for i, frame in enumerate(meta["frames"]):
            assert frame["file_path"] == f"./{split}/r_{i}"
            assert frame["rotation"] == 0.0
            c2w = np.array(frame["transform_matrix"])
            assert c2w.shape == (4, 4)
            np.testing.assert_allclose(c2w[3], [0, 0, 0, 1])
            np.testing.assert_allclose(c2w[:3, :3] @ c2w[:3, :3].T, np.eye(3), atol=1e-9)
            eye = c2w[:3, 3]
            assert np.linalg.norm(eye) == pytest.approx(4.0)
            elev = np.degrees(np.arcsin(eye[2] / 4.0))
            assert 10.0 - 1e-6 <= elev <= 70.0 + 1e-6
            # the camera's -Z axis points at the origin
            np.testing.assert_allclose(-c2w[:3, 2], -eye / np.linalg.norm(eye), atol=1e-9)
            img = np.asarray(Image.open(blender_dir / f"{split}/r_{i}.png"))
            assert img.shape == (SIZE, SIZE, 4) and img.dtype == np.uint8
            for r, c in [(0, 0), (0, SIZE - 1), (SIZE - 1, 0), (SIZE - 1, SIZE - 1)]:
                assert img[r, c, 3] == 0, (split, i, r, c)
            assert img[SIZE // 2, SIZE // 2, 3] > 0
            assert (img[..., 3] == 255).sum() > 0.1 * SIZE * SIZE  # the object fills a fair part of the view


def test_blender_deterministic_and_seeded(tmp_path: Path, blender_dir: Path) -> None:
    again = _blender(tmp_path / "again", seed=0)
    assert _all_files(again) == _all_files(blender_dir)  # byte-identical PNGs and JSON
    other = _blender(tmp_path / "other", seed=1)
    for split in COUNTS:
        assert not np.allclose(_poses(other, split), _poses(blender_dir, split))
    # splits do not share poses
    eyes = {s: _poses(blender_dir, s)[:, :3, 3] for s in COUNTS}
    for a, b in [("train", "val"), ("train", "test"), ("val", "test")]:
        dists = np.linalg.norm(eyes[a][:, None] - eyes[b][None], axis=-1)
        assert dists.min() > 1e-3


def test_blender_loads_in_nerfstudio(blender_dir: Path) -> None:
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig

    parser = BlenderDataParserConfig(data=blender_dir).setup()
    for split, n in COUNTS.items():
        out = parser.get_dataparser_outputs(split)
        assert len(out.image_filenames) == n
        assert all(Path(f).is_file() for f in out.image_filenames)
        assert int(out.cameras.image_height[0]) == SIZE
        assert int(out.cameras.image_width[0]) == SIZE


# ----------------------------------------------------------------- forward ---


def test_forward_structure_and_opacity(forward_dir: Path) -> None:
    files = _all_files(forward_dir)
    assert set(files) == {"transforms.json"} | {f"images/frame_{i:05d}.png" for i in range(1, 7)}
    meta = json.loads(files["transforms.json"])
    assert meta["camera_model"] == "OPENCV"
    assert (meta["w"], meta["h"]) == (32, 24)
    assert (meta["cx"], meta["cy"]) == (16.0, 12.0)
    assert meta["fl_x"] == meta["fl_y"] > 0
    eyes = []
    for i, frame in enumerate(meta["frames"], start=1):
        assert frame["file_path"] == f"images/frame_{i:05d}.png"
        c2w = np.array(frame["transform_matrix"])
        eyes.append(c2w[:3, 3])
        assert -c2w[2, 2] < -0.95  # looks roughly along world -Z
        img = np.asarray(Image.open(forward_dir / frame["file_path"]))
        assert img.shape == (24, 32, 3) and img.dtype == np.uint8  # RGB, fully opaque
        assert img.std() > 10  # textured, not blank
    eyes_arr = np.array(eyes)
    assert np.ptp(eyes_arr[:, 0]) <= 0.5 + 1e-9 and np.ptp(eyes_arr[:, 2]) < 1e-9  # small planar patch


def test_forward_deterministic(tmp_path: Path, forward_dir: Path) -> None:
    assert _all_files(_forward(tmp_path / "again")) == _all_files(forward_dir)
    other = json.loads((_forward(tmp_path / "other", seed=3) / "transforms.json").read_text())
    base = json.loads((forward_dir / "transforms.json").read_text())
    assert other["frames"] != base["frames"]


def test_forward_loads_in_nerfstudio(forward_dir: Path) -> None:
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    # 6 frames: eval every 3rd (frames 0 and 3) -> 4 train / 2 eval
    parser = NerfstudioDataParserConfig(data=forward_dir, eval_mode="interval", eval_interval=3).setup()
    for split, n in (("train", 4), ("val", 2)):
        out = parser.get_dataparser_outputs(split)
        assert len(out.image_filenames) == n
        assert all(Path(f).is_file() for f in out.image_filenames)
        assert int(out.cameras.image_height[0]) == 24
        assert int(out.cameras.image_width[0]) == 32


# --------------------------------------------------------------------- CLI ---


def _cli(*args: str) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(REPO_ROOT), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    return subprocess.run(
        [sys.executable, "-m", "mobiler2l_ns.scenes.synthetic", *args],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


def test_cli_renders_and_overwrites(tmp_path: Path) -> None:
    out = tmp_path / "cli"
    # one real `python -m` run; the rest call main() in-process (importing the package pulls in torch, ~1 s)
    res = _cli("blender", str(out), "--size", "8", "--n-train", "3", "--n-val", "1", "--n-test", "1")
    assert res.returncode == 0, res.stderr
    assert (out / "train" / "r_2.png").is_file()
    assert main(["blender", str(out), "--size", "8", "--n-train", "2", "--n-val", "1", "--n-test", "1", "--overwrite"]) == 0
    assert sorted(p.name for p in (out / "train").iterdir()) == ["r_0.png", "r_1.png"]  # stale view removed
    assert len(json.loads((out / "transforms_train.json").read_text())["frames"]) == 2
    assert main(["forward", str(tmp_path / "fwd"), "--width", "8", "--height", "8", "--n-frames", "1"]) == 0
    assert (tmp_path / "fwd" / "images" / "frame_00001.png").is_file()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["blender", "{out}", "--size", "4"], "--size must be an integer >= 8, got 4"),
        (["blender", "{out}", "--n-train", "0"], "--n-train must be an integer >= 1, got 0"),
        (["blender", "{out}", "--n-val", "0"], "--n-val must be an integer >= 1, got 0"),
        (["blender", "{out}", "--n-test", "-1"], "--n-test must be an integer >= 1, got -1"),
        (["blender", "{out}", "--radius", "1.5"], "--radius must be > 1.5, got 1.5"),
        (["blender", "{out}", "--camera-angle-x", "3.5"], "--camera-angle-x must be in (0, pi), got 3.5"),
        (["forward", "{out}", "--n-frames", "0"], "--n-frames must be an integer >= 1, got 0"),
        (["forward", "{out}", "--width", "7"], "--width must be an integer >= 8, got 7"),
        (["forward", "{out}", "--height", "2"], "--height must be an integer >= 8, got 2"),
        (["forward", "{out}", "--patch-width", "2"], "--patch-width must be in (0, 2), got 2.0"),
        (["blender", "{full}"], "is not empty; pass --overwrite to write into it"),
        (["forward", "{full}"], "is not empty; pass --overwrite to write into it"),
    ],
)
def test_cli_bad_value_is_one_line_error(tmp_path: Path, args: list[str], message: str) -> None:
    full = tmp_path / "full"
    full.mkdir()
    (full / "keep.txt").write_text("not ours")
    argv = [a.format(out=tmp_path / "new", full=full) for a in args]
    with pytest.raises(InputError) as exc:
        main(argv)
    assert message in exc.value.message and "\n" not in str(exc.value)
    assert not (tmp_path / "new").exists()  # nothing written
    assert [p.name for p in full.iterdir()] == ["keep.txt"]


@pytest.mark.parametrize(
    ("args", "flag"),
    [(["blender", "{out}", "--size", "abc"], "--size"), (["forward", "{out}", "--bogus"], "--bogus"), (["blender"], "")],
)
def test_cli_usage_error_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], flag: str) -> None:
    with pytest.raises(SystemExit) as exc:
        main([a.format(out=tmp_path / "new") for a in args])
    assert exc.value.code == 2
    assert flag in capsys.readouterr().err
    assert not (tmp_path / "new").exists()


def test_cli_bad_input_subprocess(tmp_path: Path) -> None:
    res = _cli("blender", str(tmp_path / "new"), "--size", "4")
    assert res.returncode == 1
    assert res.stderr.strip().splitlines() == ["mobiler2l: --size must be an integer >= 8, got 4"]
    assert not (tmp_path / "new").exists()


# ------------------------------------------------------------------ tracer ---


def test_tracer_matches_the_analytic_sphere() -> None:
    """Coverage and shading of a unit sphere against closed forms: the silhouette is a disc of radius
    ``f r / sqrt(D^2 - r^2)`` pixels; where the normal faces both camera and light the sRGB value is
    ``albedo ** (1 / 2.2)`` (ambient + full Lambert = 1)."""
    from mobiler2l_ns.geometry import homogeneous, look_at
    from mobiler2l_ns.scenes.primitives import Scene, Sphere
    from mobiler2l_ns.scenes.textures import checker3d
    from mobiler2l_ns.scenes.tracer import render_view

    albedo, distance, size, focal = 0.8, 5.0, 64, 40.0
    scene = Scene((Sphere((0.0, 0.0, 0.0), 1.0, checker3d(10.0, (albedo,) * 3, (albedo,) * 3)),), (0.0, 0.0, 1.0))
    c2w = homogeneous(look_at((0.0, 0.0, distance), (0.0, 0.0, 0.0), (0.0, 1.0, 0.0)))
    img = render_view(scene, c2w, size, size, focal, focal, size / 2, size / 2, np.random.default_rng(0), 4)
    disc = math.pi * (focal / math.sqrt(distance**2 - 1.0)) ** 2
    assert img[..., 3].sum() == pytest.approx(disc, rel=0.02)
    assert img[0, 0, 3] == 0.0 and img[size // 2, size // 2, 3] == 1.0
    np.testing.assert_allclose(img[size // 2, size // 2, :3], albedo ** (1 / 2.2), atol=2e-3)
