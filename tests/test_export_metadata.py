"""Tests of ``metadata.json`` (:class:`ExportMetadata`), the runtime's pose helpers and ``mobiler2l-render``.

No training: a tiny random-weight student is exported in-process (seconds on the CPU).
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from mobiler2l_ns.export.graphs import ExportCamera
from mobiler2l_ns.export.metadata import GRAPH_FILES, METADATA_NAME, ExportMetadata
from mobiler2l_ns.export.onnx_export import export_model
from mobiler2l_ns.export.runtime import OnnxLightField, main as render_main, orbit_poses
from mobiler2l_ns.geometry import look_at, to_normalised, to_original
from mobiler2l_ns.utils.errors import InputError

pytestmark = pytest.mark.usefixtures("single_thread")


def test_turntable_orbit_and_pose_helpers() -> None:
    base = np.array([[1.0, 0, 0, 0], [0, 0, -1, -4], [0, 1, 0, 1]])
    orbit = {"kind": "turntable", "axis": [0, 0, 1], "center": [0, 0, 0]}
    poses = orbit_poses(base, orbit, 4)
    np.testing.assert_allclose(poses[1][:, 3], [4, 0, 1], atol=1e-12)  # 90 deg about +z
    np.testing.assert_allclose(poses[2][:, 3], [0, 4, 1], atol=1e-12)
    for pose in poses:
        np.testing.assert_allclose(pose[:, :3] @ pose[:, :3].T, np.eye(3), atol=1e-12)
    transform, scale = np.array([[0.0, -1, 0, 1], [1, 0, 0, 2], [0, 0, 1, 3]]), 0.5
    normalised = to_normalised(np.vstack([base, [0, 0, 0, 1]]), transform, scale)
    np.testing.assert_allclose(normalised[:, 3], 0.5 * (transform[:, :3] @ base[:, 3] + transform[:, 3]))
    np.testing.assert_allclose(to_original(normalised, transform, scale), base, atol=1e-12)
    with pytest.raises(InputError, match="3x4 or 4x4"):
        to_normalised(np.eye(3), transform, scale)


@pytest.fixture(scope="module")
def random_export(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random-weight student (scene-box sampling) exported in-process: no training needed."""
    from nerfstudio.data.scene_box import SceneBox

    from mobiler2l_ns.student.model import MobileR2LModelConfig

    torch.manual_seed(0)
    config = MobileR2LModelConfig(depth=1, width=16, sr_factor=4, sr_widths=(16, 8), num_points=8, report_cost=False)
    model = config.setup(scene_box=SceneBox(aabb=torch.tensor([[-1.0] * 3, [1.0] * 3])), num_train_data=1)
    up = [0.0, 0.0, 1.0]
    poses = np.stack([look_at([3.0, 1.0, 1.0], [0, 0, 0], up), look_at([1.0, 3.0, 1.0], [0, 0, 0], up)])
    camera = ExportCamera(20, 28, 24.0, 24.0, 14.0, 10.0)
    return export_model(model, camera, tmp_path_factory.mktemp("random") / "export", poses).output_dir


def test_metadata_round_trip(random_export: Path, tmp_path: Path) -> None:
    """metadata.json -> ExportMetadata -> the same bytes; the mapping view is the JSON object."""
    text = (random_export / METADATA_NAME).read_text()
    meta = ExportMetadata.read(random_export)
    assert meta.to_json() == text
    assert meta == ExportMetadata.from_json(json.loads(text)) and dict(meta) == json.loads(text)
    assert list(meta)[:2] == ["format", "format_version"] and list(meta)[-2:] == ["checks", "files"]
    assert meta["orbit"] is meta.orbit and "fp16" not in meta and meta.fp16 is None
    assert meta.files == [*GRAPH_FILES.values(), METADATA_NAME]
    channels = meta.encoding["channels"]
    assert meta.io_shapes() == {
        "sampler": {"inputs": [("rotation", [3, 3]), ("translation", [3])], "outputs": [("points", [5, 7, 8, 3])]},
        "embedder": {"inputs": [("points", [5, 7, 8, 3])], "outputs": [("encoding", [1, channels, 5, 7])]},
        "model": {"inputs": [("encoding", [1, channels, 5, 7])], "outputs": [("image", [1, 3, 20, 28])]},
    }
    assert meta.num_points == 8 and (meta.lowres_height, meta.lowres_width) == (5, 7)
    path = meta.write(tmp_path / "copy")
    assert path.read_text() == text and ExportMetadata.read(tmp_path / "copy") == meta


def _set(path: str, value):
    """A metadata mutation: set (or, with value ``...``, delete) the entry at dotted ``path``."""

    def mutate(data: dict) -> None:
        *parents, last = path.split(".")
        for part in parents:
            data = data[int(part)] if isinstance(data, list) else data[part]
        key = int(last) if isinstance(data, list) else last
        if value is ...:
            del data[key]
        else:
            data[key] = value

    return mutate


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (_set("height", ...), "missing field 'height'"),
        (_set("height", "20"), "field 'height' must be a positive integer, got \"20\""),
        (_set("width", 0), "field 'width' must be a positive integer, got 0"),
        (_set("lowres_height", 6), "lowres_height x lowres_width 6 x 7 is not ceil(height / sr_factor)"),
        (_set("format", "other"), "not a mobiler2l-onnx metadata file"),
        (_set("format_version", 2), "format_version 2 is newer than this mobiler2l-ns reads (1)"),
        (_set("target", "lens"), "field 'target' must be 'standard' or 'snap', got \"lens\""),
        (_set("encoding", []), "field 'encoding' must be a JSON object, got []"),
        (_set("encoding.channels", ...), "missing field 'encoding.channels'"),
        (_set("graphs.model.file", "../model.onnx"), "field 'graphs.model.file' must be a file name in the export"),
        (_set("graphs.sampler.outputs", ...), "missing field 'graphs.sampler.outputs'"),
        (_set("graphs.sampler.inputs", []), "field 'graphs.sampler.inputs' must be a list of 2 tensor(s), got []"),
        (_set("dataparser_transform.transform", [[1, 0, 0]]), "'dataparser_transform.transform' must be a 3x4 matrix"),
        (_set("dataparser_transform.scale", -1), "field 'dataparser_transform.scale' must be a positive number"),
        (_set("reference_pose.1.2", None), "field 'reference_pose[1][2]' must be a finite number, got null"),
        (_set("orbit.kind", "spiral"), "field 'orbit.kind' must be 'turntable' or 'circle', got \"spiral\""),
        (_set("orbit.axis", [0, 0]), "field 'orbit.axis' must be 3 numbers, got [0, 0]"),
        (_set("intrinsics.fx", "24"), "field 'intrinsics.fx' must be a finite number"),
    ],
)
def test_bad_metadata_is_one_line_naming_file_and_field(random_export: Path, tmp_path: Path, mutate, message) -> None:
    """Validated once (ExportMetadata.from_json): the runtime and the viewer refuse it with the same line."""
    from mobiler2l_ns.web.export_check import load_viewer_export

    broken = tmp_path / "broken"
    broken.mkdir()
    data = json.loads((random_export / METADATA_NAME).read_text())
    mutate(data)
    (broken / METADATA_NAME).write_text(json.dumps(data))
    for name in GRAPH_FILES.values():
        (broken / name).symlink_to(random_export / name)
    errors = []
    for reader in (ExportMetadata.read, OnnxLightField, load_viewer_export):
        with pytest.raises(InputError) as err:
            reader(broken)
        errors.append(err.value.message)
    assert errors[0] == errors[1] == errors[2], errors
    assert errors[0].startswith(f"{broken / METADATA_NAME}: ") and message in errors[0], errors[0]
    assert "\n" not in errors[0]


def test_render_cli_writes_the_runtime_image(random_export: Path, tmp_path: Path) -> None:
    """mobiler2l-render's image is the runtime's, quantised; its option errors are one line."""
    from mobiler2l_ns.utils.io import read_rgb, to_uint8

    field = OnnxLightField(random_export, threads=1)
    pose = field.orbit(4)[1]
    assert render_main([str(random_export), "--pose", *map(str, pose.ravel()), "--out", str(tmp_path / "a.png")]) == 0
    expected = to_uint8(field.render(pose))
    assert float(expected.std()) > 0.0  # the orbit pose sees the scene box, not a constant colour
    np.testing.assert_array_equal(np.round(read_rgb(tmp_path / "a.png") * 255).astype(np.uint8), expected)
    pose_file = tmp_path / "pose.json"
    pose_file.write_text(json.dumps({"transform_matrix": [*pose.tolist(), [0, 0, 0, 1]]}))
    args = [str(random_export), "--out"]
    for extra, message in (
        ([str(tmp_path / "b.png"), "--pose", *map(str, pose.ravel()), "--pose-file", str(pose_file)], "give one"),
        ([str(tmp_path / "b.png"), "--orbit", "2"], "--orbit writes an animated GIF: --out must end in .gif"),
        ([str(tmp_path / "b.xyz")], "unknown image file extension '.xyz'"),
        ([str(tmp_path / "no" / "b.png")], "does not exist"),
        ([str(tmp_path / "b.png"), "--pose", "1", "0", "0"], "--pose takes 12 (3x4) or 16 (4x4) numbers, got 3"),
        ([str(tmp_path / "b.png"), "--original-coords"], "--original-coords needs --pose or --pose-file"),
    ):
        with pytest.raises(InputError, match=re.escape(message)):
            render_main(args + extra)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "pose.json"]
    with pytest.raises(SystemExit) as usage:
        render_main([str(random_export), "--out", str(tmp_path / "c.png"), "--no-such-flag"])
    assert usage.value.code == 2 and not isinstance(usage.value, InputError)
