"""The shared homes: atomic writes and images (utils.io), command lines (utils.cli), pose and ray maths (geometry)."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mobiler2l_ns import geometry
from mobiler2l_ns.utils.cli import parse_cli, run_cli
from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.utils.io import TEMP_MARKER, StagingDir, read_rgb, to_uint8, write_atomic, write_json_atomic, write_png


# --------------------------------------------------------------------------- utils.io


def test_write_atomic_replaces_whole_files_and_leaves_no_temporary(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "a.bin"
    write_atomic(path, b"first")
    write_atomic(path, b"second", durable=True)
    assert path.read_bytes() == b"second"
    assert [p.name for p in path.parent.iterdir()] == ["a.bin"]


def test_write_atomic_failure_keeps_the_old_file_and_names_it_in_one_line(tmp_path: Path, monkeypatch) -> None:
    path = tmp_path / "a.json"
    write_json_atomic(path, {"v": 1})

    def fail(src, dst):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(InputError, match=r"^mobiler2l: cache /x: cannot write a.json \(No space left on device\)$"):
        write_atomic(path, b"{}", what="cache /x")
    with pytest.raises(OSError):  # without `what` the OSError itself
        write_atomic(path, b"{}")
    assert path.read_text() == '{\n  "v": 1\n}\n'
    assert not [p for p in tmp_path.iterdir() if TEMP_MARKER in p.name]


def test_png_round_trip_and_rounding(tmp_path: Path) -> None:
    image = np.random.default_rng(0).random((5, 7, 3))
    write_png(tmp_path / "x.png", image)
    back = read_rgb(tmp_path / "x.png")
    assert back.dtype == np.float32 and back.shape == (5, 7, 3)
    np.testing.assert_array_equal(np.round(back * 255).astype(np.uint8), np.round(image * 255).astype(np.uint8))
    assert to_uint8(np.array([-0.5, 0.0, 0.2 / 255, 0.7 / 255, 1.0, 2.0])).tolist() == [0, 0, 0, 1, 255, 255]
    rgba = np.zeros((2, 2, 4), np.uint8)
    write_png(tmp_path / "rgba.png", rgba)
    assert Image.open(tmp_path / "rgba.png").mode == "RGBA"


def test_staging_dir_commits_and_restores(tmp_path: Path) -> None:
    out = tmp_path / "new" / "export"
    staging = StagingDir(out)
    (staging.path / "a.txt").write_text("a")
    assert staging.commit() == [out / "a.txt"] and (out / "a.txt").read_text() == "a"
    staging = StagingDir(out)  # into an existing folder: file by file, replacing
    (staging.path / "a.txt").write_text("b")
    (staging.path / "c.txt").write_text("c")
    staging.commit()
    assert sorted(p.name for p in out.iterdir()) == ["a.txt", "c.txt"] and (out / "a.txt").read_text() == "b"
    aborted = StagingDir(tmp_path / "p" / "q" / "never")
    aborted.abort()
    assert not (tmp_path / "p").exists()
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="--out .*file: exists and is not a directory"):
        StagingDir(tmp_path / "file", flag="--out")


# --------------------------------------------------------------------------- utils.cli


@dataclass
class Tool:
    count: int = 1
    """How many."""

    def main(self) -> int:
        if self.count < 1:
            raise InputError(f"--count {self.count}: expected a positive number")
        return self.count


def test_cli_parses_runs_and_maps_usage_errors(capsys) -> None:
    assert run_cli(Tool, ["--count", "3"]) == 3
    for status in (2, 1):
        with pytest.raises(SystemExit) as exit_info:
            parse_cli(Tool, ["--count", "many"], prog="tool", usage_exit_status=status)
        assert exit_info.value.code == status
    assert "count" in capsys.readouterr().err
    with pytest.raises(InputError, match="^mobiler2l: --count 0: expected a positive number$"):
        run_cli(Tool, ["--count", "0"])
    parsed, unknown = parse_cli(Tool, ["--count", "2", "--other", "x"], return_unknown_args=True)
    assert parsed.count == 2 and unknown == ["--other", "x"]


# --------------------------------------------------------------------------- geometry


def reference_look_along(position, forward, up) -> np.ndarray:
    """The textbook OpenGL look-at: right = forward x up, camera up = right x forward, camera z = -forward."""
    f = np.asarray(forward, float) / np.linalg.norm(forward)
    right = np.cross(f, up)
    right /= np.linalg.norm(right)
    return np.stack([right, np.cross(right, f), -f, np.asarray(position, float)], axis=1)


def test_look_at_is_the_opengl_convention() -> None:
    rng = np.random.default_rng(1)
    for _ in range(50):
        position, target, up = rng.normal(size=(3, 3))
        c2w = geometry.look_at(position, target, up)
        np.testing.assert_allclose(c2w, reference_look_along(position, target - position, up), atol=1e-12)
        np.testing.assert_allclose(c2w[:, :3].T @ c2w[:, :3], np.eye(3), atol=1e-12)
        assert np.linalg.det(c2w[:, :3]) == pytest.approx(1.0)
    straight_down = geometry.look_along([0, 0, 5], [0, 0, -1], [0, 0, 1])  # along up: still a rotation
    np.testing.assert_allclose(straight_down[:, 2], [0, 0, 1], atol=1e-12)
    np.testing.assert_allclose(straight_down[:, :3].T @ straight_down[:, :3], np.eye(3), atol=1e-12)
    np.testing.assert_allclose(geometry.homogeneous(straight_down)[3], [0, 0, 0, 1])


def test_perpendicular_basis_is_right_handed() -> None:
    for up in ([0, 0, 1], [1, 0, 0], [0.6, 0.8, 0.0]):
        e1, e2 = geometry.perpendicular_basis(np.asarray(up, float))
        np.testing.assert_allclose(np.cross(e1, e2), up, atol=1e-12)


def test_pose_checks_and_dataparser_transform_round_trip() -> None:
    rotation = geometry.rotation_about([1, 2, 3], 0.7)
    np.testing.assert_allclose(rotation @ rotation.T, np.eye(3), atol=1e-12)
    np.testing.assert_allclose(geometry.rotation_about([0, 0, 1], math.pi / 2) @ [1, 0, 0], [0, 1, 0], atol=1e-12)
    pose = np.concatenate([rotation, [[1.0], [2.0], [3.0]]], axis=1)
    transform = np.concatenate([geometry.rotation_about([0, 1, 0], 0.3), [[0.5], [0.0], [-1.0]]], axis=1)
    normalised = geometry.to_normalised(pose, transform, 0.25)
    np.testing.assert_allclose(normalised[:, 3], 0.25 * (transform[:, :3] @ pose[:, 3] + transform[:, 3]))
    np.testing.assert_allclose(geometry.to_original(normalised, transform, 0.25), pose, atol=1e-12)
    assert geometry.as_pose(list(pose.reshape(-1))).shape == (3, 4)
    with pytest.raises(InputError, match="not a rotation"):
        geometry.as_pose(np.diag([1.0, 1.0, -1.0, 1.0]))
    with pytest.raises(InputError, match="3x4 or 4x4"):
        geometry.as_pose(np.eye(3))
    moved = geometry.rotate_about_point(pose, geometry.rotation_about([0, 0, 1], math.pi), np.array([1.0, 2.0, 0.0]))
    np.testing.assert_allclose(moved[:, 3], [1.0, 2.0, 3.0], atol=1e-12)  # on the axis: stays


def test_ray_box_intersect_matches_the_slab_distances() -> None:
    box = torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]])
    origins = torch.tensor([[0.0, 0.0, -5.0], [0.0, 0.0, 0.0], [3.0, 3.0, -5.0], [0.5, 0.0, -5.0]])
    directions = torch.tensor([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 0.0, 1.0]])
    enter, leave = geometry.ray_box_intersect(origins, directions, box)
    torch.testing.assert_close(enter[[0, 1, 3]], torch.tensor([4.0, -1.0, 4.0]))
    torch.testing.assert_close(leave[[0, 1, 3]], torch.tensor([6.0, 1.0, 6.0]))
    assert bool(leave[2] < enter[2])  # a miss


def test_psnr_is_ten_log_of_the_range_over_the_mse() -> None:
    from mobiler2l_ns.utils.metrics import psnr

    a = np.zeros((4, 4, 3))
    assert psnr(a + 0.1, a) == pytest.approx(20.0)  # mse 0.01
    assert psnr(torch.full((2, 2), 25.5), torch.zeros(2, 2), data_range=255.0) == pytest.approx(20.0)
    assert psnr(a, a) == float("inf")
    with pytest.raises(ValueError, match="shapes differ"):
        psnr(a, a[..., :2])
