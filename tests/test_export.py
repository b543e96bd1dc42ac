"""Tests of ``ns-export mobiler2l-onnx`` and the onnxruntime reference runtime (CPU, ~2 minutes).

Two tiny students are trained with nerfstudio's Trainer (a 360 Blender scene with scene-box
near/far, and a forward-facing nerfstudio-data scene in NDC), exported, and the onnxruntime
chain ``sampler -> embedder -> model`` is compared with the PyTorch student loaded the way
``ns-eval`` loads it. Metadata, pose-helper and render-CLI units without training are in
``test_export_metadata.py``; the ns-export hook on stand-in modules in ``test_export_hook.py``.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List

import numpy as np
import onnx
import pytest
import torch
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from PIL import Image

import mobiler2l_ns  # noqa: F401  (torch>=2.6 checkpoint compatibility)
from mobiler2l_ns.export import OnnxLightField, export_mobiler2l_onnx
from mobiler2l_ns.export.graphs import ExportCamera
from mobiler2l_ns.export.metadata import GRAPH_FILES, METADATA_NAME
from mobiler2l_ns.export.runtime import main as render_main
from mobiler2l_ns.export.verify import render_torch
from mobiler2l_ns.geometry import to_original
from mobiler2l_ns.scenes.synthetic import render_forward_facing_scene
from mobiler2l_ns.methods.students import mobiler2l_small_config, small_pe_config
from mobiler2l_ns.student.network import MobileR2LNetwork, fold_batchnorm
from mobiler2l_ns.utils.errors import InputError

from tests.helpers import psnr

from .conftest import offline_env

EXPORT_FILES = sorted([*GRAPH_FILES.values(), METADATA_NAME])
LEARNED = "volume"  # the learned embedder of the CPU presets
TRAIN_STEPS = 120


pytestmark = pytest.mark.usefixtures("single_thread")


@dataclass
class StudentRun:
    config: Path
    data: Path
    pipeline: object  # as ns-eval loads it (eval_setup)


def train_student(root: Path, data: Path, dataparser, use_ndc: bool, embedder: str = "pe") -> StudentRun:
    """A tiny mobiler2l-small run (depth 1, width 16, x4 SR) trained for TRAIN_STEPS steps on the CPU."""
    from nerfstudio.utils import eval_utils

    config = copy.deepcopy(small_pe_config if embedder == "pe" else mobiler2l_small_config)
    config.output_dir = root / "outputs"
    config.experiment_name = "tiny"
    config.timestamp = "run"
    config.vis = "tensorboard"
    config.machine.device_type = "cpu"
    config.max_num_iterations = TRAIN_STEPS
    config.steps_per_eval_image = 10**6
    config.steps_per_eval_all_images = 0
    config.steps_per_save = 10**6
    config.logging.local_writer.enable = False
    config.pipeline.datamanager.data = data
    config.pipeline.datamanager.dataparser = dataparser
    config.pipeline.datamanager.dataparser.data = data
    model = config.pipeline.model
    model.depth, model.width, model.sr_factor, model.sr_widths = 1, 16, 4, (16, 8)
    model.use_ndc, model.report_cost = use_ndc, False
    if embedder != "pe":  # the CPU preset's learned student, smaller grids; NDC scenes sample NDC, not a box
        model.embedder, model.grid_levels, model.grid_min_resolution, model.grid_max_resolution = embedder, 2, 16, 32
        model.num_points, model.ray_box = 12, not use_ndc
    config.save_config()
    torch.manual_seed(0)
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    trainer.train()
    config_path = config.get_base_dir() / "config.yml"
    _, pipeline, _, _ = eval_utils.eval_setup(config_path, test_mode="inference")
    return StudentRun(config_path, data, pipeline)


@pytest.fixture(scope="module")
def run_360(tiny_blender: Path, tmp_path_factory: pytest.TempPathFactory) -> StudentRun:
    """360 scene, near / far per camera from the scene box (the mobiler2l-small default)."""
    return train_student(tmp_path_factory.mktemp("run360"), tiny_blender, BlenderDataParserConfig(), use_ndc=False)


@pytest.fixture(scope="module")
def ff_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return render_forward_facing_scene(tmp_path_factory.mktemp("ffscene") / "scene", 32, 24, 8, seed=0)


def ff_dataparser() -> NerfstudioDataParserConfig:
    """Forward-facing data: the dataparser centres and scales the poses (non-trivial transform)."""
    return NerfstudioDataParserConfig(orientation_method="none", center_method="poses")


@pytest.fixture(scope="module")
def run_ff(ff_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> StudentRun:
    """Forward-facing scene in NDC."""
    return train_student(tmp_path_factory.mktemp("runff"), ff_scene, ff_dataparser(), use_ndc=True)


@pytest.fixture(scope="module")
def run_360_learned(tiny_blender: Path, tmp_path_factory: pytest.TempPathFactory) -> StudentRun:
    """The 360 student with the learned embedder of the CPU presets (its grids in embedder.onnx)."""
    root = tmp_path_factory.mktemp("run360learned")
    return train_student(root, tiny_blender, BlenderDataParserConfig(), use_ndc=False, embedder=LEARNED)


@pytest.fixture(scope="module")
def run_ff_learned(ff_scene: Path, tmp_path_factory: pytest.TempPathFactory) -> StudentRun:
    """The forward-facing (NDC) student with the learned embedder."""
    root = tmp_path_factory.mktemp("runfflearned")
    return train_student(root, ff_scene, ff_dataparser(), use_ndc=True, embedder=LEARNED)


def camera_of(meta: Dict) -> ExportCamera:
    i = meta["intrinsics"]
    return ExportCamera(meta["height"], meta["width"], i["fx"], i["fy"], i["cx"], i["cy"])


def sample_poses(run: StudentRun, field: OnnxLightField) -> List[np.ndarray]:
    """Training poses, plus poses of the orbit (views the student was not trained on)."""
    train = run.pipeline.datamanager.train_dataparser_outputs.cameras.camera_to_worlds.double().numpy()
    return [train[0], train[len(train) // 2], train[-1], *field.orbit(5)[1::2]]


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# --------------------------------------------------------------------------- exactness


@pytest.mark.parametrize(
    ("scene", "size", "embedder"),
    [("360", None, "pe"), ("ff", (22, 29), "pe"), ("360", None, LEARNED), ("ff", (22, 29), LEARNED)],
)
def test_onnx_chain_matches_pytorch_student(scene, size, embedder, request, tmp_path: Path) -> None:
    name = f"run_{scene}" + ("" if embedder == "pe" else "_learned")
    run = request.getfixturevalue(name)
    height, width = size if size else (None, None)
    result = export_mobiler2l_onnx(run.config, tmp_path / "export", height=height, width=width, verbose=False)
    assert sorted(p.name for p in result.files) == EXPORT_FILES
    assert sorted(p.name for p in (tmp_path / "export").iterdir()) == EXPORT_FILES
    assert (tmp_path / "export").stat().st_mode & 0o777 == 0o777 & ~current_umask()  # not mkdtemp's 0700
    assert [p.name for p in tmp_path.iterdir()] == ["export"]  # no staging directory left behind
    meta = json.loads((tmp_path / "export" / METADATA_NAME).read_text())
    model = run.pipeline.model
    assert meta["sampling"]["mode"] == ("ndc" if scene == "ff" else "scene_box" if embedder == "pe" else "ray_box")
    assert (meta["height"], meta["width"]) == (size or ((32, 32) if scene == "360" else (24, 32)))
    assert (meta["lowres_height"], meta["lowres_width"]) == (-(-meta["height"] // 4), -(-meta["width"] // 4))
    assert meta["sr_factor"] == 4 and meta["num_points"] == model.config.num_points and meta["opset"] == 17
    assert meta["encoding"]["kind"] == embedder and meta["encoding"]["channels"] == model.embedder.out_channels
    if embedder == "pe":
        assert len(meta["encoding"]["frequencies"]) == 6
        np.testing.assert_allclose(meta["encoding"]["frequencies"], 2.0 ** np.arange(6), rtol=1e-6)
    else:  # the grids live in embedder.onnx and are looked up with GridSample
        proto = onnx.load(str(tmp_path / "export" / "embedder.onnx"))
        assert "GridSample" in {node.op_type for node in proto.graph.node}
        assert sum(np.prod(t.dims) for t in proto.graph.initializer) >= model.embedder.parameter_count()
        assert meta["network"]["embedder_parameters"] == model.embedder.parameter_count()
    assert meta["checks"]["onnxruntime_vs_pytorch_max_abs_diff"] <= 1e-4

    for name, file in GRAPH_FILES.items():
        proto = onnx.load(str(tmp_path / "export" / file))
        onnx.checker.check_model(proto, full_check=True)
        onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
        assert proto.opset_import[0].version == 17
        ops = {node.op_type for node in proto.graph.node}
        if name == "model":
            assert "BatchNormalization" not in ops and "Erf" in ops  # BN folded, exact GELU
        assert [i.name for i in proto.graph.input] == [i["name"] for i in meta["graphs"][name]["inputs"]]

    field = OnnxLightField(tmp_path / "export", threads=1)
    camera = camera_of(meta)
    captured = []
    hook = model.embedder.register_forward_hook(lambda module, args, out: captured.append((args[0], out)))
    try:
        for pose in sample_poses(run, field):
            stages = field.chain.stages(pose)
            expected = render_torch(model, camera, pose)
            points, encoding = captured[-1]
            np.testing.assert_allclose(stages["points"], points[0].numpy(), rtol=0, atol=1e-5)
            np.testing.assert_allclose(stages["encoding"], encoding.numpy(), rtol=0, atol=1e-4)
            image = field.render(pose)
            assert image.shape == (meta["height"], meta["width"], 3) and image.dtype == np.float32
            assert float(np.abs(image - expected).max()) <= 1e-4
            assert psnr(image, expected) >= 60.0
    finally:
        hook.remove()
    assert float(image.std()) > 0.02  # a trained student, not a constant image


def test_original_coordinates_and_orbit(run_ff, tmp_path: Path) -> None:
    """Poses of the capture's transforms.json render through the stored dataparser transform."""
    export_mobiler2l_onnx(run_ff.config, tmp_path / "ff", verbose=False)
    field = OnnxLightField(tmp_path / "ff", threads=1)
    meta = field.metadata
    stored = json.loads((run_ff.config.parent / "dataparser_transforms.json").read_text())
    assert meta["dataparser_transform"]["transform"] == stored["transform"]
    assert meta["dataparser_transform"]["scale"] == stored["scale"] != 1.0
    outputs = run_ff.pipeline.datamanager.train_dataparser_outputs
    frames = {Path(f["file_path"]).name: f for f in json.loads((run_ff.data / "transforms.json").read_text())["frames"]}
    for filename, c2w in zip(outputs.image_filenames[:3], outputs.cameras.camera_to_worlds):
        original = np.asarray(frames[Path(filename).name]["transform_matrix"])
        normalised = field.normalise(original)
        np.testing.assert_allclose(normalised, c2w.double().numpy(), rtol=0, atol=1e-5)
        np.testing.assert_allclose(
            to_original(normalised, stored["transform"], stored["scale"]), original[:3], atol=1e-9
        )
        np.testing.assert_array_equal(field.render(original, original_coords=True), field.render(normalised))
    # forward-facing orbit: a circle around the reference camera in its image plane, rotation unchanged
    poses = field.orbit(4)
    assert meta["orbit"]["kind"] == "circle" and len(poses) == 4
    np.testing.assert_allclose(np.mean(poses, axis=0), field.reference_pose, atol=1e-12)
    for pose in poses:
        np.testing.assert_allclose(pose[:, :3], field.reference_pose[:, :3])
        assert np.linalg.norm(pose[:, 3] - field.reference_pose[:, 3]) == pytest.approx(meta["orbit"]["radius"])
    # the CLI: one image (pose given in original coordinates) and an orbit GIF
    pose_file = tmp_path / "pose.json"
    pose_file.write_text(json.dumps(frames[Path(outputs.image_filenames[0]).name]))
    assert (
        render_main(
            [str(tmp_path / "ff"), "--pose-file", str(pose_file), "--original-coords", "--out", str(tmp_path / "a.png")]
        )
        == 0
    )
    png = np.asarray(Image.open(tmp_path / "a.png"))
    expected = np.clip(field.render(outputs.cameras.camera_to_worlds[0].numpy()), 0, 1) * 255
    assert png.shape == (24, 32, 3) and np.abs(png - expected).max() <= 1.0
    assert render_main([str(tmp_path / "ff"), "--orbit", "3", "--out", str(tmp_path / "o.gif")]) == 0
    with Image.open(tmp_path / "o.gif") as gif:
        assert gif.n_frames == 3 and gif.size == (32, 24)


# --------------------------------------------------------------------------- variants


def test_fp16_variant_psnr(run_360, tmp_path: Path) -> None:
    fp32 = export_mobiler2l_onnx(run_360.config, tmp_path / "fp32", verbose=False)
    fp16 = export_mobiler2l_onnx(run_360.config, tmp_path / "fp16", fp16=True, verbose=False)
    assert fp32.metadata["precision"] == "fp32" and "fp16" not in fp32.metadata
    meta = fp16.metadata
    assert meta["precision"] == "fp16" and meta["fp16"]["psnr_vs_fp32_db"] == fp16.fp16_psnr_db >= 35.0
    assert meta["fp16"]["psnr_fp16_activations_db"] >= 35.0  # fp16 arithmetic (emulated), as on mobile GPUs
    proto = onnx.load(str(tmp_path / "fp16" / "model.onnx"))
    weights = [t for t in proto.graph.initializer if len(t.dims) == 4]
    assert weights and all(t.data_type == onnx.TensorProto.FLOAT16 for t in weights)
    assert [i.type.tensor_type.elem_type for i in proto.graph.input] == [onnx.TensorProto.FLOAT]  # fp32 I/O
    a, b = OnnxLightField(tmp_path / "fp32", threads=1), OnnxLightField(tmp_path / "fp16", threads=1)
    poses = sample_poses(run_360, a)
    value = psnr(np.stack([a.render(p) for p in poses]), np.stack([b.render(p) for p in poses]))
    print(f"fp16 vs fp32: {value:.1f} dB here, {meta['fp16']['psnr_vs_fp32_db']:.1f} dB in metadata")
    assert value >= 35.0


def test_snap_target_structure(run_360, tmp_path: Path) -> None:
    result = export_mobiler2l_onnx(run_360.config, tmp_path / "snap", target="snap", verbose=False)
    assert result.metadata["target"] == "snap" and result.metadata["opset"] == 11
    gelus = sum(isinstance(m, torch.nn.GELU) for m in run_360.pipeline.model.network.modules())
    assert gelus == 1 + 1 + 2 * 2  # head, one body block, two blocks per SR stage
    for name, file in GRAPH_FILES.items():
        proto = onnx.load(str(tmp_path / "snap" / file))
        assert [(o.domain, o.version) for o in proto.opset_import] == [("", 11)]
        ops = [node.op_type for node in proto.graph.node]
        if name == "model":
            assert ops.count("GeluSnap") == gelus
            assert not {"Erf", "Gelu", "Relu", "BatchNormalization"} & set(ops)
        else:
            onnx.checker.check_model(proto, full_check=True)
    with pytest.raises(InputError, match="Lens Studio"):
        OnnxLightField(tmp_path / "snap")
    with pytest.raises(InputError, match="--fp16 applies to the standard target"):
        export_mobiler2l_onnx(run_360.config, tmp_path / "x", target="snap", fp16=True)


def test_export_camera_resize_keeps_field_of_view() -> None:
    camera = ExportCamera(24, 32, 30.0, 31.0, 16.0, 12.0)
    assert camera.resized(None, None) is camera
    assert camera.resized(48, None) == ExportCamera(48, 64, 60.0, 62.0, 32.0, 24.0)  # aspect ratio kept
    assert camera.resized(None, 16) == ExportCamera(12, 16, 15.0, 15.5, 8.0, 6.0)
    assert camera.resized(12, 64) == ExportCamera(12, 64, 60.0, 15.5, 32.0, 6.0)  # per-axis scaling


def test_fold_batchnorm_matches_eval_network() -> None:
    torch.manual_seed(0)
    net = MobileR2LNetwork(in_channels=12, width=16, depth=2, sr_factor=2, sr_widths=(8,)).eval()
    for module in net.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-1, 1)
            module.running_var.uniform_(0.5, 2)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.5, 0.5)
    folded = fold_batchnorm(net)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # the original is untouched
    x = torch.randn(1, 12, 5, 7)
    with torch.no_grad():
        torch.testing.assert_close(folded(x), net(x), rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- errors / atomic writes


def test_bad_inputs_give_one_line_errors(run_360, tmp_path: Path) -> None:
    with pytest.raises(InputError, match="no such file") as err:
        export_mobiler2l_onnx(tmp_path / "missing" / "config.yml", tmp_path / "out")
    assert "\n" not in str(err.value)
    assert not (tmp_path / "out").exists()
    with pytest.raises(InputError, match="--height must be a positive integer"):
        export_mobiler2l_onnx(run_360.config, tmp_path / "out", height=0)
    (tmp_path / "a-file").write_text("x")
    with pytest.raises(InputError, match="exists and is not a directory"):
        export_mobiler2l_onnx(run_360.config, tmp_path / "a-file")
    (tmp_path / "a-file").unlink()
    not_a_config = tmp_path / "config.yml"
    not_a_config.write_text("just: a dict\n")
    with pytest.raises(InputError, match="not a nerfstudio run config"):
        export_mobiler2l_onnx(not_a_config, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yml"]  # nothing else written


def test_unwritable_output_dir_leaves_nothing(run_360, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(InputError, match=r"--output-dir .*cannot write there") as err:
        export_mobiler2l_onnx(run_360.config, blocker / "sub" / "out", verbose=False)
    assert "\n" not in str(err.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]
    if os.geteuid() != 0:  # root ignores permission bits
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o555)
        with pytest.raises(InputError, match="not writable|cannot write there"):
            export_mobiler2l_onnx(run_360.config, locked / "out", verbose=False)
        assert list(locked.iterdir()) == []

    # a failure while moving files into an existing export restores it exactly
    out = tmp_path / "existing"
    export_mobiler2l_onnx(run_360.config, out, verbose=False)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    real_replace, moves = os.replace, []

    def flaky_replace(src, dst):
        if Path(dst).parent == out and not Path(src).name.endswith(".previous"):  # a staged file moved in
            moves.append(dst)
            if len(moves) == 3:  # after two files were already moved into place
                raise OSError(28, "No space left on device")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", flaky_replace)
    with pytest.raises(InputError, match="No space left on device"):
        export_mobiler2l_onnx(run_360.config, out, height=16, verbose=False)
    monkeypatch.setattr(os, "replace", real_replace)
    assert len(moves) == 3
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["existing", "file"]  # no staging dir left


def test_write_failure_and_truncated_graph_are_one_line(run_360, tmp_path: Path) -> None:
    import resource
    import signal

    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a fatal signal
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (20_000, hard))  # a full disk's stand-in: no file over 20 kB
    try:
        with pytest.raises(InputError, match=r"--output-dir .*full: cannot write the export \(File too large\)"):
            export_mobiler2l_onnx(run_360.config, tmp_path / "full", verbose=False)
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, handler)
    assert list(tmp_path.iterdir()) == []  # no staging folder, no partial export

    out = tmp_path / "export"
    export_mobiler2l_onnx(run_360.config, out, verbose=False)
    model = out / "model.onnx"
    model.write_bytes(model.read_bytes()[: model.stat().st_size // 3])
    with pytest.raises(InputError, match=r"model\.onnx: onnxruntime cannot load it \(.*\); export it again") as err:
        OnnxLightField(out)
    assert "\n" not in str(err.value)


# --------------------------------------------------------------------------- ns-export hook


def test_cli_commands(run_ff, tmp_path: Path) -> None:
    """Installed console scripts in subprocesses (network disabled), run concurrently."""
    from mobiler2l_ns.methods.teachers import teacher_method

    from .conftest import OFFLINE_RUNNER

    teacher = copy.deepcopy(teacher_method.config)
    teacher.output_dir, teacher.timestamp = tmp_path / "teacher-out", "run"
    teacher.save_config()
    teacher_config = teacher.get_base_dir() / "config.yml"
    out = tmp_path / "cli-export"
    rendered = tmp_path / "rendered"
    export_mobiler2l_onnx(run_ff.config, rendered, verbose=False)
    render = str(Path(sys.executable).parent / "mobiler2l-render")
    export = [sys.executable, str(OFFLINE_RUNNER), "ns-export", "mobiler2l-onnx"]
    jobs = {
        "help": [sys.executable, str(OFFLINE_RUNNER), "ns-export", "--help"],
        "export": [*export, "--load-config", str(run_ff.config), "--output-dir", str(out), "--fp16"],
        "teacher": [*export, "--load-config", str(teacher_config), "--output-dir", str(tmp_path / "t")],
        "missing": [*export, "--load-config", str(tmp_path / "nope.yml"), "--output-dir", str(tmp_path / "m")],
        "render": [render, str(rendered), "--orbit", "2", "--out", str(tmp_path / "o.gif")],
        "render-bad": [render, str(tmp_path), "--out", str(tmp_path / "x.png")],
    }
    # nerfstudio's own import-time FutureWarnings are silenced so that stderr holds only our output
    env = {**offline_env(tmp_path / "torch-home"), "OMP_NUM_THREADS": "1", "COLUMNS": "200", "PYTHONWARNINGS": "ignore"}
    procs = {
        name: subprocess.Popen(args, cwd=tmp_path, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        for name, args in jobs.items()
    }
    results = {name: (proc, *proc.communicate(timeout=300)) for name, proc in procs.items()}

    proc, stdout, stderr = results["help"]
    assert proc.returncode == 0, stderr[-2000:]
    assert "mobiler2l-onnx" in stdout and "gaussian-splat" in stdout

    proc, stdout, stderr = results["export"]
    assert proc.returncode == 0, stdout[-2000:] + stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == EXPORT_FILES
    meta = json.loads((out / METADATA_NAME).read_text())
    assert meta["precision"] == "fp16" and meta["fp16"]["psnr_vs_fp32_db"] >= 35.0
    assert "fp16 model.onnx vs fp32: PSNR" in stdout

    for name, pattern in (
        ("teacher", "is a 'mobiler2l-teacher' run"),
        ("missing", "no such file"),
        ("render-bad", "not a mobiler2l-onnx export"),
    ):
        proc, stdout, stderr = results[name]
        assert proc.returncode == 1, stdout + stderr
        lines = stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("mobiler2l: ") and pattern in lines[0], stderr
    assert not (tmp_path / "t").exists() and not (tmp_path / "m").exists()

    proc, stdout, stderr = results["render"]
    assert proc.returncode == 0, stderr[-2000:]
    with Image.open(tmp_path / "o.gif") as gif:
        assert gif.n_frames == 2 and gif.size == (32, 24)
