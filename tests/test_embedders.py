"""Tests of the student's learned embedders (k-planes at the points, light slabs of the rays): exact
lookups and channel layout, contraction, slab geometry and blending, and the model's parameter groups."""

from __future__ import annotations

import pytest
import torch

from mobiler2l_ns.geometry import look_at
from mobiler2l_ns.student.embedder import PointEmbedder
from mobiler2l_ns.student.feature_grids import PLANE_AXES, contract, level_resolutions, lookup_planes, normalise_to_box
from mobiler2l_ns.student.model import MobileR2LModelConfig
from mobiler2l_ns.student.planes_embedder import PlanesEmbedder
from mobiler2l_ns.student.slab_embedder import AXES, PAIRS, SlabEmbedder, slab_coordinates
from mobiler2l_ns.student.volume_embedder import VolumeEmbedder
from tests.helpers import blender_views, psnr

pytestmark = pytest.mark.usefixtures("single_thread")
BOX = torch.tensor([[-2.0, -1.0, 0.0], [2.0, 3.0, 1.0]])


def linear_grid(num_planes: int, features: int, resolution: int, coefficients: torch.Tensor) -> torch.Tensor:
    """``grid[p, f, i, j] = c[p, f, 0] * a_j + c[p, f, 1] * b_i + c[p, f, 2]`` (a, b: the cell's coordinates
    in [-1, 1]): bilinear interpolation reproduces it exactly anywhere inside the plane."""
    axis = torch.linspace(-1.0, 1.0, resolution)
    a, b = axis[None, :].expand(resolution, -1), axis[:, None].expand(-1, resolution)
    c = coefficients
    return c[..., 0, None, None] * a + c[..., 1, None, None] * b + c[..., 2, None, None]


def test_level_resolutions_are_geometric() -> None:
    assert level_resolutions(4, 32, 256) == [32, 64, 128, 256]
    assert level_resolutions(1, 16, 64) == [64]
    assert level_resolutions(3, 16, 64) == [16, 32, 64]
    with pytest.raises(ValueError):
        level_resolutions(0, 16, 64)


def test_lookup_is_bilinear_with_grid_sample_axes() -> None:
    """(a, b): a runs along the width axis, b along the height axis; zero outside [-1, 1]^2."""
    torch.manual_seed(0)
    coefficients = torch.randn(2, 3, 3)
    grid = linear_grid(2, 3, 9, coefficients)
    coords = torch.rand(2, 50, 2) * 2 - 1
    got = lookup_planes(grid, coords)  # [2, 3, 50]
    expected = torch.einsum("pfk,pnk->pfn", coefficients[..., :2], coords) + coefficients[..., 2, None]
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)
    outside = lookup_planes(grid, torch.full((2, 1, 2), 3.0))
    assert float(outside.abs().max()) == 0.0


def test_contraction_is_identity_halved_inside_and_bounded_outside() -> None:
    x = torch.tensor([[0.3, -0.9, 1.0], [2.0, 0.0, 0.0], [1e6, -3e5, 2.0], [-1.0001, 0.2, 0.1]])
    y = contract(x)
    torch.testing.assert_close(y[0], x[0] * 0.5)
    assert torch.allclose(y[1], torch.tensor([0.75, 0.0, 0.0]))  # (2 - 1/2) / 2
    assert float(y.abs().max()) <= 1.0
    assert abs(float(y[3, 0]) + 0.5) < 1e-3  # continuous at the cube's surface
    torch.testing.assert_close(normalise_to_box(BOX, BOX), torch.tensor([[-1.0] * 3, [1.0] * 3]))


def test_planes_features_and_channel_order() -> None:
    """Feature f of level l at point k = product of the three planes' bilinear values (k-planes)."""
    torch.manual_seed(1)
    K, F = 3, 2
    embedder = PlanesEmbedder(K, BOX, num_levels=2, features=F, min_resolution=8, max_resolution=16)
    coefficients = [torch.randn(3, F, 3) for _ in embedder.grids]
    with torch.no_grad():
        for grid, c in zip(embedder.grids, coefficients):
            grid.copy_(linear_grid(3, F, grid.shape[-1], c))
    lo, hi = BOX
    points = lo + (hi - lo) * torch.rand(2, 4, 5, K, 3)  # [B, h, w, K, 3] inside the box
    with torch.no_grad():
        out = embedder(points)
    assert out.shape == (2, K * 2 * F, 4, 5) and embedder.out_channels == K * 2 * F
    x = normalise_to_box(points, BOX)
    for b, i, j, k in ((0, 0, 0, 0), (1, 3, 4, 2), (0, 2, 1, 1)):
        for level, c in enumerate(coefficients):
            for f in range(F):
                value = 1.0
                for plane, (u, v) in enumerate(PLANE_AXES):
                    p = x[b, i, j, k]
                    value *= float(c[plane, f, 0] * p[u] + c[plane, f, 1] * p[v] + c[plane, f, 2])
                channel = k * (2 * F) + level * F + f
                assert abs(float(out[b, channel, i, j]) - value) < 1e-4


def test_planes_sum_contraction_and_appended_encoding() -> None:
    """Far points are contracted into the grid (features = the sum of the planes' values at the contracted
    coordinates), the positional encoding of the raw points follows; without contraction: zero."""
    torch.manual_seed(4)
    embedder = PlanesEmbedder(2, BOX, num_levels=1, features=4, min_resolution=8, max_resolution=8, combine="sum",
                              contraction=True, pe_frequencies=2)  # fmt: skip
    coefficients = torch.randn(3, 4, 3)
    with torch.no_grad():
        embedder.grids[0].copy_(linear_grid(3, 4, 8, coefficients))
    far_points = torch.tensor([[1e4, -1e4, 5e3], [-30.0, 20.0, -5.0]]).expand(1, 1, 2, 3)
    with torch.no_grad():
        out = embedder(far_points)
    assert out.shape == (1, 2 * 4 + 2 * 3 * 5, 1, 1) and embedder.out_channels == 2 * 4 + 2 * 3 * 5
    for k in range(2):
        x = contract(normalise_to_box(far_points[0, 0, k], BOX))
        expected = sum(coefficients[p, :, 0] * x[u] + coefficients[p, :, 1] * x[v] + coefficients[p, :, 2]
                       for p, (u, v) in enumerate(PLANE_AXES))  # fmt: skip
        torch.testing.assert_close(out[0, 4 * k : 4 * k + 4, 0, 0], expected, rtol=0, atol=1e-5)
    torch.testing.assert_close(out[:, 8:], PointEmbedder(2, 2)(far_points), rtol=0, atol=0)
    plain = PlanesEmbedder(2, BOX, num_levels=1, features=4, min_resolution=8, max_resolution=8, combine="sum")
    assert float(plain(far_points).detach().abs().max()) == 0.0  # outside the box without contraction: zero


def test_slab_coordinates_of_axis_aligned_and_oblique_rays() -> None:
    origin = torch.tensor([[0.2, -0.3, -5.0], [0.0, 0.0, 0.0]])
    direction = torch.tensor([[0.0, 0.0, 2.0], [0.5, 0.25, 1.0]])
    coords = slab_coordinates(origin, direction, (2, 0, 1), 1.0, extent=2.0)
    torch.testing.assert_close(coords[0], torch.tensor([0.1, -0.15, 0.1, -0.15]))  # straight along +z
    # the second ray crosses z = -1 at (-0.5, -0.25) and z = +1 at (0.5, 0.25)
    torch.testing.assert_close(coords[1], torch.tensor([-0.25, -0.125, 0.25, 0.125]))
    # the opposite sign's slab swaps entry and exit: the oriented line is told apart
    back = slab_coordinates(origin[1:], -direction[1:], (2, 0, 1), -1.0, extent=2.0)
    torch.testing.assert_close(back[0], torch.tensor([0.25, 0.125, -0.25, -0.125]))


def test_slab_blend_is_continuous_and_weights_sum_to_one() -> None:
    torch.manual_seed(2)
    embedder = SlabEmbedder(4, BOX, num_levels=2, features=2, min_resolution=8, max_resolution=16)
    assert embedder.out_channels == 2 * len(PAIRS) * 2
    directions = torch.randn(100, 3)
    weights = torch.stack(embedder.slab_weights(directions))  # [6, N]
    torch.testing.assert_close(weights.sum(dim=0), torch.ones(100))
    assert bool((weights >= 0).all())
    # rays whose x direction crosses zero: features change continuously (no seam between slabs)
    centre = torch.tensor([0.0, 1.0, 0.5])
    outputs = []
    for dx in (-1e-3, 0.0, 1e-3):
        d = torch.tensor([dx, 0.6, 0.8])
        points = centre + d * torch.linspace(-2.0, 2.0, 4)[:, None]  # [K, 3] on the line
        outputs.append(embedder(points[None, None]).detach())
    assert float((outputs[0] - outputs[2]).abs().max()) < 1e-2
    assert float(outputs[1].abs().max()) > 0.05  # features, not zeros (init range +-0.1 per pair grid)


def test_slab_features_are_the_blended_pair_lookups() -> None:
    """With linear pair grids, each level's features are sum_s w_s (c . (coords of pair in slab s)):
    the entry / exit crossings of the box faces computed here from the ray's line."""
    torch.manual_seed(5)
    extent = 8.0  # every crossing of these rays lies inside the grids (no zero padding)
    embedder = SlabEmbedder(3, BOX, num_levels=2, features=2, min_resolution=8, max_resolution=16, extent=extent)
    coefficients = [torch.randn(6 * len(PAIRS), 2, 3) for _ in embedder.grids]  # 6 slabs (x, y, z; +-)
    with torch.no_grad():
        for grid, c in zip(embedder.grids, coefficients):
            grid.copy_(linear_grid(grid.shape[0], 2, grid.shape[-1], c))
    first = torch.tensor([[-0.3, 0.2, 0.1], [0.5, -0.4, 0.2]])  # grid units ([-1, 1]^3)
    direction = torch.tensor([[0.4, 0.3, -0.5], [-0.6, 0.2, 0.3]])
    x = torch.stack([first + direction * t for t in (0.0, 0.5, 1.0)], dim=1)  # [2 rays, K = 3, 3]
    lo, hi = BOX
    points = lo + (x + 1.0) * 0.5 * (hi - lo)  # back to world units
    with torch.no_grad():
        out = embedder(points[None, None])[0, :, 0]  # [C, 2 rays]
    for r in range(2):
        o, d = first[r], direction[r]
        total = sum(float(d[a] ** 2) for a in range(3))
        for level, c in enumerate(coefficients):
            expected = torch.zeros(len(PAIRS) * 2)
            slab = 0
            for name in ("x", "y", "z"):
                a, b, e = AXES[name]
                for sign in (1.0, -1.0):
                    entry = o + d * (-sign - o[a]) / d[a]
                    exit_ = o + d * (sign - o[a]) / d[a]
                    coords = torch.stack([entry[b], entry[e], exit_[b], exit_[e]]) / extent
                    assert float(coords.abs().max()) < 1.0
                    weight = float(d[a] ** 2) / total * float(d[a] * sign >= 0)
                    for pair, (i, j) in enumerate(PAIRS):
                        cp = c[slab * len(PAIRS) + pair]  # [F, 3]
                        value = cp[:, 0] * coords[i] + cp[:, 1] * coords[j] + cp[:, 2]
                        expected[2 * pair : 2 * pair + 2] += weight * value
                    slab += 1
            got = out[level * len(PAIRS) * 2 : (level + 1) * len(PAIRS) * 2, r]
            torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_embedders_share_the_ray_embedder_contract() -> None:
    """Every embedder: the same input check, metadata fields, parameter count and FLOPs hook."""
    embedders = [PointEmbedder(3, 2), PlanesEmbedder(3, BOX, num_levels=2, features=2, min_resolution=8,
                 max_resolution=16, pe_frequencies=1), SlabEmbedder(3, BOX, num_levels=1, features=2,
                 min_resolution=8, max_resolution=8, axes=("z",)), VolumeEmbedder(3, BOX, num_levels=1,
                 features=2, min_resolution=8, max_resolution=8)]  # fmt: skip
    for embedder, kind in zip(embedders, ("pe", "planes", "slab", "volume")):
        with pytest.raises(ValueError, match=r"expected points \[..., h, w, 3, 3\], got \(2, 2, 4, 3\)"):
            embedder(torch.zeros(2, 2, 4, 3))
        info = embedder.describe()
        assert (info["kind"], info["num_points"], info["channels"]) == (kind, 3, embedder.out_channels)
        assert info["formula"] and info["channel_order"]
        out = embedder(torch.rand(2, 3, 4, 5, 3, 3) * 0.5)  # two batch dims -> B = 6
        assert out.shape == (6, embedder.out_channels, 4, 5)
        learned = sum(p.numel() for p in embedder.parameters())
        assert embedder.parameter_count() == learned and (learned == 0) == (kind == "pe")
        assert (embedder.flops(4, 5) == 0) == (kind == "pe")
        if kind != "pe":
            assert info["aabb"] == BOX.tolist() and info["parameters"] == learned
            assert info["levels"] == embedder.resolutions and info["features"] == 2


def test_model_param_groups_and_embedder_choice() -> None:
    from nerfstudio.data.scene_box import SceneBox

    box = SceneBox(aabb=torch.tensor([[-1.5] * 3, [1.5] * 3]))
    for kind, cls in (("pe", None), ("planes", PlanesEmbedder), ("slab", SlabEmbedder)):
        config = MobileR2LModelConfig(depth=1, width=8, sr_factor=2, embedder=kind, grid_levels=2,
                                      grid_max_resolution=16, grid_min_resolution=8, report_cost=False)  # fmt: skip
        model = config.setup(scene_box=box, num_train_data=1)
        groups = model.get_param_groups()
        assert set(groups) == ({"student"} if kind == "pe" else {"student", "grids"})
        if cls is not None:
            assert isinstance(model.embedder, cls)
            assert sum(p.numel() for p in groups["grids"]) == model.embedder.parameter_count() > 0
            torch.testing.assert_close(model.embedder.aabb, box.aabb)
        assert model.network.head[0].in_channels == model.embedder.out_channels
    with pytest.raises(ValueError, match="unknown embedder"):
        MobileR2LModelConfig(embedder="nope").setup(scene_box=box, num_train_data=1)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- convergence


def held_out_psnr_after(recipe: str, steps: int, train, test) -> float:
    """Test PSNR (vs ground truth) of a student recipe's model and optimisers after ``steps`` steps
    of 4 whole training views each (the same views for every recipe)."""
    import copy

    from nerfstudio.data.scene_box import SceneBox
    from nerfstudio.engine.optimizers import Optimizers

    from mobiler2l_ns.methods.students import STUDENT_RECIPES

    torch.manual_seed(0)
    config = copy.deepcopy(STUDENT_RECIPES[recipe])
    config.pipeline.model.report_cost = False
    box = SceneBox(aabb=torch.tensor([[-1.5] * 3, [1.5] * 3]))
    model = config.pipeline.model.setup(scene_box=box, num_train_data=len(train[0]))
    optimizers = Optimizers(config.optimizers, model.get_param_groups())
    generator = torch.Generator().manual_seed(0)
    for step in range(steps):
        model.train()
        model.freeze_batchnorm(step >= steps - steps // 10)  # the PE recipe's last steps (no-op without BN)
        index = torch.randperm(len(train[0]), generator=generator)[:4]
        loss = model.get_loss_dict(model(train[0][index]), {"image": train[1][index]})["rgb_loss"]
        optimizers.zero_grad_all()
        loss.backward()
        optimizers.optimizer_step_all()
        optimizers.scheduler_step_all(step)
    model.eval()
    with torch.no_grad():
        renders = torch.stack([model.get_outputs_for_camera(test[0][i : i + 1])["rgb"] for i in range(len(test[0]))])
    return psnr(renders, test[1])


def test_learned_embedder_beats_positional_encoding_on_held_out_views(tmp_path) -> None:
    """The CPU presets' student (learned volume features) against its positional-encoding predecessor:
    same steps, same views; scored on views neither trained on, against their ground truth."""
    from mobiler2l_ns.scenes.synthetic import render_blender_scene

    scene = render_blender_scene(tmp_path / "scene", 48, 40, 1, 6, seed=4)
    train, test = blender_views(scene, "train"), blender_views(scene, "test")
    mean_colour = train[1].mean(dim=(0, 1, 2))
    baseline = psnr(mean_colour.expand_as(test[1]), test[1])
    scores = {recipe: held_out_psnr_after(recipe, 300, train, test) for recipe in ("small-pe", "small")}
    print(f"held-out PSNR after 300 steps: {scores}, mean colour {baseline:.2f} dB")
    assert scores["small-pe"] > baseline + 1.0  # both learn
    assert scores["small"] > scores["small-pe"] + 1.5, scores  # measured: 22.1 vs 20.2 dB


# --------------------------------------------------------------------------- sampling around the scene


def test_occupied_near_far_brackets_the_occupied_cells() -> None:
    """A ray through an occupancy grid with one occupied block: near / far bracket exactly the block
    (to one lookup step); a ray that misses it gets an empty segment."""
    from mobiler2l_ns.student.sampler import occupied_near_far, ray_box_near_far

    grid = torch.zeros(8, 8, 8)
    grid[3:5, 3:5, 3:5] = 1.0  # cells cover [-0.25, 0.25]^3 of the box [-1, 1]^3
    box = torch.tensor([[-1.0] * 3, [1.0] * 3])
    R = torch.eye(3)[None]  # camera looks down -z from z = 3
    t = torch.tensor([[0.0, 0.0, 3.0]])
    dirs = torch.tensor([[[[0.0, 0.0, -1.0], [0.5, 0.0, -1.0]]]])  # [1, 1, 2, 3]: centre ray, one that misses
    near, far = occupied_near_far(R, t, dirs, box, grid, box, steps=64, min_near=0.05)
    box_near, box_far = ray_box_near_far(R, t, dirs, box, 0.05)
    assert abs(float(box_near[0, 0, 0]) - 2.0) < 1e-5 and abs(float(box_far[0, 0, 0]) - 4.0) < 1e-5
    step = 2.0 / 64
    assert 2.75 - step <= float(near[0, 0, 0]) <= 2.75 + 1e-5 and 3.25 - 1e-5 <= float(far[0, 0, 0]) <= 3.25 + step
    assert float(far[0, 0, 1] - near[0, 0, 1]) == 0.0


def test_occupancy_sampling_model_exports_equal_to_pytorch(tmp_path) -> None:
    """A volume student sampling around a (teacher) occupancy grid: sampler.onnx bakes the grid and the
    chain equals PyTorch (>= 60 dB), with the grid carried by the checkpoint's buffers."""
    import numpy as np
    from nerfstudio.data.scene_box import SceneBox

    from mobiler2l_ns.export.graphs import ExportCamera
    from mobiler2l_ns.export.onnx_export import export_model
    from mobiler2l_ns.export.verify import render_torch
    from mobiler2l_ns.export.runtime import OnnxLightField
    from mobiler2l_ns.student.sampler import OCCUPANCY_KEY, SAMPLE_BOX_KEY

    torch.manual_seed(3)
    grid = (torch.rand(16, 16, 16) > 0.7).float()
    metadata = {OCCUPANCY_KEY: (grid, [-1.5, -1.5, -1.5, 1.5, 1.5, 1.5], "test"),
                SAMPLE_BOX_KEY: ([-1.0, -1.2, -0.8, 1.0, 1.1, 0.9], "test")}  # fmt: skip
    config = MobileR2LModelConfig(depth=1, width=16, sr_factor=4, sr_widths=(16, 8), embedder="volume", num_points=12,
                                  grid_levels=2, grid_min_resolution=8, grid_max_resolution=16, batchnorm=False,
                                  ray_box=True, occupancy_sampling=True, occupancy_steps=32, report_cost=False)  # fmt: skip
    box = SceneBox(aabb=torch.tensor([[-1.5] * 3, [1.5] * 3]))
    model = config.setup(scene_box=box, num_train_data=1, metadata=metadata).eval()
    assert model.uses_occupancy() and torch.equal(model.occupancy, grid)
    with torch.no_grad():
        model.network.tail[0].weight.mul_(20.0)
    camera = ExportCamera(24, 32, 30.0, 30.0, 16.0, 12.0)
    eye = np.array([3.0, -2.0, 1.5])
    poses = np.stack([look_at(eye, np.zeros(3), np.array([0.0, 0.0, 1.0]))])
    result = export_model(model, camera, tmp_path / "export", poses)
    assert result.metadata["sampling"]["mode"] == "occupancy"
    field = OnnxLightField(tmp_path / "export", threads=1)
    for pose in [poses[0], *field.orbit(3)]:
        expected = render_torch(model, camera, pose)
        got = field.render(pose)
        assert psnr(got, expected) >= 60.0
    assert float(expected.std()) > 0.01
    # a model built without the grid (eval_setup without the teacher) takes it from the checkpoint
    reloaded = config.setup(scene_box=box, num_train_data=1)
    assert not reloaded.uses_occupancy()
    reloaded.load_state_dict(model.state_dict())
    assert reloaded.uses_occupancy() and torch.equal(reloaded.occupancy, grid)
