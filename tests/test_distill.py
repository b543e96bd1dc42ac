"""Pseudo views: pose sampling, the sharded cache (kill / resume / corruption / refusal), the
streaming datamanager (mixing, fine-tune, ranks) and distillation beating real-only training.

CPU and small: the session's tiny teacher (``teacher_run`` in conftest.py: 250 steps, few hash
levels, saved with relative paths) on the 32x32 ``tiny_blender`` scene, 32x32 pseudo views, caches
of a few shards.
"""

from __future__ import annotations

import copy
import math
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, List

import numpy as np
import pytest
import torch
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.engine.callbacks import TrainingCallbackAttributes
from nerfstudio.engine.optimizers import Optimizers

import mobiler2l_ns  # noqa: F401  (torch>=2.6 checkpoint compatibility)
from mobiler2l_ns.distill import cli
from mobiler2l_ns.distill.cache import MANIFEST, PseudoCache, read_manifest, spec_from_manifest
from mobiler2l_ns.distill.datamanager import PseudoDataManager, PseudoDataManagerConfig
from mobiler2l_ns.distill.poses import (
    PoseConfig,
    TrainingRig,
    detect_scene_type,
    enlarged_box,
    make_cameras,
    sample_poses,
    shell_stats,
)
from mobiler2l_ns.distill.shards import shard_name
from mobiler2l_ns.distill.teacher import Teacher, TeacherRun
from mobiler2l_ns.scenes.synthetic import render_forward_facing_scene
from mobiler2l_ns.methods.students import mobiler2l_small_config
from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.utils.io import TEMP_MARKER
from tests.conftest import TinyTeacher
from tests.helpers import OFFLINE_RUNNER, blender_views, offline_env, psnr

COUNT, SHARD = 32, 4  # the CLI caches: 8 shards of 4 views


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def teacher(teacher_run: TinyTeacher, tmp_path_factory: pytest.TempPathFactory) -> Teacher:
    """The session's teacher loaded from an unrelated working directory."""
    previous = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("elsewhere"))
    try:
        return TeacherRun.from_config(teacher_run.config).load("cpu")
    finally:
        os.chdir(previous)


def generate_args(config: Path, cache: Path, *extra: str, count: int = COUNT) -> List[str]:
    return ["generate", "--teacher-config", str(config), "--count", str(count), "--cache", str(cache),
            "--shard-size", str(SHARD), "--no-progress", *extra]  # fmt: skip


@pytest.fixture(scope="module")
def reference_cache(teacher_run: TinyTeacher, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted ``mobiler2l-pseudo generate`` (in-process) of COUNT views, seed 0."""
    cache = tmp_path_factory.mktemp("reference") / "cache"
    assert cli.main(generate_args(teacher_run.config, cache)) == 0
    return cache


def cli_process(args: List[str], cwd: Path) -> subprocess.Popen:
    """``mobiler2l-pseudo ARGS`` in a subprocess, network disabled, one thread."""
    env = offline_env(cwd / "torch-home")
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.Popen(
        [sys.executable, str(OFFLINE_RUNNER), "mobiler2l-pseudo", *args],
        cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        preexec_fn=default_sigint,  # Ctrl-C works even if the test run inherited SIGINT ignored (a background job)
    )  # fmt: skip


def default_sigint() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def shard_files(cache: Path) -> List[str]:
    return sorted(p.name for p in cache.glob("shard-*.m2lp"))


def cache_bytes(cache: Path) -> Dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(cache.iterdir())}


def blender_rig(scene: Path) -> TrainingRig:
    outputs = BlenderDataParserConfig(data=scene).setup().get_dataparser_outputs(split="train")
    return TrainingRig.from_cameras(outputs.cameras)


# --------------------------------------------------------------------------- pose sampling


def test_360_poses_on_the_training_shell_looking_at_the_centre(tiny_blender: Path) -> None:
    rig = blender_rig(tiny_blender)
    assert detect_scene_type(rig) == "360"
    stats = shell_stats(rig)
    np.testing.assert_allclose(stats.centre, 0.0, atol=1e-3)  # the scene's cameras all look at the origin
    config = PoseConfig(count=400, seed=3)
    c2w, intrinsics = sample_poses(rig, config)
    assert c2w.shape == (400, 3, 4) and intrinsics.shape == (400, 6)
    centres = c2w[:, :, 3].double().numpy()
    offsets = centres - stats.centre
    radii = np.linalg.norm(offsets, axis=-1)
    r_min, r_max = stats.radius_range
    assert (radii >= r_min - 1e-4).all() and (radii <= r_max + 1e-4).all()
    forward = -c2w[:, :, 2].double().numpy()
    to_centre = -offsets / radii[:, None]
    assert (np.einsum("ij,ij->i", forward, to_centre) > 1 - 1e-6).all()  # optical axis through the centre
    rotation = c2w[:, :, :3].double().numpy()
    np.testing.assert_allclose(rotation.transpose(0, 2, 1) @ rotation, np.eye(3)[None].repeat(400, 0), atol=1e-5)
    np.testing.assert_allclose(rotation[:, :, 0] @ stats.up, 0.0, atol=1e-5)  # no roll: x axis level
    # elevations follow the training distribution (inside its range, similar median); azimuths all round
    elevations = np.arcsin(np.clip((offsets @ stats.up) / radii, -1, 1))
    assert elevations.min() >= stats.elevations.min() - 1e-5 and elevations.max() <= stats.elevations.max() + 1e-5
    assert abs(np.median(elevations) - np.median(stats.elevations)) < 0.15
    e1 = offsets - (offsets @ stats.up)[:, None] * stats.up
    azimuths = np.arctan2(e1[:, 1], e1[:, 0])
    assert np.histogram(azimuths, bins=8, range=(-math.pi, math.pi))[0].min() > 20
    # intrinsics are training intrinsics; seeded and reproducible, view by view
    assert {tuple(row) for row in intrinsics.tolist()} <= {tuple(row) for row in np.float32(rig.intrinsics).tolist()}
    again_c2w, _ = sample_poses(rig, config)
    assert torch.equal(c2w, again_c2w)
    part, _ = sample_poses(rig, PoseConfig(count=1000, seed=3), start=100, stop=150)
    assert torch.equal(part, c2w[100:150])  # view i depends on (seed, i) only
    other, _ = sample_poses(rig, PoseConfig(count=400, seed=4))
    assert not torch.allclose(other, c2w)


def test_forward_facing_poses_inside_the_enlarged_boxes(tmp_path: Path) -> None:
    scene = render_forward_facing_scene(tmp_path / "ff", 24, 16, 16, seed=2)
    outputs = NerfstudioDataParserConfig(data=scene).setup().get_dataparser_outputs(split="train")
    rig = TrainingRig.from_cameras(outputs.cameras)
    assert detect_scene_type(rig) == "forward"
    c2w, intrinsics = sample_poses(rig, PoseConfig(count=400, seed=0))
    positions = c2w[:, :, 3].double().numpy()
    directions = -c2w[:, :, 2].double().numpy()
    position_box, direction_box = enlarged_box(rig.centres, 1.1), enlarged_box(rig.view_directions, 1.1)
    tol = 1e-5
    assert ((positions >= position_box[0] - tol) & (positions <= position_box[1] + tol)).all()
    assert ((directions >= direction_box[0] - tol) & (directions <= direction_box[1] + tol)).all()
    # the enlargement is used: some samples leave the training boxes themselves
    plain = enlarged_box(rig.centres, 1.0)
    assert ((positions < plain[0] - tol) | (positions > plain[1] + tol)).any(axis=1).mean() > 0.05
    np.testing.assert_allclose(np.linalg.norm(directions, axis=-1), 1.0, atol=1e-5)
    assert (intrinsics[:, 4:] == torch.tensor([24.0, 16.0])).all()
    # forcing the 360 layout on the same cameras is possible (and different)
    shell, _ = sample_poses(rig, PoseConfig(count=10, seed=0, scene_type="360"))
    assert not torch.allclose(shell, c2w[:10])


# --------------------------------------------------------------------------- teacher and cache


def test_teacher_loads_frozen_from_any_working_directory(teacher: Teacher, teacher_run: TinyTeacher) -> None:
    # the run was saved with relative output_dir / data and loaded from an unrelated folder
    assert not teacher.pipeline.training
    assert all(not p.requires_grad for p in teacher.pipeline.parameters())
    run = TeacherRun.from_config(teacher_run.config)
    assert run.teacher_id == teacher.run.teacher_id and len(run.teacher_id) == 16
    camera = make_cameras(*sample_poses(TrainingRig.from_cameras(teacher.train_cameras), PoseConfig(count=1)))
    rgb = teacher.render(camera)
    assert rgb.shape == (32, 32, 3)
    torch.testing.assert_close(rgb, teacher.model.get_outputs_for_camera(camera)["rgb"], rtol=0, atol=0)


def test_pseudo_patches_are_aligned_windows_of_the_whole_views(teacher: Teacher) -> None:
    """Patch poses are the whole-view poses, and a patch's render is that window of the view's render."""
    rig = TrainingRig.from_cameras(teacher.train_cameras)
    views, whole = sample_poses(rig, PoseConfig(count=6, seed=5))
    patches, windows = sample_poses(rig, PoseConfig(count=6, seed=5, patch_size=(12, 20), patch_alignment=4))
    assert torch.equal(views, patches)
    offsets_x, offsets_y = whole[:, 2] - windows[:, 2], whole[:, 3] - windows[:, 3]
    assert windows[:, 4].tolist() == [20] * 6 and windows[:, 5].tolist() == [12] * 6  # (width, height)
    assert (offsets_x % 4 == 0).all() and (offsets_y % 4 == 0).all() and len(set(offsets_x.tolist())) > 1
    assert (offsets_x >= 0).all() and (offsets_x + 20 <= whole[:, 4]).all() and (offsets_y + 12 <= whole[:, 5]).all()
    for i in range(2):
        x0, y0 = int(offsets_x[i]), int(offsets_y[i])
        patch = teacher.render(make_cameras(patches[i : i + 1], windows[i : i + 1]))
        view = teacher.render(make_cameras(views[i : i + 1], whole[i : i + 1]))
        dy = 1 if y0 + 13 <= view.shape[0] else -1  # the window one row off: clearly worse
        window, off = view[y0 : y0 + 12, x0 : x0 + 20], view[y0 + dy : y0 + dy + 12, x0 : x0 + 20]
        # equal up to the marcher's sample phase (its step grid starts at the batch's nearest entry)
        aligned, shifted = psnr(patch, window), psnr(patch, off)
        assert aligned > 30.0 and shifted < aligned - 10.0, (aligned, shifted)
    with pytest.raises(ValueError, match="patch size"):
        PoseConfig(count=1, patch_size=(0, 4)).validate()


def test_cache_views_are_the_teachers_renders(reference_cache: Path, teacher: Teacher) -> None:
    manifest = read_manifest(reference_cache)
    assert manifest["count"] == COUNT and manifest["num_shards"] == COUNT // SHARD
    assert manifest["teacher_id"] == teacher.run.teacher_id and manifest["encoding"] == "png"
    cache = PseudoCache(reference_cache, spec_from_manifest(manifest))
    views = cache.load(3)
    assert views.start == 3 * SHARD and len(views.images) == SHARD and views.images[0].dtype == torch.uint8
    c2w, intrinsics = sample_poses(TrainingRig.from_cameras(teacher.train_cameras), PoseConfig(count=COUNT))
    torch.testing.assert_close(views.c2w, c2w[12:16], rtol=0, atol=0)
    torch.testing.assert_close(views.intrinsics, intrinsics[12:16], rtol=0, atol=0)
    rendered = teacher.render(make_cameras(c2w[13:14], intrinsics[13:14]))
    stored = views.images[1].float() / 255.0
    assert (stored - rendered).abs().max() <= 0.5 / 255 + 1e-6  # uint8 rounding only
    # compact: far below the original float32 .npy (12,288 bytes for a 32x32 view)
    total = sum(p.stat().st_size for p in reference_cache.glob("shard-*.m2lp"))
    assert total / COUNT < 32 * 32 * 3 * 4 / 8


def wait_for_shards(cache: Path, proc: subprocess.Popen, count: int) -> None:
    deadline = time.monotonic() + 120
    while len(shard_files(cache)) < count and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)


def test_interrupted_generation_resumes_to_the_uninterrupted_cache(
    teacher_run: TinyTeacher, reference_cache: Path, tmp_path: Path
) -> None:
    """Ctrl-C, then kill -9, then a full run: every finished shard is kept, the result is byte-equal."""
    cache, shards = tmp_path / "cache", COUNT // SHARD
    proc = cli_process(generate_args(teacher_run.config, cache), cwd=tmp_path)
    wait_for_shards(cache, proc, 1)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err[-2000:]
    after_ctrl_c = shard_files(cache)
    assert f"interrupted with {len(after_ctrl_c)}/{shards} shards done" in err and 1 <= len(after_ctrl_c) < shards

    proc = cli_process(generate_args(teacher_run.config, cache), cwd=tmp_path)
    wait_for_shards(cache, proc, len(after_ctrl_c) + 2)
    proc.send_signal(signal.SIGKILL)
    proc.communicate()
    assert proc.returncode == -signal.SIGKILL, "the generator finished before it could be killed"
    done = shard_files(cache)
    assert set(after_ctrl_c) < set(done) and len(done) < shards, done
    kept = {name: (cache / name).read_bytes() for name in done}
    leftovers = [
        cache / f".{shard_name(shards - 1)}{TEMP_MARKER}999999",
        cache / f"{shard_name(shards - 2)}.tmp-999998",
    ]
    for leftover in leftovers:  # a killed writer's temporary, and one named as before utils.io's
        leftover.write_bytes(b"half a shard")

    resumed = cli_process(generate_args(teacher_run.config, cache), cwd=tmp_path)
    out, err = resumed.communicate(timeout=300)
    assert resumed.returncode == 0, out[-2000:] + err[-2000:]
    assert f"keeps {len(done)} of its {shards} shards" in " ".join(out.split())
    assert cache_bytes(cache) == cache_bytes(reference_cache)  # manifest and every shard, byte for byte
    assert not any(leftover.exists() for leftover in leftovers)
    assert all((cache / name).read_bytes() == data for name, data in kept.items())
    assert cli.main(["check", str(cache)]) == 0


def test_corrupt_shards_are_named_and_regenerated_with_the_flag(
    teacher_run: TinyTeacher, reference_cache: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(reference_cache, cache)
    truncated, flipped = cache / shard_name(2), cache / shard_name(5)
    truncated.write_bytes(truncated.read_bytes()[:-100])
    data = bytearray(flipped.read_bytes())
    data[len(data) // 2] ^= 0xFF
    flipped.write_bytes(bytes(data))
    (cache / shard_name(6)).unlink()

    assert cli.main(["check", str(cache)]) == 1
    report = capsys.readouterr().out
    assert f"{shard_name(2)}: truncated" in report and f"{shard_name(5)}: corrupt (checksum mismatch)" in report
    assert f"{shard_name(6)}: missing" in report and "5/8 shards valid" in report

    with pytest.raises(InputError) as refused:
        cli.main(generate_args(teacher_run.config, cache))
    message = str(refused.value)
    assert "\n" not in message and message.startswith("mobiler2l: pseudo cache")
    assert shard_name(2) in message and shard_name(5) in message and "--regenerate-corrupt" in message

    with pytest.raises(InputError) as refused:  # the student's datamanager names the chain's flag too
        pseudo_datamanager(teacher_run.scene, teacher_run.config, cache).next_train(0)
    assert "--pipeline.datamanager.pseudo-regenerate-corrupt True (mobiler2l run: --regenerate-corrupt)" in str(
        refused.value
    )

    assert cli.main(generate_args(teacher_run.config, cache, "--regenerate-corrupt")) == 0
    assert cache_bytes(cache) == cache_bytes(reference_cache)


def file_size_limit(limit: int):
    """A child's preexec: files may not grow past ``limit`` bytes (a full disk's stand-in), reported as
    EFBIG, not a signal."""

    def preexec() -> None:
        import resource

        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.RLIM_INFINITY))

    return preexec


def test_cache_write_failures_are_one_line_and_leave_nothing(
    teacher_run: TinyTeacher, reference_cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = tmp_path / "cache"
    limit = min((reference_cache / shard_name(k)).stat().st_size for k in range(COUNT // SHARD)) - 1
    assert (reference_cache / MANIFEST).stat().st_size < limit  # the manifest fits: a shard write fails
    env = offline_env(tmp_path / "torch-home")
    env["OMP_NUM_THREADS"] = "1"
    proc = subprocess.run(
        [sys.executable, str(OFFLINE_RUNNER), "mobiler2l-pseudo", *generate_args(teacher_run.config, cache)],
        cwd=tmp_path, env=env, capture_output=True, text=True, preexec_fn=file_size_limit(limit), timeout=600,
    )  # fmt: skip
    assert proc.returncode == 1, proc.stderr[-2000:]
    last = proc.stderr.strip().splitlines()[-1]
    assert "Traceback" not in proc.stderr
    assert last.startswith(f"mobiler2l: pseudo cache {cache}: cannot write shard-") and "File too large" in last
    assert not list(cache.glob(f"*{TEMP_MARKER}*"))  # no half-written shard

    # a read-only cache folder (a share) with views still to render: named before the teacher renders
    shutil.copytree(reference_cache, tmp_path / "shared")
    (tmp_path / "shared" / shard_name(3)).unlink()
    real_access = os.access
    monkeypatch.setattr(
        os, "access", lambda path, mode: False if Path(path) == tmp_path / "shared" else real_access(path, mode)
    )
    with pytest.raises(
        InputError, match=r"shared: not writable, and 1 shard\(s\) are to be rendered; choose a writable"
    ):
        cli.main(generate_args(teacher_run.config, tmp_path / "shared"))
    (tmp_path / "shared" / shard_name(3)).write_bytes((reference_cache / shard_name(3)).read_bytes())
    assert cli.main(generate_args(teacher_run.config, tmp_path / "shared")) == 0  # complete: read-only is fine


def test_cache_of_another_teacher_or_pose_config_is_refused(
    teacher_run: TinyTeacher, reference_cache: Path, tmp_path: Path
) -> None:
    before = cache_bytes(reference_cache)
    # another pose config, through the console script: one line on stderr, exit status 1
    proc = cli_process(generate_args(teacher_run.config, reference_cache, "--seed", "1"), cwd=tmp_path)
    out, err = proc.communicate(timeout=300)
    assert proc.returncode == 1
    last = err.strip().splitlines()[-1]
    assert last.startswith(f"mobiler2l: pseudo cache {reference_cache} was made with another pose config")
    assert "seed 0 (cache) vs 1 (this run)" in last and "Traceback" not in err
    with pytest.raises(InputError, match="count 32 \\(cache\\) vs 40 \\(this run\\)"):
        cli.main(generate_args(teacher_run.config, reference_cache, count=40))
    # another teacher: the same run with one weight changed
    other = tmp_path / "other-teacher"
    shutil.copytree(teacher_run.config.parent, other)
    checkpoint = next((other / "nerfstudio_models").glob("*.ckpt"))
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    key = next(k for k, v in state["pipeline"].items() if v.is_floating_point() and v.numel() > 1)
    state["pipeline"][key] = state["pipeline"][key] + 0.01
    torch.save(state, checkpoint)
    with pytest.raises(InputError, match="was rendered by another teacher") as refused:
        cli.main(generate_args(other / "config.yml", reference_cache))
    assert "\n" not in str(refused.value)
    assert cache_bytes(reference_cache) == before


# --------------------------------------------------------------------------- the datamanager


def pseudo_datamanager(scene: Path, teacher_config: Path, cache: Path, **overrides) -> PseudoDataManager:
    kwargs = dict(
        dataparser=BlenderDataParserConfig(alpha_color="white"),
        data=scene,
        teacher_config=teacher_config,
        pseudo_cache=cache,
        pseudo_count=COUNT,
        pseudo_shard_size=SHARD,
        pseudo_progress=False,
    )
    kwargs.update(overrides)
    world = kwargs.pop("world_size", 1), kwargs.pop("local_rank", 0)
    datamanager = PseudoDataManagerConfig(**kwargs).setup(device="cpu", world_size=world[0], local_rank=world[1])
    assert isinstance(datamanager, PseudoDataManager)
    return datamanager


def test_real_share_and_finetune_phase(teacher_run: TinyTeacher, reference_cache: Path) -> None:
    before = cache_bytes(reference_cache)
    dm = pseudo_datamanager(
        teacher_run.scene, teacher_run.config, reference_cache, real_share=0.25, train_images_per_batch=4
    )
    real = pseudo = 0
    for step in range(60):
        camera, data = dm.next_train(step)
        assert camera.shape == (4,) and data["image"].shape == (4, 32, 32, 3)
        is_pseudo = data["pseudo_idx"] >= 0
        assert ((data["image_idx"] >= 0) == ~is_pseudo).all()
        real, pseudo = real + int((~is_pseudo).sum()), pseudo + int(is_pseudo.sum())
        if step < 8:  # every 4th image is real: one per batch
            assert int((~is_pseudo).sum()) == 1
    assert (real, pseudo) == (60, 180) and dm.source_counts == {"real": 60, "pseudo": 180}
    assert dm.producer is not None and dm.producer.teacher is None  # complete cache: the teacher was never loaded
    # pseudo images are the cached views of their cameras
    camera, data = dm.next_pseudo()
    view = int(data["pseudo_idx"])
    expected = PseudoCache(reference_cache, dm.pool.cache.spec).load(view // SHARD)
    assert torch.equal(data["image"], expected.images[view % SHARD])
    torch.testing.assert_close(camera.camera_to_worlds[0], expected.c2w[view % SHARD], rtol=0, atol=0)

    # fine-tune phase, from the trainer's step range: the last 10 of 100 steps are real only
    trainer = SimpleNamespace(_start_step=0, config=SimpleNamespace(max_num_iterations=100))
    dm.config.finetune_steps = 10
    dm.get_training_callbacks(
        TrainingCallbackAttributes(optimizers=None, grad_scaler=None, pipeline=None, trainer=trainer)
    )  # type: ignore[arg-type]
    assert dm.finetune_start == 90
    dm.config.finetune_steps = 100  # the whole run real-only: the student would never see the teacher
    with pytest.raises(
        InputError, match=r"finetune-steps 100: not fewer than the run's 100 steps .* never see a teacher view"
    ):
        dm.get_training_callbacks(
            TrainingCallbackAttributes(optimizers=None, grad_scaler=None, pipeline=None, trainer=trainer)
        )  # type: ignore[arg-type]
    dm.config.finetune_steps = 10
    dm.get_training_callbacks(
        TrainingCallbackAttributes(optimizers=None, grad_scaler=None, pipeline=None, trainer=trainer)
    )  # type: ignore[arg-type]
    for step in range(90, 100):
        _, data = dm.next_train(step)
        assert (data["pseudo_idx"] == -1).all() and (data["image_idx"] >= 0).all()
    assert dm.producer is None  # released at the start of the phase
    dm.close()

    # a share that does not divide the batch: exactly 30 % over 100 single-image batches
    dm = pseudo_datamanager(teacher_run.scene, teacher_run.config, reference_cache, real_share=0.3)
    sources = [int(dm.next_train(step)[1]["pseudo_idx"]) == -1 for step in range(100)]
    assert sum(sources) == 30 and sum(sources[:10]) == 3
    dm.close()
    assert cache_bytes(reference_cache) == before


def test_rank_renders_only_its_shards_and_trains_on_all(
    teacher_run: TinyTeacher, reference_cache: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"
    shutil.copytree(reference_cache, cache)
    for odd in range(1, COUNT // SHARD, 2):
        (cache / shard_name(odd)).unlink()
    even_stats = {k: (cache / shard_name(k)).stat().st_mtime_ns for k in range(0, COUNT // SHARD, 2)}
    dm = pseudo_datamanager(teacher_run.scene, teacher_run.config, cache, world_size=2, local_rank=1)
    seen = set()
    deadline = time.monotonic() + 120
    while len(dm.pool or ()) < COUNT and time.monotonic() < deadline:
        seen.add(int(dm.next_train(0)[1]["pseudo_idx"]))
    assert dm.producer is not None
    dm.producer.thread.join(timeout=60)
    assert len(dm.pool) == COUNT  # its own (odd) shards rendered, the even ones taken from disk
    assert cache_bytes(cache) == cache_bytes(reference_cache)
    assert all((cache / shard_name(k)).stat().st_mtime_ns == t for k, t in even_stats.items())
    dm.close()


def test_torchrun_ranks_write_their_own_shards(teacher_run: TinyTeacher, reference_cache: Path, tmp_path: Path) -> None:
    """Two torch.distributed ranks (torchrun, gloo on CPU) make the single-process cache."""
    cache = tmp_path / "cache"
    env = dict(os.environ, OMP_NUM_THREADS="1", PYTHONUNBUFFERED="1", TORCH_HOME=str(tmp_path / "torch-home"))
    proc = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
         "-m", "mobiler2l_ns.distill.cli", *generate_args(teacher_run.config, cache)],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    log = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode == 0, log[-3000:]
    assert "rank 0/2 keeps 0 of its 4 shards, renders 4" in log and "rank 1/2 keeps 0 of its 4 shards, renders 4" in log
    assert cache_bytes(cache) == cache_bytes(reference_cache)


def test_student_config_saved_before_pseudo_views_still_loads(tiny_blender: Path) -> None:
    """eval_setup swaps this datamanager into old student runs, whose config lacks the new fields."""
    from mobiler2l_ns.student.datamanager import MobileR2LDataManagerConfig

    old = MobileR2LDataManagerConfig(dataparser=BlenderDataParserConfig(), data=tiny_blender, crop_size=(16, 16))
    dm = PseudoDataManager(old, device="cpu")
    assert dm.config.teacher_config is None and dm.config.crop_size == (16, 16)
    camera, data = dm.next_train(0)
    assert data["image"].shape == (16, 16, 3) and "pseudo_idx" not in data
    with pytest.raises(InputError, match="real-share must be in"):
        PseudoDataManagerConfig(dataparser=BlenderDataParserConfig(), data=tiny_blender, real_share=1.5).setup()


def train_student(dm: PseudoDataManager, steps: int, scene_box) -> torch.nn.Module:
    """The mobiler2l-small student trained on ``dm``'s batches (nerfstudio's Optimizers)."""
    torch.manual_seed(0)
    config = copy.deepcopy(mobiler2l_small_config)
    config.pipeline.model.report_cost = False
    model = config.pipeline.model.setup(scene_box=scene_box, num_train_data=len(dm.train_dataset))
    optimizers = Optimizers(config.optimizers, model.get_param_groups())
    for step in range(steps):
        model.train()
        camera, batch = dm.next_train(step)
        loss = model.get_loss_dict(model(camera), batch)["rgb_loss"]
        optimizers.zero_grad_all()
        loss.backward()
        optimizers.optimizer_step_all()
        optimizers.scheduler_step_all(step)
    return model.eval()


def held_out_psnr(model: torch.nn.Module, scene: Path) -> float:
    """Mean PSNR of ``model``'s renders of the scene's test views against their ground truth (on white)."""
    cameras, images = blender_views(scene, "test")
    with torch.no_grad():
        scores = [psnr(model.get_outputs_for_camera(cameras[i : i + 1])["rgb"], images[i]) for i in range(len(images))]
    return float(np.mean(scores))


def test_student_on_streamed_pseudo_views_beats_real_only(teacher_run: TinyTeacher, tmp_path: Path) -> None:
    """Same steps and batch size; the pseudo views are rendered while the student trains."""
    count, steps = 192, 500
    dm = pseudo_datamanager(
        teacher_run.scene, teacher_run.config, tmp_path / "cache",
        pseudo_count=count, pseudo_shard_size=16, train_images_per_batch=4,
    )  # fmt: skip
    started = time.perf_counter()
    dm.next_train(0)
    assert len(dm.pool) < count, "the first batch waited for the whole set"
    first_batch_s = time.perf_counter() - started
    pseudo_student = train_student(dm, steps, dm.train_dataset.scene_box)
    rendered = len(dm.pool)
    dm.close()
    real_dm = PseudoDataManagerConfig(
        dataparser=BlenderDataParserConfig(alpha_color="white"), data=teacher_run.scene, train_images_per_batch=4
    ).setup(device="cpu")
    real_student = train_student(real_dm, steps, real_dm.train_dataset.scene_box)

    # held-out ground truth: the scene's test views, which neither student nor teacher saw
    pseudo_psnr, real_psnr = (held_out_psnr(student, teacher_run.scene) for student in (pseudo_student, real_student))
    print(f"PSNR vs ground truth on the test views: pseudo {pseudo_psnr:.2f} dB, real {real_psnr:.2f} dB "
          f"({rendered} pseudo views streamed, first batch after {first_batch_s:.1f} s)")  # fmt: skip
    assert pseudo_psnr > real_psnr + 0.5


def test_ns_train_with_teacher_config_keeps_the_teacher_out_of_the_checkpoint(
    teacher_run: TinyTeacher, tmp_path: Path
) -> None:
    """``ns-train mobiler2l-small --pipeline.datamanager.teacher-config ...`` from an unrelated folder;
    the student's checkpoint holds only the student; eval_setup on it does not need the teacher."""
    from nerfstudio.utils.eval_utils import eval_setup

    env = offline_env(tmp_path / "torch-home")
    env["OMP_NUM_THREADS"] = "1"
    cache = tmp_path / "pseudo"
    train = subprocess.run(
        [
            sys.executable, str(OFFLINE_RUNNER), "ns-train", "mobiler2l-small", "--vis", "tensorboard",
            "--output-dir", str(tmp_path / "out"), "--timestamp", "run", "--max-num-iterations", "16",
            "--steps-per-eval-image", "1000", "--steps-per-eval-batch", "0", "--steps-per-save", "1000",
            "--pipeline.datamanager.teacher-config", str(teacher_run.config),
            "--pipeline.datamanager.pseudo-cache", str(cache), "--pipeline.datamanager.pseudo-count", "8",
            "--pipeline.datamanager.pseudo-shard-size", "4", "--pipeline.datamanager.real-share", "0.5",
            "--pipeline.datamanager.finetune-steps", "4",
            "blender-data", "--data", str(teacher_run.scene),
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    log = train.stdout + train.stderr
    assert train.returncode == 0, log[-4000:]
    assert "loading teacher" in log and "Rendering pseudo views" in log
    assert "Step 12: fine-tuning on real images only; releasing the teacher" in " ".join(log.split())
    run = tmp_path / "out" / "unnamed" / "mobiler2l-small" / "run"
    checkpoint = torch.load(next((run / "nerfstudio_models").glob("*.ckpt")), map_location="cpu", weights_only=False)
    keys = list(checkpoint["pipeline"])
    assert keys and all(k.startswith(("_model.", "datamanager.")) for k in keys), keys
    assert not any("field" in k or "occupancy_grid" in k or "teacher" in k for k in keys)
    student = copy.deepcopy(mobiler2l_small_config.pipeline.model).setup(
        scene_box=SceneBox(aabb=torch.tensor([[-1.5] * 3, [1.5] * 3])), num_train_data=1
    )
    assert {k for k in keys if k.startswith("_model.")} == {f"_model.{k}" for k in student.state_dict()}

    hidden = teacher_run.config.with_name("config.yml.hidden")  # no teacher for eval_setup
    teacher_run.config.rename(hidden)
    try:
        _, pipeline, _, _ = eval_setup(run / "config.yml", test_mode="test")
        assert isinstance(pipeline.datamanager, PseudoDataManager) and pipeline.datamanager.producer is None
        metrics = pipeline.get_average_eval_image_metrics()
    finally:
        hidden.rename(teacher_run.config)
    assert MANIFEST in {p.name for p in cache.iterdir()}
    # ns-eval's figure is the checkpoint's student scored on the test views' ground truth
    student.load_state_dict(
        {k.removeprefix("_model."): v for k, v in checkpoint["pipeline"].items() if k.startswith("_model.")}
    )
    assert metrics["psnr"] == pytest.approx(held_out_psnr(student.eval(), teacher_run.scene), abs=0.05)
