"""Capture stage: check-capture flags planted defects by frame name; photos -> COLMAP -> teacher.

The checks run on a small Blender-format scene rendered by the project and variants of it with
one defect each. The end-to-end test renders a textured 360 photo set, runs the real
``ns-process-data images`` (COLMAP, CPU SIFT, exhaustive matching) through ``process_capture`` and
trains ``mobiler2l-teacher-real`` on the result for a few hundred steps.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from contextlib import closing
from pathlib import Path
from typing import Callable, List, Tuple

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from mobiler2l_ns.capture import process as process_module
from mobiler2l_ns.capture.check import main as check_main
from mobiler2l_ns.capture.findings import CaptureReport
from mobiler2l_ns.capture.process import process_capture
from mobiler2l_ns.capture.quality import check_capture, warn_at_training_start
from mobiler2l_ns.capture.report import plot_report
from mobiler2l_ns.scenes.synthetic import (
    focal_from_fov,
    object_scene,
    render_blender_scene,
    render_forward_facing_scene,
    render_photo_capture,
    render_view,
)
from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.utils.io import write_png
from tests.conftest import run_offline
from tests.helpers import psnr

HAVE_COLMAP = shutil.which("colmap") is not None and shutil.which("ffmpeg") is not None
needs_colmap = pytest.mark.skipif(
    not HAVE_COLMAP, reason="colmap / ffmpeg not installed (bash scripts/install.sh as root)"
)

SIZE = 48
DARK_FRAME, BLUR_FRAME, FAR_FRAME = 5, 7, 9


# --------------------------------------------------------------------------- scenes with planted defects


@pytest.fixture(scope="module")
def clean_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """40 train views, 48x48, Blender format (cameras on a hemisphere of radius 4 around the origin)."""
    return render_blender_scene(tmp_path_factory.mktemp("clean") / "scene", SIZE, 40, 1, 1, seed=3)


def variant(clean: Path, dst: Path, edit: Callable[[Path, dict], None]) -> Path:
    """A copy of ``clean`` changed by ``edit(folder, transforms_train)`` (which may edit the dict in place)."""
    shutil.copytree(clean, dst)
    meta = json.loads((dst / "transforms_train.json").read_text())
    edit(dst, meta)
    (dst / "transforms_train.json").write_text(json.dumps(meta))
    return dst


def edit_image(folder: Path, index: int, change: Callable[[Image.Image], Image.Image]) -> None:
    path = folder / "train" / f"r_{index}.png"
    with Image.open(path) as img:
        changed = change(img.convert("RGBA"))
    changed.save(path)


def darken(folder: Path, meta: dict) -> None:
    def dim(img: Image.Image) -> Image.Image:
        pixels = np.asarray(img).astype(np.float64)
        pixels[..., :3] *= 0.3  # about -1.7 EV
        return Image.fromarray(pixels.round().astype(np.uint8), "RGBA")

    edit_image(folder, DARK_FRAME, dim)


def blur(folder: Path, meta: dict) -> None:
    edit_image(folder, BLUR_FRAME, lambda img: img.filter(ImageFilter.GaussianBlur(1.5)))


def drop_sector(folder: Path, meta: dict) -> None:
    """Remove every camera with azimuth in [0, 90) degrees (and its image)."""
    kept = []
    for frame in meta["frames"]:
        x, y = frame["transform_matrix"][0][3], frame["transform_matrix"][1][3]
        if math.degrees(math.atan2(y, x)) % 360.0 < 90.0:
            (folder / (frame["file_path"] + ".png")).unlink()
        else:
            kept.append(frame)
    meta["frames"] = kept


def move_away(folder: Path, meta: dict) -> None:
    """Put one camera at twice the radius (same direction) and re-render its image."""
    frame = meta["frames"][FAR_FRAME]
    c2w = np.array(frame["transform_matrix"], dtype=np.float64)
    c2w[:3, 3] *= 2.0
    frame["transform_matrix"] = c2w.tolist()
    focal = focal_from_fov(SIZE, meta["camera_angle_x"])
    img = render_view(object_scene(), c2w, SIZE, SIZE, focal, focal, SIZE / 2, SIZE / 2, np.random.default_rng(0))
    write_png(folder / "train" / f"r_{FAR_FRAME}.png", img)


def frames_of(report: CaptureReport, check: str) -> List[str]:
    return [name for f in report.findings if f.check == check for name in f.frame.split(" | ")]


def test_clean_capture_passes(clean_scene: Path, capsys: pytest.CaptureFixture):
    report = check_capture(clean_scene)
    assert not report.severe, report.findings
    assert report.exit_code == 0
    assert report.cameras.layout == "360" and len(report.frames) == 40
    assert report.stats["largest_azimuth_gap_deg"] < 45.0
    assert report.stats["principal_point_offset"] == 0.0 and report.stats["fx"] == report.stats["fy"]
    assert check_main([str(clean_scene)]) == 0
    assert "severe" not in capsys.readouterr().out.replace("0 severe", "")


def test_implausible_lens_is_flagged():
    """COLMAP's self-calibration failed on the 600x600 Ethiopian-head photos (no EXIF): OPENCV gave fx 741,
    fy 448 px and p1 0.31, SIMPLE_PINHOLE a principal point at y = 210 of 600. Each is a severe finding;
    a plausible lens (square pixels, centred, |p| ~ 0.001) gives none."""
    from nerfstudio.cameras.cameras import Cameras

    from mobiler2l_ns.capture.checks import check_intrinsics
    from mobiler2l_ns.capture.findings import CaptureCheckConfig

    def lens(fx, fy, cx, cy, p1):
        distortion = torch.tensor([[0.29, -0.008, 0.0, 0.0, p1, 0.0]]).repeat(3, 1)
        c2w = torch.eye(4)[:3].repeat(3, 1, 1)
        return Cameras(c2w, fx=fx, fy=fy, cx=cx, cy=cy, width=600, height=600, distortion_params=distortion)

    cfg = CaptureCheckConfig()
    findings, stats = check_intrinsics(lens(741.5, 448.4, 301.4, 300.3, 0.307), cfg)
    assert {f.check: f.severe for f in findings} == {"focal-aspect": True, "tangential-distortion": True}
    assert stats["fx"] == pytest.approx(741.5) and stats["tangential_distortion"] == pytest.approx(0.307)
    assert all(f.frame == "" and "poses are probably wrong" in f.detail for f in findings)
    findings, _ = check_intrinsics(lens(588.7, 588.7, 299.4, 210.5, 0.0), cfg)
    assert {f.check: f.severe for f in findings} == {"principal-point": True}
    findings, stats = check_intrinsics(lens(1131.0, 1133.0, 302.0, 297.0, 0.001), cfg)
    assert findings == [] and stats["principal_point_offset"] == pytest.approx(0.005)


@pytest.mark.parametrize(
    "defect, edit, check, frames, severe",
    [
        ("dark", darken, "brightness", [f"train/r_{DARK_FRAME}.png"], True),
        ("blur", blur, "sharpness", [f"train/r_{BLUR_FRAME}.png"], True),
        ("far", move_away, "radius", [f"train/r_{FAR_FRAME}.png"], False),
        ("gap", drop_sector, "azimuth-gap", None, True),
    ],
)
def test_planted_defect_is_flagged_by_frame(clean_scene: Path, tmp_path: Path, defect, edit, check, frames, severe):
    scene = variant(clean_scene, tmp_path / defect, edit)
    report = check_capture(scene)
    flagged = [f for f in report.findings if f.check == check]
    assert len(flagged) == 1, report.findings
    if frames is None:  # the gap names the two cameras bordering it, both outside the dropped sector
        kept = json.loads((scene / "transforms_train.json").read_text())["frames"]
        azimuth = {f["file_path"][2:] + ".png": math.degrees(math.atan2(f["transform_matrix"][1][3], f["transform_matrix"][0][3])) % 360 for f in kept}  # fmt: skip
        frames = frames_of(report, check)
        assert len(frames) == 2 and all(name in azimuth for name in frames)
        assert flagged[0].value >= 90.0
    assert frames_of(report, check) == frames
    assert flagged[0].severe == severe
    assert report.exit_code == (2 if severe else 0)
    others = [
        f
        for f in report.findings
        if f.check in ("brightness", "sharpness", "radius", "azimuth-gap") and f.check != check
    ]
    assert not others, others  # no other check mistakes this defect for its own


def red_pixels(path: Path) -> int:
    """Pixels of matplotlib's ``tab:red`` (214, 39, 40) in a PNG."""
    with Image.open(path) as img:
        rgb = np.asarray(img.convert("RGB")).astype(np.int64)
    return int((np.abs(rgb - np.array([214, 39, 40])).sum(axis=-1) < 30).sum())


def write_pair_database(database: Path, configs: List[int], unverified: int = 5) -> None:
    """A COLMAP database with only the two-view geometry table (its schema): one verified pair (30 inlier
    matches) per entry of ``configs`` and ``unverified`` pairs without inliers (never counted)."""
    database.parent.mkdir(parents=True, exist_ok=True)
    database.unlink(missing_ok=True)
    with closing(sqlite3.connect(database)) as db:
        db.execute(
            "CREATE TABLE two_view_geometries (pair_id INTEGER PRIMARY KEY NOT NULL, rows INTEGER NOT NULL, "
            "cols INTEGER NOT NULL, data BLOB, config INTEGER NOT NULL, F BLOB, E BLOB, H BLOB)"
        )
        matches = np.zeros((30, 2), np.uint32).tobytes()
        rows = [(30, matches, config) for config in configs] + [(0, b"", 7)] * unverified
        for pair, (count, data, config) in enumerate(rows, start=1):
            row = (pair, count, data, config)
            db.execute("INSERT INTO two_view_geometries VALUES (?, ?, 2, ?, ?, NULL, NULL, NULL)", row)
        db.commit()


def test_static_background_is_flagged(clean_scene: Path, tmp_path: Path):
    """A capture whose COLMAP database says most matched pairs lack parallax (panoramic 5, planar-or-panoramic 6,
    watermark 7; the Ethiopian head's turntable capture: 1833 of 2145) gets a capture-wide finding: severe from
    75 %, a warning from 50 %; general (2, 3) and planar (4) pairs and unverified pairs do not count."""
    scene = tmp_path / "scene"
    shutil.copytree(clean_scene, scene)
    database = scene / "colmap" / "database.db"
    cases = (
        ([7, 7, 7, 7, 6, 6, 5, 5, 2, 3], True),
        ([7, 7, 7, 6, 6, 6, 2, 2, 3, 3], False),
        ([7, 6, 4, 4, 4] + [2] * 5, None),
    )
    for configs, expected in cases:
        write_pair_database(database, configs)
        flat = sum(config in (5, 6, 7) for config in configs)
        found = [f for f in check_capture(scene).findings if f.check == "static-background"]
        assert [f.severe for f in found] == ([] if expected is None else [expected]), (configs, found)
        if found:
            assert found[0].frame == "" and found[0].value == pytest.approx(flat / 10)
            expected_detail = f"{flat} of 10 photo pairs ({10 * flat} %) without parallax ({configs.count(7)} by"
            assert expected_detail in found[0].detail
    database.write_bytes(b"not a database")
    assert not [f for f in check_capture(scene).findings if f.check == "static-background"]


def test_plot_and_json_are_written(clean_scene: Path, tmp_path: Path):
    scene = variant(clean_scene, tmp_path / "dark", darken)
    plot, report_json = tmp_path / "cameras.png", tmp_path / "report.json"
    assert check_main([str(scene), "--plot", str(plot), "--json", str(report_json)]) == 2
    with Image.open(plot) as img:
        img.verify()
    with Image.open(plot) as img:
        assert img.format == "PNG" and img.size == (1100, 550)  # figsize 11 x 5.5 in at 100 dpi
    clean_plot = tmp_path / "clean.png"
    plot_report(check_capture(clean_scene), clean_plot)
    # the flagged camera is drawn in red in both views: red only the legend's marker in the clean plot
    assert red_pixels(plot) >= red_pixels(clean_plot) + 60, (red_pixels(plot), red_pixels(clean_plot))
    report = json.loads(report_json.read_text())
    assert report["exit_code"] == 2 and report["layout"] == "360"
    assert any(f["check"] == "brightness" and f["frame"] == f"train/r_{DARK_FRAME}.png" for f in report["findings"])
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp files left


def test_unreadable_image_is_a_severe_finding(clean_scene: Path, tmp_path: Path):
    scene = variant(clean_scene, tmp_path / "broken", lambda folder, meta: None)
    (scene / "train" / "r_3.png").write_bytes(b"not a png")
    report = check_capture(scene)
    assert [(f.frame, f.severe) for f in report.findings if f.check == "unreadable"] == [("train/r_3.png", True)]
    assert report.exit_code == 2


def test_forward_facing_capture_skips_the_360_checks(tmp_path: Path):
    scene = render_forward_facing_scene(tmp_path / "ff", 32, 24, 24, seed=1)
    report = check_capture(scene)
    assert report.cameras.layout == "forward"
    assert not [f for f in report.findings if f.check in ("radius", "azimuth-gap", "elevation-range")]
    assert not report.severe, report.findings


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda root: root / "missing", "no such file or folder"),
        (lambda root: root, "no transforms.json"),
    ],
)
def test_bad_input_is_one_line(tmp_path: Path, make, message):
    data = make(tmp_path)
    with pytest.raises(InputError, match=message) as err:
        check_capture(data)
    assert "\n" not in str(err.value)
    proc = subprocess.run(
        [sys.executable, "-m", "mobiler2l_ns.capture.check", str(data)], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().splitlines() == [f"mobiler2l: {err.value.message}"]


def test_console_script_exit_status(clean_scene: Path, tmp_path: Path):
    scene = variant(clean_scene, tmp_path / "gap", drop_sector)
    script = Path(sys.executable).with_name("mobiler2l-check-capture")
    proc = subprocess.run([str(script), str(scene)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "azimuth-gap" in proc.stdout
    proc = subprocess.run([str(script), str(scene), "--bogus"], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 1 and "--bogus" in proc.stderr and "Traceback" not in proc.stderr  # usage error: 1, not 2


def test_training_start_summary_never_raises(clean_scene: Path, capsys: pytest.CaptureFixture):
    images = sorted((clean_scene / "train").glob("*.png"))
    warn_at_training_start(images, None, clean_scene)  # no cameras: the check fails inside
    out = capsys.readouterr().out
    assert out.startswith("check-capture skipped:") and len(out.strip().splitlines()) == 1


def test_teacher_datamanager_prints_the_summary(clean_scene: Path, tmp_path: Path, capsys: pytest.CaptureFixture):
    """Training (test_mode "val") prints the one-line summary, naming the planted defect; ns-eval does not."""
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig

    from mobiler2l_ns.teacher.datamanager import TeacherDataManagerConfig

    scene = variant(clean_scene, tmp_path / "dark", darken)
    config = TeacherDataManagerConfig(dataparser=BlenderDataParserConfig(data=scene))
    config.setup(device="cpu", test_mode="val")
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("check-capture:")]
    assert len(lines) == 1 and f"train/r_{DARK_FRAME}.png: brightness" in lines[0], lines
    config.setup(device="cpu", test_mode="test")
    assert "check-capture:" not in capsys.readouterr().out


# --------------------------------------------------------------------------- process_capture: bad input


def leftovers(parent: Path, name: str) -> List[Path]:
    prefixes = (f".{name}.partial-", f".{name}.photos-")
    return [p for p in parent.iterdir() if p.name == name or p.name.startswith(prefixes)]


def test_folder_without_images(tmp_path: Path):
    src = tmp_path / "photos"
    src.mkdir()
    (src / "notes.txt").write_text("no photos here")
    with pytest.raises(InputError, match=r"photos: no images found \(expected files ending in \.jpg, \.jpeg, \.png"):
        process_capture(src, tmp_path / "out")
    assert not leftovers(tmp_path, "out")


@needs_colmap
def test_unreadable_video(tmp_path: Path):
    video = tmp_path / "clip.mp4"
    video.write_bytes(os.urandom(4096))
    with pytest.raises(InputError, match=r"clip\.mp4: ffmpeg cannot read this file as a video") as err:
        process_capture(video, tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not leftovers(tmp_path, "out")


def test_missing_colmap_names_the_apt_packages(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    src = tmp_path / "photos"
    src.mkdir()
    Image.new("RGB", (16, 16)).save(src / "a.png")
    real_which = shutil.which
    monkeypatch.setattr(process_module.shutil, "which", lambda tool: None if tool == "colmap" else real_which(tool))
    with pytest.raises(InputError, match=r"colmap not installed: run `apt-get install colmap ffmpeg`"):
        process_capture(src, tmp_path / "out")
    assert not leftovers(tmp_path, "out")


def test_existing_output_is_refused(tmp_path: Path):
    src = tmp_path / "photos"
    src.mkdir()
    Image.new("RGB", (16, 16)).save(src / "a.png")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "keep.txt").write_text("mine")
    with pytest.raises(InputError, match="out: already exists"):
        process_capture(src, tmp_path / "out")
    assert (tmp_path / "out" / "keep.txt").read_text() == "mine"


def test_matching_follows_the_capture(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """auto: every pair of a small photo set, neighbours for a video or a large set; a vocab tree that
    would be downloaded is refused in one line (nothing is downloaded, nothing left)."""
    from mobiler2l_ns.capture.process import EXHAUSTIVE_MAX_IMAGES, choose_matching

    assert choose_matching("images", EXHAUSTIVE_MAX_IMAGES) == "exhaustive"
    assert choose_matching("images", EXHAUSTIVE_MAX_IMAGES + 1) == "sequential"
    assert choose_matching("video", 30) == "sequential"
    assert choose_matching("images", 500, "exhaustive") == "exhaustive"  # the user's choice stands
    src = tmp_path / "photos"
    src.mkdir()
    Image.new("RGB", (16, 16)).save(src / "a.png")
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "data-home"))  # where appdirs looks, on Linux
    with pytest.raises(
        InputError, match=r"^mobiler2l: --matching vocab_tree: needs COLMAP's vocabulary tree at .*vocab_tree\.fbow"
    ):
        process_capture(src, tmp_path / "out", matching="vocab_tree")
    assert not leftovers(tmp_path, "out")


@needs_colmap
def test_too_few_registered_images(tmp_path: Path):
    src = tmp_path / "noise"
    src.mkdir()
    rng = np.random.default_rng(0)
    for i in range(12):
        Image.fromarray(rng.integers(0, 256, (96, 96, 3), dtype=np.uint8)).save(src / f"n_{i:02d}.png")
    with pytest.raises(InputError, match=r"COLMAP registered 0 of 12 images \(at least 10 needed\): take more") as err:
        process_capture(src, tmp_path / "out", extra_args=["--num-downscales", "0"])
    assert "\n" not in str(err.value)
    assert not leftovers(tmp_path, "out")


@needs_colmap
def test_turntable_capture_is_named(tmp_path: Path):
    """A turntable capture (the object turns in front of a room that stays put, shifted by a hand-held camera's
    few pixels): COLMAP poses none of it, and the one-line error says why instead of 'take more photos'."""
    size, border = PHOTO_SIZE, 40
    photos = render_photo_capture(tmp_path / "walk", size, 24, seed=0)
    rng = np.random.default_rng(5)
    coarse, fine = (rng.integers(0, 256, (n, n, 3), dtype=np.uint8) for n in (24, 88))
    room = sum(
        weight * np.asarray(Image.fromarray(noise).resize((size + 16, size + 16), Image.BICUBIC), dtype=np.float32)
        for weight, noise in ((0.6, coarse), (0.4, fine))
    )
    frame = np.ones((size, size), bool)
    frame[border:-border, border:-border] = False
    src = tmp_path / "turntable"
    src.mkdir()
    for path in sorted(photos.glob("*.png")):
        image = np.asarray(Image.open(path).convert("RGB")).copy()
        dx, dy = rng.integers(0, 8, 2)
        image[frame] = room[dy : dy + size, dx : dx + size][frame]
        Image.fromarray(image.astype(np.uint8)).save(src / path.name)
    hint = r"registered \d+ of 24 images .*: \d+ of the \d+ photo pairs it matched have no parallax: the background"
    with pytest.raises(InputError, match=hint + r" stayed put while the view changed \(a turntable capture\?\)") as err:
        process_capture(src, tmp_path / "out", extra_args=["--num-downscales", "0"])
    assert "\n" not in str(err.value)
    assert not leftovers(tmp_path, "out")


def write_colmap_model(folder: Path, names: List[str], seed: int) -> None:
    """A COLMAP binary model: one OPENCV camera, ``names`` posed at random, 20 points."""
    from nerfstudio.data.utils.colmap_parsing_utils import Camera, Point3D, write_model
    from nerfstudio.data.utils.colmap_parsing_utils import Image as ColmapImage

    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True)
    cameras = {1: Camera(1, "OPENCV", 64, 48, np.array([50.0, 50.0, 32.0, 24.0, 0.0, 0.0, 0.0, 0.0]))}
    images, tvecs = {}, rng.normal(size=(len(names), 3))
    for i, name in enumerate(names, start=1):
        qvec = rng.normal(size=4)
        images[i] = ColmapImage(i, qvec / np.linalg.norm(qvec), tvecs[i - 1], 1, name, np.zeros((0, 2)), np.zeros(0, int))
    points = {
        j: Point3D(j, rng.normal(size=3), np.array([10, 20, 30]), 0.5, np.array([1, 2]), np.array([0, 0]))
        for j in range(1, 21)
    }
    write_model(cameras, images, points, str(folder), ext=".bin")


def test_largest_colmap_model_is_used(tmp_path: Path):
    """COLMAP's mapper may split a capture into models; ns-process-data converts only sparse/0 (on the
    600x600 Ethiopian-head photos: sparse/0 held 18 images, sparse/1 all 66). The largest model wins."""
    from nerfstudio.process_data.colmap_utils import colmap_to_json

    from mobiler2l_ns.capture.process import colmap_models, use_largest_model

    sparse = tmp_path / "colmap" / "sparse"
    write_colmap_model(sparse / "0", [f"frame_{i:05d}.jpg" for i in range(1, 4)], seed=0)
    write_colmap_model(sparse / "1", [f"frame_{i:05d}.jpg" for i in range(3, 11)], seed=1)
    (sparse / "2").mkdir()  # an empty model folder is skipped
    colmap_to_json(recon_dir=sparse / "0", output_dir=tmp_path)  # what ns-process-data wrote
    assert [(n, f.name) for n, f in colmap_models(tmp_path)] == [(8, "1"), (3, "0")]

    message = use_largest_model(tmp_path)
    assert message is not None and "using the largest, sparse/1 (8)" in message and "sparse/0 (3 images)" in message
    frames = json.loads((tmp_path / "transforms.json").read_text())["frames"]
    assert sorted(f["file_path"] for f in frames) == [f"images/frame_{i:05d}.jpg" for i in range(3, 11)]
    # the poses are model 1's: camera centres -R^T t, whatever the axis convention colmap_to_json applies
    from nerfstudio.data.utils.colmap_parsing_utils import read_images_binary

    model = read_images_binary(sparse / "1" / "images.bin")
    centres = {im.name: -im.qvec2rotmat().T @ im.tvec for im in model.values()}
    got = {Path(f["file_path"]).name: np.array(f["transform_matrix"])[:3, 3] for f in frames}
    assert np.allclose(sorted(np.linalg.norm(c) for c in centres.values()), sorted(np.linalg.norm(g) for g in got.values()))
    assert use_largest_model(tmp_path) is None  # already the largest: nothing to do


@needs_colmap
def test_interrupt_stops_the_child_and_removes_the_partial_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    src = tmp_path / "photos"
    src.mkdir()
    Image.new("RGB", (16, 16)).save(src / "a.png")
    pid_file = tmp_path / "child.pid"
    child = f"import os, time; open({str(pid_file)!r}, 'w').write(str(os.getpid())); time.sleep(120)"
    monkeypatch.setattr(process_module, "ns_process_data_command", lambda *args: [sys.executable, "-c", child])

    def interrupt() -> None:
        deadline = time.monotonic() + 60
        while not (pid_file.is_file() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.05)
        os.kill(os.getpid(), signal.SIGINT)

    # Ctrl-C raises KeyboardInterrupt even where this process inherited SIGINT ignored (a background job)
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    threading.Thread(target=interrupt, daemon=True).start()
    try:
        with pytest.raises(KeyboardInterrupt):
            process_capture(src, tmp_path / "out")
    finally:
        signal.signal(signal.SIGINT, previous)
    assert not leftovers(tmp_path, "out")
    with pytest.raises(ProcessLookupError):
        os.kill(int(pid_file.read_text()), 0)


def test_large_photos_are_shrunk_before_colmap(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """Photos larger than --max-photo-size reach ns-process-data shrunk (aspect, pixels and the EXIF focal
    length kept, same names and order); smaller ones and a limit of 0 leave them as they are; the shrunk
    copies are removed afterwards."""
    rng = np.random.default_rng(0)
    src = tmp_path / "photos"
    (src / "more").mkdir(parents=True)
    smooth = [Image.fromarray(rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)).resize((400, 300), Image.BICUBIC)]
    exif = Image.Exif()
    exif[0x920A] = 4.2  # FocalLength (mm)
    exif[0x010F] = "PhoneMaker"  # Make
    smooth[0].save(src / "IMG_1.JPG", quality=98, exif=exif)
    smooth[0].transpose(Image.Transpose.ROTATE_90).save(src / "IMG_2.jpeg", quality=98, exif=exif)
    Image.fromarray(rng.integers(0, 256, (90, 120, 3), dtype=np.uint8)).save(src / "more" / "small.png")
    seen = tmp_path / "seen.json"
    child = (
        "import json, sys; from pathlib import Path; from PIL import Image; d = Path(sys.argv[1]); "
        "files = sorted(p for p in d.rglob('*') if p.is_file()); "
        f"open({str(seen)!r}, 'w').write(json.dumps([[str(p.relative_to(d)), Image.open(p).size, "
        "float(Image.open(p).getexif().get_ifd(0x8769).get(0x920A, Image.open(p).getexif().get(0x920A, 0)))] "
        "for p in files] + [str(d)])); sys.exit(3)"
    )
    monkeypatch.setattr(
        process_module, "ns_process_data_command", lambda kind, data, *rest: [sys.executable, "-c", child, str(data)]
    )

    with pytest.raises(InputError, match="ns-process-data failed"):
        process_capture(src, tmp_path / "out", max_photo_size=200)
    *files, folder = json.loads(seen.read_text())
    assert files == [
        ["IMG_1.JPG", [200, 150], 4.2],
        ["IMG_2.jpeg", [150, 200], 4.2],
        ["more/small.png", [120, 90], 0.0],
    ]
    assert Path(folder).parent == tmp_path and not Path(folder).exists() and not leftovers(tmp_path, "out")
    with Image.open(src / "IMG_1.JPG") as original:
        reference = np.asarray(original.convert("RGB").resize((200, 150), Image.Resampling.BOX), dtype=np.float32) / 255
    from mobiler2l_ns.capture.photos import shrink_photo

    with Image.open(src / "IMG_1.JPG") as original:
        assert shrink_photo(src / "IMG_1.JPG", tmp_path / "one" / "a.jpg", 200) == (original.size, (200, 150))
    shrunk = np.asarray(Image.open(tmp_path / "one" / "a.jpg"), dtype=np.float32) / 255
    assert psnr(torch.from_numpy(shrunk), torch.from_numpy(reference)) > 35.0

    for limit in (400, 0):  # nothing larger than the limit, or no limit: the photos themselves
        with pytest.raises(InputError, match="ns-process-data failed"):
            process_capture(src, tmp_path / "out", max_photo_size=limit)
        assert json.loads(seen.read_text())[-1] == str(src)
    with pytest.raises(InputError, match=r"max_photo_size 50: expected 0 \(keep the photos' size\) or >= 100 px"):
        process_capture(src, tmp_path / "out", max_photo_size=50)


# --------------------------------------------------------------------------- student presets for real captures


def test_points_near_far_are_the_depth_percentiles_of_visible_points():
    from mobiler2l_ns.student.sampler import points_near_far

    c2w = torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0]])[None]  # looks down -Z
    intrinsics = torch.tensor([[50.0, 50.0, 50.0, 50.0, 100.0, 100.0]])
    depths = torch.linspace(2.0, 5.0, 101)
    visible = torch.stack([torch.zeros(101), torch.zeros(101), -depths], dim=1)
    behind = torch.tensor([[0.0, 0.0, 3.0]])
    outside = torch.tensor([[10.0, 0.0, -2.0]])  # projects far right of the image
    near, far = points_near_far(c2w, intrinsics, torch.cat([visible, behind, outside]))
    assert near.item() == pytest.approx(2.03, abs=1e-3) and far.item() == pytest.approx(4.97, abs=1e-3)
    near, _ = points_near_far(c2w, intrinsics, visible[:5])  # too few points: undefined
    assert torch.isnan(near).all()


def test_real_presets_are_registered():
    from nerfstudio.plugins.registry import discover_methods

    methods, _ = discover_methods()
    for name in ("mobiler2l-teacher-real", "mobiler2l-real", "mobiler2l-small-real"):
        assert name in methods
        config = methods[name]
        assert type(config.pipeline.datamanager.dataparser).__name__ == "NerfstudioDataParserConfig"
    for name in ("mobiler2l-real", "mobiler2l-small-real"):
        model = methods[name].pipeline.model
        assert model.near is None and model.far is None and model.near_far_from_data


def test_small_real_student_takes_near_far_from_the_data(tmp_path: Path):
    """Without sparse points (a forward-facing capture with no ply): the scene box's range, saved in
    the checkpoint and restored by a model built without the data."""
    import copy

    from mobiler2l_ns.methods.students import mobiler2l_small_real_config
    from mobiler2l_ns.student.datamanager import data_near_far

    scene = render_forward_facing_scene(tmp_path / "ff", 32, 24, 8, seed=0)
    config = copy.deepcopy(mobiler2l_small_real_config)
    config.pipeline.datamanager.data = scene
    pipeline = config.pipeline.setup(device="cpu", test_mode="val")
    near, far = pipeline.model.fixed_near_far()
    expected_near, expected_far, source = data_near_far(pipeline.datamanager.train_dataparser_outputs)
    assert source == "scene box" and 0.0 < near < far
    min_near = config.pipeline.model.min_near  # the model keeps near at least min_near (cameras inside the box)
    assert (near, far) == pytest.approx((max(expected_near, min_near), max(expected_far, near + min_near)))
    camera, batch = pipeline.datamanager.next_train(0)
    assert pipeline.model.get_outputs(camera)["rgb"].shape == batch["image"][..., :3].shape
    state = pipeline.model.state_dict()
    bare = config.pipeline.model.setup(scene_box=pipeline.model.scene_box, num_train_data=8, metadata={})
    assert bare.fixed_near_far() is None  # until the checkpoint is loaded
    bare.load_state_dict(state)
    assert bare.fixed_near_far() == pytest.approx((near, far))


# --------------------------------------------------------------------------- photos -> COLMAP -> teacher

PHOTO_SIZE, PHOTO_VIEWS = 160, 32
REAL_TEACHER_STEPS = 300
REAL_TEACHER_FLAGS = [
    "--vis", "tensorboard",
    "--experiment-name", "capture",
    "--timestamp", "run",
    "--steps-per-save", str(REAL_TEACHER_STEPS),
    "--steps-per-eval-batch", "100000",
    "--steps-per-eval-image", "100000",
    "--steps-per-eval-all-images", "100000",
    "--max-num-iterations", str(REAL_TEACHER_STEPS),
    "--pipeline.datamanager.train-num-rays-per-batch", "512",
    "--pipeline.model.grid-resolution", "32",
    "--pipeline.model.grid-warmup-steps", "64",
    "--pipeline.model.steps-per-diagonal", "32",
    "--pipeline.model.cone-angle", "0.01",
    "--pipeline.model.log2-hashmap-size", "15",
    "--pipeline.model.max-resolution", "256",
]  # fmt: skip


def held_out_psnr(config: Path, scale: float = 0.5) -> Tuple[float, float]:
    """Mean PSNR of the trained teacher on the held-out (eval split) views rendered at ``scale`` x the
    resolution (CPU time), and of a blank baseline: the training images' mean colour."""
    from nerfstudio.utils.eval_utils import eval_setup

    _, pipeline, _, _ = eval_setup(config, test_mode="test")
    train, held_out = pipeline.datamanager.train_dataset, pipeline.datamanager.eval_dataset
    mean = np.mean([train[i]["image"][..., :3].numpy().reshape(-1, 3).mean(axis=0) for i in range(len(train))], axis=0)
    scores, baselines = [], []
    for i in range(len(held_out)):
        camera = held_out.cameras[i : i + 1]
        camera.rescale_output_resolution(scale)
        with torch.no_grad():
            rgb = pipeline.model.get_outputs_for_camera(camera)["rgb"].numpy()
        gt = (
            torch.nn.functional.interpolate(
                held_out[i]["image"][..., :3].permute(2, 0, 1)[None].float(), size=rgb.shape[:2], mode="area"
            )[0]
            .permute(1, 2, 0)
            .numpy()
        )
        scores.append(psnr(rgb, gt))
        baselines.append(psnr(np.broadcast_to(mean, gt.shape), gt))
    return float(np.mean(scores)), float(np.mean(baselines))


def assert_near_far_from_sparse_points(data: Path) -> None:
    """The real student presets' near / far come from the COLMAP points and bracket the cameras'
    distance to the scene centre (the photos were taken around the origin at radius 3.2)."""
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    from mobiler2l_ns.student.datamanager import data_near_far

    outputs = NerfstudioDataParserConfig(data=data, load_3D_points=True).setup().get_dataparser_outputs("train")
    near, far, source = data_near_far(outputs)
    assert "sparse points" in source, source
    distance = float(outputs.cameras.camera_to_worlds[:, :, 3].norm(dim=-1).median())
    assert 0.0 < near < distance < far, (near, distance, far)


@pytest.mark.slow
@needs_colmap
def test_photos_to_colmap_to_teacher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    photos = render_photo_capture(tmp_path / "photos", PHOTO_SIZE, PHOTO_VIEWS, seed=0)
    start = time.monotonic()
    data = process_capture(photos, tmp_path / "capture", extra_args=["--num-downscales", "0"])
    colmap_seconds = time.monotonic() - start
    assert data == tmp_path / "capture"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []
    registered = len(json.loads((data / "transforms.json").read_text())["frames"])
    assert registered >= PHOTO_VIEWS - 3, f"COLMAP registered {registered} of {PHOTO_VIEWS}"
    report = check_capture(data)
    assert not report.severe, report.findings
    assert_near_far_from_sparse_points(data)
    print(f"COLMAP: {registered} of {PHOTO_VIEWS} registered in {colmap_seconds:.1f} s")

    root = tmp_path / "run"
    root.mkdir()
    start = time.monotonic()
    args = ["ns-train", "mobiler2l-teacher-real", *REAL_TEACHER_FLAGS, "--output-dir", str(root / "outputs")]
    proc = run_offline([*args, "nerfstudio-data", "--data", str(data)], root / "torch-home", cwd=root)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    assert "check-capture:" in proc.stdout + proc.stderr  # the summary printed at the start of training
    train_seconds = time.monotonic() - start

    monkeypatch.chdir(root)
    trained, baseline = held_out_psnr(root / "outputs" / "capture" / "mobiler2l-teacher-real" / "run" / "config.yml")
    print(
        f"teacher ({train_seconds:.0f} s): {trained:.2f} dB PSNR on the held-out views; constant colour {baseline:.2f} dB"
    )
    assert trained > baseline + 2.0 and trained > 17.0, (trained, baseline)
