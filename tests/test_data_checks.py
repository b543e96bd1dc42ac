"""Unusable datasets end in one line naming the problem, not a traceback."""

from __future__ import annotations

import copy
import shutil
from pathlib import Path

import pytest

from mobiler2l_ns.utils.data_checks import check_dataset
from mobiler2l_ns.utils.errors import BadInputArgumentParser, InputError, OneLineArgumentParser
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
    check_dataset(tiny_blender, "blender")


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
    from mobiler2l_ns.student.config import mobiler2l_small_config

    config = copy.deepcopy(mobiler2l_small_config.pipeline.datamanager)
    config.data = tmp_path / "missing"
    with pytest.raises(InputError, match="no such file or folder"):
        config.setup(device="cpu")


@pytest.mark.parametrize("parser_class, status", [(OneLineArgumentParser, 2), (BadInputArgumentParser, 1)])
def test_usage_errors_are_one_line(parser_class, status: int, capsys: pytest.CaptureFixture[str]):
    parser = parser_class(prog="mobiler2l-tool")
    parser.add_argument("--count", type=int, required=True)
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("go").add_argument("--size", type=int)
    for argv in (["--count", "many"], ["--count", "1", "go", "--size", "big"]):
        with pytest.raises(SystemExit) as exit_info:
            parser.parse_args(argv)
        assert exit_info.value.code == status
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("mobiler2l-tool") and "invalid int value" in err, err
