"""Unusable datasets end in one line naming the problem, not a traceback."""

from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from mobiler2l_ns.utils.data_checks import BLENDER_SPLITS, VIDEO_SUFFIXES, check_dataset
from mobiler2l_ns.utils.errors import InputError
from tests.conftest import run_offline


def copy_scene(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_missing_path(tmp_path: Path):
    with pytest.raises(InputError, match=r"--data .*nowhere: no such file or folder"):
        check_dataset(tmp_path / "nowhere", "blender")


def test_no_images(tiny_blender: Path, tmp_path: Path):
    scene = copy_scene(tiny_blender, tmp_path / "scene")
    shutil.rmtree(scene / "train")
    with pytest.raises(InputError, match="no images found"):
        check_dataset(scene, "blender")


def test_unreadable_transforms(tiny_blender: Path, tmp_path: Path):
    scene = copy_scene(tiny_blender, tmp_path / "scene")
    (scene / "transforms_train.json").write_text('{"frames": [')
    with pytest.raises(InputError, match=r"transforms_train.json: not valid JSON \(line 1"):
        check_dataset(scene, "blender")


def test_nerfstudio_layout_needs_transforms_json(tmp_path: Path):
    (tmp_path / "images").mkdir()
    with pytest.raises(InputError, match="no transforms.json"):
        check_dataset(tmp_path, "nerfstudio")


def test_valid_scene_passes(tiny_blender: Path):
    frames = sum(len(json.loads((tiny_blender / f"transforms_{s}.json").read_text())["frames"]) for s in BLENDER_SPLITS)
    assert check_dataset(tiny_blender, "blender") == frames  # every frame of every split checked
    assert check_dataset(tiny_blender, "blender", frames=False) == 0


def first_train_frame(scene: Path) -> Path:
    meta = json.loads((scene / "transforms_train.json").read_text())
    return scene / (meta["frames"][3]["file_path"] + ".png")


def break_missing(scene: Path) -> None:
    first_train_frame(scene).unlink()


def break_empty(scene: Path) -> None:
    first_train_frame(scene).write_bytes(b"")


def break_text(scene: Path) -> None:
    first_train_frame(scene).write_text("not an image")


def break_truncated(scene: Path) -> None:
    path = first_train_frame(scene)
    path.write_bytes(path.read_bytes()[:-40])


def break_size(scene: Path) -> None:
    from PIL import Image

    path = first_train_frame(scene)
    Image.open(path).resize((40, 32)).save(path)


def break_fov(scene: Path) -> None:
    meta = json.loads((scene / "transforms_train.json").read_text())
    del meta["camera_angle_x"]
    (scene / "transforms_train.json").write_text(json.dumps(meta))


def break_pose(scene: Path) -> None:
    meta = json.loads((scene / "transforms_train.json").read_text())
    meta["frames"][3]["transform_matrix"] = [[1, 0, 0], [0, 1, 0]]
    (scene / "transforms_train.json").write_text(json.dumps(meta))


@pytest.mark.parametrize(
    "damage, message",
    [
        (break_missing, r"frame 3 \(\./train/r_3\): image file .*r_3\.png does not exist"),
        (break_empty, r"frame 3 \(\./train/r_3\): .*r_3\.png is not a readable image \(empty file\)"),
        (break_text, r"frame 3 \(\./train/r_3\): .*r_3\.png is not a readable image \(UnidentifiedImageError"),
        (break_truncated, r"frame 3 \(\./train/r_3\): .*r_3\.png is not a readable image"),
        (break_size, r"frame 3 \(\./train/r_3\): image is 40x32 but frame 0's is 32x32"),
        (break_fov, r"transforms_train\.json: no 'camera_angle_x'"),
        (break_pose, r"frame 3 \(\./train/r_3\): 'transform_matrix' must be a 4x4"),
    ],
    ids=["missing", "empty", "text", "truncated", "size", "fov", "pose"],
)
def test_every_frame_is_checked(tiny_blender: Path, tmp_path: Path, damage, message: str):
    """One bad frame among many is named before any training (not a loader traceback later)."""
    scene = copy_scene(tiny_blender, tmp_path / "scene")
    damage(scene)
    with pytest.raises(InputError, match=message):
        check_dataset(scene, "blender")


def test_nerfstudio_frames_need_intrinsics_and_stated_sizes(tiny_blender: Path, tmp_path: Path):
    from PIL import Image

    scene = copy_scene(tiny_blender, tmp_path / "scene")
    blender = json.loads((scene / "transforms_train.json").read_text())
    frames = [
        {"file_path": f["file_path"] + ".png", "transform_matrix": f["transform_matrix"]} for f in blender["frames"]
    ]
    meta = {"fl_x": 30.0, "fl_y": 30.0, "cx": 16.0, "cy": 16.0, "w": 32, "h": 32, "frames": frames}
    (scene / "transforms.json").write_text(json.dumps(meta))
    assert check_dataset(scene, "nerfstudio") == len(frames)
    del meta["fl_y"]
    (scene / "transforms.json").write_text(json.dumps(meta))
    with pytest.raises(InputError, match=r"frame 0 \(\./train/r_0\.png\): no 'fl_y'"):
        check_dataset(scene, "nerfstudio")
    meta["fl_y"] = 30.0
    frames[5].update(w=16, h=16)  # per-frame size stated: a 16x16 image there is fine, a 32x32 one is not
    (scene / "transforms.json").write_text(json.dumps(meta))
    path = scene / frames[5]["file_path"]
    Image.open(path).resize((16, 16)).save(path)
    assert check_dataset(scene, "nerfstudio") == len(frames)
    path = scene / frames[6]["file_path"]
    Image.open(path).resize((16, 16)).save(path)
    with pytest.raises(InputError, match=r"frame 6 .*image is 16x16 but frame 0's is 32x32"):
        check_dataset(scene, "nerfstudio")


@pytest.mark.parametrize("name", ["a.JPG", "b.Jpg", "c.jpeg", "d.tif", "e.TIFF", "f.png", "g.cr2"])
def test_photo_suffixes_any_case(tmp_path: Path, name: str):
    from mobiler2l_ns.capture.process import list_photos as process_list
    from mobiler2l_ns.chain.data import data_kind
    from mobiler2l_ns.utils.data_checks import list_photos

    (tmp_path / name).write_bytes(b"x")
    (tmp_path / "notes.txt").write_text("x")
    assert list_photos(tmp_path) == [tmp_path / name] == process_list(tmp_path)
    assert data_kind(tmp_path) == "images"


@pytest.mark.parametrize("suffix", VIDEO_SUFFIXES)
def test_video_suffixes_any_case(tmp_path: Path, suffix: str):
    from mobiler2l_ns.chain.data import data_kind

    for name in (f"clip{suffix}", f"CLIP{suffix.upper()}"):
        (tmp_path / name).write_bytes(b"x")
        assert data_kind(tmp_path / name) == "video"


def test_heic_only_folder_is_named(tmp_path: Path):
    from mobiler2l_ns.chain.data import data_kind

    for i in range(3):
        (tmp_path / f"IMG_{i}.HEIC").write_bytes(b"x")
    with pytest.raises(InputError, match=r"3 HEIC photos \(IMG_0\.HEIC, \.\.\.\) .* convert them to JPEG"):
        data_kind(tmp_path)


def test_ns_train_prints_one_line(tmp_path: Path):
    proc = run_offline(
        ["ns-train", "mobiler2l-teacher", "--vis", "tensorboard", "blender-data", "--data", str(tmp_path / "missing")],
        tmp_path / "torch-home",
        cwd=tmp_path,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("mobiler2l: --data") and "no such file or folder" in last


def test_student_datamanager_checks_data_too(tmp_path: Path):
    from mobiler2l_ns.methods.students import mobiler2l_small_config

    config = copy.deepcopy(mobiler2l_small_config.pipeline.datamanager)
    config.data = tmp_path / "missing"
    with pytest.raises(InputError, match="no such file or folder"):
        config.setup(device="cpu")
