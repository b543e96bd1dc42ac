"""The comparison strip (``python -m mobiler2l_ns.utils.strip``): layout, error column and PSNR lines."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest

from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.utils.io import read_rgb, to_uint8, write_png
from mobiler2l_ns.utils.strip import COLUMNS, main
from tests.helpers import psnr

H, W, VIEWS = 6, 8, 3


def fake_renders(root: Path) -> list[list[np.ndarray]]:
    """Ground truth, teacher (slightly off) and student (more off) renders of VIEWS views, as written."""
    rng = np.random.default_rng(0)
    columns: list[list[np.ndarray]] = [[], [], []]
    for i in range(VIEWS):
        truth = rng.random((H, W, 3))
        for k, noise in enumerate((0.0, 0.02, 0.1)):
            image = to_uint8(np.clip(truth + noise * rng.standard_normal((H, W, 3)), 0, 1))
            write_png(root / COLUMNS[k] / f"{i:05d}.png", image)
            columns[k].append(image.astype(np.float32) / 255.0)
    return columns


def test_strip_layout_error_column_and_psnr(tmp_path: Path, capsys: pytest.CaptureFixture[str]):
    columns = fake_renders(tmp_path / "renders")
    out = tmp_path / "strip.png"
    assert main([str(tmp_path / "renders"), "--out", str(out), "--views", "2"]) == 0
    strip = read_rgb(out)
    assert strip.shape == (2 * H, 4 * W, 3)
    for i in range(2):
        row = strip[i * H : (i + 1) * H]
        for k in range(3):
            np.testing.assert_array_equal(row[:, k * W : (k + 1) * W], columns[k][i])
        error = np.clip(4.0 * np.abs(columns[2][i] - columns[0][i]).mean(-1, keepdims=True), 0, 1).repeat(3, -1)
        np.testing.assert_allclose(row[:, 3 * W :], error, atol=0.5 / 255 + 1e-6)
    printed = dict(re.findall(r"(teacher|student): mean PSNR ([\d.]+) dB over 3 test views", capsys.readouterr().out))
    for k, name in ((1, "teacher"), (2, "student")):
        expected = np.mean([psnr(columns[k][i], columns[0][i]) for i in range(VIEWS)])
        assert float(printed[name]) == pytest.approx(expected, abs=0.01)
    assert float(printed["teacher"]) > float(printed["student"]) + 10.0  # 0.02 vs 0.1 noise: 14 dB apart


def test_missing_renders_are_one_line(tmp_path: Path):
    with pytest.raises(InputError, match=r"teacher/test/gt-rgb: no PNG renders \(run ns-render dataset first\)"):
        main([str(tmp_path), "--out", str(tmp_path / "strip.png")])
    assert not (tmp_path / "strip.png").exists()
