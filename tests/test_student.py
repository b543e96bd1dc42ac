"""Tests of the MobileR2L student (``ns-train mobiler2l`` / ``mobiler2l-small``): CPU, fast."""

from __future__ import annotations

import copy
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace
from typing import Dict, Tuple

import numpy as np
import pytest
import torch
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
from nerfstudio.data.scene_box import SceneBox
from nerfstudio.engine.callbacks import TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.engine.optimizers import Optimizers
from torchmetrics.functional.image import structural_similarity_index_measure

import mobiler2l_ns  # noqa: F401  (registers torch>=2.6 checkpoint compatibility)
from mobiler2l_ns.geometry import look_at
from mobiler2l_ns.scenes.synthetic import render_blender_scene, render_forward_facing_scene
from mobiler2l_ns.methods.students import (
    mobiler2l_config,
    mobiler2l_method,
    mobiler2l_small_config,
    mobiler2l_small_method,
)
from mobiler2l_ns.student.datamanager import MobileR2LDataManagerConfig, crop_camera
from mobiler2l_ns.student.embedder import PointEmbedder, channel_names, embedding_channels
from mobiler2l_ns.student.model import MobileR2LModel, MobileR2LModelConfig
from mobiler2l_ns.student.network import (
    MobileR2LNetwork,
    count_parameters,
    frame_flops,
    measured_flops,
    sr_stage_factors,
)
from mobiler2l_ns.student.sampler import lowres_pixel_directions, ndc_rays, points_from_pose
from mobiler2l_ns.utils.runs import load_pipeline
from tests.helpers import blender_views, psnr

BLENDER_BOX = SceneBox(aabb=torch.tensor([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]))
PAPER_PARAMS = 4_305_539


pytestmark = pytest.mark.usefixtures("single_thread")


@pytest.fixture(scope="module")
def tiny_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The procedural Blender scene at 32x32: 4 train, 1 val, 2 test views."""
    return render_blender_scene(tmp_path_factory.mktemp("tiny_scene"), 32, 4, 1, 2, seed=0)


def look_at_camera(height: int, width: int, focal: float = 40.0, eye=(0.0, -4.0, 1.0)) -> Cameras:
    """A perspective camera at ``eye`` looking at the origin (Z up), centred principal point."""
    c2w = torch.from_numpy(look_at(eye, (0.0, 0.0, 0.0), (0.0, 0.0, 1.0))).float()
    return Cameras(
        camera_to_worlds=c2w[None], fx=focal, fy=focal, cx=width / 2.0, cy=height / 2.0, width=width, height=height
    )


def make_model(**overrides) -> MobileR2LModel:
    """A student model (default: tiny network) on the Blender scene box."""
    kwargs = dict(depth=1, width=16, sr_factor=4, near=2.0, far=6.0, report_cost=False)
    kwargs.update(overrides)
    model = MobileR2LModelConfig(**kwargs).setup(scene_box=BLENDER_BOX, num_train_data=1)
    assert isinstance(model, MobileR2LModel)
    return model


def load_view(scene: Path, split: str, index: int) -> Tuple[Cameras, torch.Tensor]:
    """Camera ``[1]`` and RGB image (composited on white) of one view of a Blender-format scene."""
    cameras, images = blender_views(scene, split)
    return cameras[index : index + 1], images[index]


def score_test_views(model: MobileR2LModel, scene: Path) -> Dict[str, float]:
    """Mean PSNR / SSIM of ``model``'s renders (eval mode) of the scene's test views against their ground
    truth, computed here (tests.helpers.psnr, torchmetrics' SSIM), not by the model."""
    cameras, images = blender_views(scene, "test")
    scores = []
    model.eval()  # (nerfstudio's get_average_eval_image_metrics leaves the pipeline in training mode)
    with torch.no_grad():
        for i in range(len(images)):
            rgb = model.get_outputs_for_camera(cameras[i : i + 1])["rgb"].cpu()
            nchw = rgb.permute(2, 0, 1)[None], images[i].permute(2, 0, 1)[None]
            scores.append((psnr(rgb, images[i]), float(structural_similarity_index_measure(*nchw, data_range=1.0))))
    return {"psnr": float(np.mean([p for p, _ in scores])), "ssim": float(np.mean([q for _, q in scores]))}


# --------------------------------------------------------------------------- network size


def test_paper_preset_parameter_count_and_flops() -> None:
    model_config = copy.deepcopy(mobiler2l_config.pipeline.model)
    model = model_config.setup(scene_box=BLENDER_BOX, num_train_data=1)
    assert count_parameters(model.network) == PAPER_PARAMS
    # every trainable parameter is in the optimiser group, and nothing else
    assert sum(p.numel() for p in model.get_param_groups()["student"]) == PAPER_PARAMS
    assert model.embedder.out_channels == 312 == embedding_channels(8, 6)
    assert model.network.stage_factors == [2, 2, 2]
    assert model.network.sr_widths == (64, 64, 16)
    # exact analytic FLOPs at 800x800 (100x100 ray grid) agree with torch's FlopCounterMode (meta device)
    with torch.device("meta"):
        meta_net = MobileR2LNetwork().eval()
    flops = frame_flops(model.network, 100, 100)
    assert flops == measured_flops(meta_net, torch.empty(1, 312, 100, 100, device="meta"))
    per_lowres_pixel = 2 * (312 * 256 + 29 * 2 * 256 * 256)  # head + body
    sr = 2 * (256 * 64 * 16 * 1 + 2 * 2 * 64 * 64 * 4 + 64 * 64 * 16 * 4 + 2 * 2 * 64 * 64 * 16)
    sr += 2 * (64 * 16 * 16 * 16 + 2 * 2 * 16 * 16 * 64 + 16 * 3 * 64)
    assert flops == (per_lowres_pixel + sr) * 100 * 100
    summary = model.cost_summary(800, 800)
    assert "4,305,539 parameters" in summary and f"{flops / 1e9:.2f} GFLOPs per 800x800 frame" in summary


def test_small_preset_and_method_specs() -> None:
    assert mobiler2l_method.config is mobiler2l_config and mobiler2l_small_method.config is mobiler2l_small_config
    assert mobiler2l_config.method_name == "mobiler2l" and mobiler2l_small_config.method_name == "mobiler2l-small"
    paper = mobiler2l_config.pipeline.model
    assert (paper.depth, paper.width, paper.sr_factor, paper.num_points, paper.num_frequencies) == (29, 256, 8, 8, 6)
    assert (paper.near, paper.far, paper.background_color) == (2.0, 6.0, "white")
    assert mobiler2l_config.mixed_precision is True
    optimizer = mobiler2l_config.optimizers["student"]["optimizer"]
    assert optimizer._target is torch.optim.AdamW and optimizer.lr == 5e-4
    assert mobiler2l_config.optimizers["student"]["scheduler"].warmup_steps > 0
    expected_device = "cuda" if torch.cuda.is_available() else "cpu"
    assert mobiler2l_config.machine.device_type == expected_device == mobiler2l_small_config.machine.device_type
    small_config = mobiler2l_small_config.pipeline.model
    assert (small_config.embedder, small_config.num_points, small_config.batchnorm, small_config.output) == (
        "volume",
        24,
        False,
        "clip",
    )
    assert small_config.ray_box and small_config.occupancy_sampling
    assert set(mobiler2l_small_config.optimizers) == {"student", "grids"}
    assert (
        mobiler2l_small_config.optimizers["grids"]["optimizer"].lr
        > mobiler2l_small_config.optimizers["student"]["optimizer"].lr
    )
    small = small_config.setup(scene_box=BLENDER_BOX, num_train_data=1)
    assert count_parameters(small.network) == 136_195
    assert sum(p.numel() for p in small.embedder.parameters()) == 2_088_993  # 2 MB of fp16 grids, < 16 MB
    assert small.network.stage_factors == [2, 2]


@pytest.mark.parametrize(
    ("factor", "stages"), [(1, []), (2, [2]), (3, [3]), (4, [2, 2]), (8, [2, 2, 2]), (12, [2, 2, 3]), (18, [2, 3, 3])]
)
def test_sr_stage_decomposition(factor: int, stages) -> None:
    assert sr_stage_factors(factor) == stages
    net = MobileR2LNetwork(in_channels=5, width=8, depth=1, sr_factor=factor).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 5, 3, 2))
    assert out.shape == (1, 3, 3 * factor, 2 * factor)


# --------------------------------------------------------------------------- rendering


@pytest.mark.parametrize("factor", [8, 4, 12])
@pytest.mark.parametrize(("height", "width"), [(30, 53), (511, 287), (1, 1), (17, 9)])
def test_render_any_size(factor: int, height: int, width: int) -> None:
    torch.manual_seed(0)
    model = make_model(sr_factor=factor).eval()
    camera = look_at_camera(height, width)
    out = model.get_outputs_for_camera(camera)
    rgb = out["rgb"]
    assert rgb.shape == (height, width, 3)
    assert out["depth"].shape == (height, width, 1)
    assert torch.isfinite(rgb).all() and rgb.min() >= 0.0 and rgb.max() <= 1.0
    # the image is the top-left HxW of the padded (h*s) x (w*s) render with the same intrinsics
    h, w = -(-height // factor), -(-width // factor)
    padded = look_at_camera(h * factor, w * factor)
    padded.cx[:], padded.cy[:] = width / 2.0, height / 2.0
    full = model.get_outputs_for_camera(padded)["rgb"]
    assert full.shape == (h * factor, w * factor, 3)
    torch.testing.assert_close(rgb, full[:height, :width], rtol=0, atol=1e-6)


def test_lowres_rays_are_block_centres() -> None:
    """Low-res pixel (i, j) with intrinsics / s is the ray through the centre of its s x s block."""
    s, height, width = 4, 12, 20
    fx, fy, cx, cy = 30.0, 28.0, 9.5, 6.25
    full = lowres_pixel_directions(fx, fy, cx, cy, height, width)
    low = lowres_pixel_directions(fx / s, fy / s, cx / s, cy / s, height // s, width // s)
    assert full[0, 0].tolist() == pytest.approx([(0.5 - cx) / fx, -(0.5 - cy) / fy, -1.0])
    block_mean = full.reshape(height // s, s, width // s, s, 3).mean(dim=(1, 3))
    torch.testing.assert_close(low, block_mean, rtol=0, atol=1e-6)


def test_points_and_embedding_layout() -> None:
    R = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])  # 90 deg about z
    t = torch.tensor([1.0, 2.0, 3.0])
    dirs = lowres_pixel_directions(10.0, 10.0, 1.0, 1.0, 2, 2)
    depths = torch.tensor([2.0, 3.0])
    pts = points_from_pose(R, t, dirs, depths)
    assert pts.shape == (2, 2, 2, 3)
    d = dirs[1, 0]  # pixel (u=0, v=1): (-0.05, -0.05, -1)
    torch.testing.assert_close(pts[1, 0, 1], t + 3.0 * (R @ d))
    names = channel_names(8, 6)
    assert len(names) == 312 and names[:2] == ["p0.sin.x.f0", "p0.sin.x.f1"]
    assert names[18] == "p0.cos.x.f0" and names[36:39] == ["p0.raw.x", "p0.raw.y", "p0.raw.z"]
    assert names[39] == "p1.sin.x.f0" and names[-1] == "p7.raw.z"
    # the documented order and frequencies: sin(2^j x), cos(2^j x), raw
    embedder = PointEmbedder(num_points=8, num_frequencies=6)
    points = torch.rand(1, 1, 1, 8, 3) * 4 - 2
    encoded = embedder(points)[0, :, 0, 0]
    expected = []
    for k in range(8):
        p = points[0, 0, 0, k]
        expected += [math.sin(2**j * float(p[c])) for c in range(3) for j in range(6)]
        expected += [math.cos(2**j * float(p[c])) for c in range(3) for j in range(6)]
        expected += [float(p[c]) for c in range(3)]
    torch.testing.assert_close(encoded, torch.tensor(expected), rtol=0, atol=2e-5)


def test_ndc_rays_match_projection_and_ndc_model() -> None:
    ax, ay = 1.2, 1.6
    origins = torch.tensor([[0.1, -0.2, 0.5], [0.0, 0.3, 0.0]])
    directions = torch.tensor([[0.2, 0.1, -1.0], [-0.3, 0.05, -0.8]])
    o_ndc, d_ndc = ndc_rays(origins, directions, (ax, ay))
    for t in (2.0, 5.0, 40.0):
        p = origins + t * directions
        expected = torch.stack([-ax * p[:, 0] / p[:, 2], -ay * p[:, 1] / p[:, 2], 1 + 2 / p[:, 2]], dim=-1)
        t_ndc = 1.0 + 1.0 / p[:, 2]  # NDC depth of world depth z: 1 + n / z (n = 1)
        torch.testing.assert_close(o_ndc + t_ndc[:, None] * d_ndc, expected, rtol=1e-5, atol=1e-5)
    model = make_model(use_ndc=True, near=None, far=None).eval()
    camera = look_at_camera(20, 28, focal=24.0, eye=(0.1, 0.2, 3.0))
    out = model.get_outputs_for_camera(camera)
    assert out["rgb"].shape == (20, 28, 3)
    assert model.ndc_scale.tolist() == pytest.approx([2 * 24.0 / 28, 2 * 24.0 / 20])
    assert "ndc_scale" in model.state_dict()


def test_ndc_forward_facing_scene_trains(tmp_path: Path) -> None:
    """NDC sampling on the forward-facing scene (nerfstudio-data, LLFF frame: no re-orientation)."""
    scene = render_forward_facing_scene(tmp_path / "ff", 32, 24, 6, seed=0)
    dataparser = NerfstudioDataParserConfig(orientation_method="none", center_method="poses")
    datamanager = MobileR2LDataManagerConfig(dataparser=dataparser, data=scene).setup(device="cpu")
    camera, data = datamanager.next_train(0)
    config = copy.deepcopy(mobiler2l_small_config)
    config.pipeline.model.use_ndc = True
    config.pipeline.model.ray_box = config.pipeline.model.occupancy_sampling = False  # world-space box: not in NDC
    config.pipeline.model.report_cost = False
    torch.manual_seed(0)
    model = config.pipeline.model.setup(scene_box=datamanager.train_dataset.scene_box, num_train_data=5)
    captured = []
    model.embedder.register_forward_hook(lambda module, args, out: captured.append(args[0].detach()))
    model.eval()
    model.get_outputs_for_camera(camera)
    points = captured[-1]
    assert torch.isfinite(points).all() and points[..., :2].abs().max() < 2.0
    # every NDC ray starts at z' = -1 with dz' = 2: eval samples sit at z' = -1 + 2 (k + 0.5) / K
    k = config.pipeline.model.num_points
    expected_z = -1.0 + 2.0 * (torch.arange(k) + 0.5) / k
    torch.testing.assert_close(points[..., 2], expected_z.expand_as(points[..., 2]), rtol=0, atol=1e-5)
    assert model.ndc_scale.tolist() == pytest.approx([2 * float(camera.fx) / 32, 2 * float(camera.fy) / 24])
    optimizers = Optimizers(config.optimizers, model.get_param_groups())
    for step in range(100):
        model.train()
        loss = model.get_loss_dict(model(camera), data)["rgb_loss"]
        optimizers.zero_grad_all()
        loss.backward()
        optimizers.optimizer_step_all()
        optimizers.scheduler_step_all(step)
    model.eval()
    image = data["image"].float() / 255.0
    assert psnr(model.get_outputs_for_camera(camera)["rgb"], image) > 30.0


def test_eval_deterministic_and_train_jitters_depths() -> None:
    torch.manual_seed(0)
    model = make_model(num_points=8, near=2.0, far=6.0)
    camera = look_at_camera(16, 24)
    captured = []
    model.embedder.register_forward_hook(lambda module, args, out: captured.append(args[0].detach().clone()))

    def z_depths() -> torch.Tensor:
        """Camera-frame z-depth of the last captured sample points, [h, w, K]."""
        c2w = camera.camera_to_worlds[0]
        local = (captured[-1][0] - c2w[:, 3]) @ c2w[:, :3]
        return -local[..., 2]

    model.eval()
    first = model.get_outputs_for_camera(camera)["rgb"]
    eval_depths = z_depths()
    second = model.get_outputs_for_camera(camera)["rgb"]
    assert torch.equal(first, second)
    midpoints = 2.0 + 4.0 * (torch.arange(8) + 0.5) / 8
    torch.testing.assert_close(eval_depths, midpoints.expand_as(eval_depths), rtol=0, atol=1e-5)

    model.train()
    model(camera)
    jitter_a = z_depths()
    model(camera)
    jitter_b = z_depths()
    assert not torch.allclose(jitter_a, jitter_b)
    lower, upper = 2.0 + 4.0 * torch.arange(8) / 8, 2.0 + 4.0 * (torch.arange(8) + 1) / 8
    for depths in (jitter_a, jitter_b):
        assert (depths >= lower - 1e-5).all() and (depths <= upper + 1e-5).all()  # stratified: one per bin
        assert depths.std(dim=(0, 1)).min() > 0.05  # jitter differs between rays


def test_scene_box_near_far() -> None:
    model = make_model(near=None, far=None, num_points=4).eval()
    eye = (0.0, -4.0, 0.0)
    captured = []
    model.embedder.register_forward_hook(lambda module, args, out: captured.append(args[0]))
    model.get_outputs_for_camera(look_at_camera(8, 8, eye=eye))
    radius = math.sqrt(3 * 1.5**2)
    near, far = 4.0 - radius, 4.0 + radius
    ray = captured[-1][0, 0, 0]  # [K, 3] points of low-res pixel (0, 0); depths are z-depths, equal on all rays
    z = -((ray - torch.tensor(eye)) @ look_at_camera(8, 8, eye=eye).camera_to_worlds[0, :, :3])[:, 2]
    torch.testing.assert_close(z, near + (far - near) * (torch.arange(4) + 0.5) / 4, rtol=0, atol=1e-5)


# --------------------------------------------------------------------------- viewer


def test_viewer_render_path_with_depth_compositing() -> None:
    """Run nerfstudio's own viewer render code (RenderStateMachine) on the student."""
    from nerfstudio.utils.colormaps import ColormapOptions
    from nerfstudio.viewer.render_state_machine import RenderStateMachine
    from nerfstudio.viewer.utils import CameraState

    model = make_model(sr_factor=8, far=6.0)
    model.train()  # the viewer switches to eval for the render and back
    sent: Dict[str, np.ndarray] = {}
    aspect = 53 / 30
    panel = SimpleNamespace(
        crop_viewport=False,
        layer_depth=True,
        max_res=64,
        background_color=(255, 255, 255),
        output_render="rgb",
        split=False,
        colormap_options=ColormapOptions(),
        update_output_options=lambda keys: sent.setdefault("keys", sorted(keys)),
        time=0.0,
    )
    viewer = SimpleNamespace(
        control_panel=panel,
        render_tab_state=SimpleNamespace(preview_render=False),
        include_time=False,
        get_model=lambda: model,
        pipeline=SimpleNamespace(model=model),
        train_lock=None,
        step=0,
        update_colormap_options=lambda dimensions, dtype: None,
        config=SimpleNamespace(jpeg_quality=75, image_format="jpeg"),
        make_stats_markdown=lambda step, res: res,
        stats_markdown=SimpleNamespace(content=""),
    )

    def set_background_image(image, format, jpeg_quality, depth):  # noqa: A002
        sent["image"], sent["depth"] = image, depth

    client = SimpleNamespace(
        camera=SimpleNamespace(aspect=aspect), scene=SimpleNamespace(set_background_image=set_background_image)
    )
    machine = RenderStateMachine(viewer, viser_scale_ratio=0.1, client=client)  # type: ignore[arg-type]
    machine.state = "high"
    c2w = look_at_camera(1, 1).camera_to_worlds[0]
    state = CameraState(fov=0.8, aspect=aspect, c2w=c2w, camera_type=CameraType.PERSPECTIVE)
    outputs = machine._render_img(state)
    height, width = machine._calculate_image_res(aspect)
    assert outputs["rgb"].shape == (height, width, 3) and (height, width) == (36, 64)
    # depth compositing: nerfstudio turns our far-bound ray distance into a z-buffer equal to far
    torch.testing.assert_close(outputs["gl_z_buf_depth"], torch.full((height, width, 1), 6.0), rtol=0, atol=1e-4)
    assert model.training  # restored by the viewer
    machine._send_output_to_viewer(outputs)
    assert sent["keys"] == ["depth", "gl_z_buf_depth", "rgb"]
    assert sent["image"].dtype == np.uint8 and sent["image"].shape == (height, width, 3)
    np.testing.assert_allclose(sent["depth"], 0.6, atol=1e-4)
    expected = (outputs["rgb"] * 255).to(torch.uint8).numpy()
    np.testing.assert_array_equal(sent["image"], expected)


# --------------------------------------------------------------------------- losses / metrics


def test_loss_metrics_and_ground_truth_formats() -> None:
    model = make_model().eval()
    camera = look_at_camera(12, 16)
    out = model.get_outputs_for_camera(camera)
    pred = out["rgb"]
    gt = (pred + 0.1).clamp(0, 1)
    mse = float(((pred - gt) ** 2).mean())
    assert float(model.get_loss_dict(out, {"image": gt})["rgb_loss"]) == pytest.approx(mse, rel=1e-5)
    assert float(model.get_metrics_dict(out, {"image": gt})["psnr"]) == pytest.approx(-10 * math.log10(mse), rel=1e-4)
    metrics, images = model.get_image_metrics_and_images(out, {"image": gt})
    assert metrics["psnr"] == pytest.approx(-10 * math.log10(mse), rel=1e-4)
    ssim = structural_similarity_index_measure(pred.permute(2, 0, 1)[None], gt.permute(2, 0, 1)[None], data_range=1.0)
    assert metrics["ssim"] == pytest.approx(float(ssim), abs=1e-6) and metrics["ssim"] < 0.999
    assert images["img"].shape == (12, 32, 3)
    torch.testing.assert_close(images["img"][:, :16], gt)
    torch.testing.assert_close(images["img"][:, 16:], pred)
    # identical images: SSIM 1; RGBA uint8 targets are composited on the white background
    transparent = torch.zeros(12, 16, 4, dtype=torch.uint8)
    metrics, _ = model.get_image_metrics_and_images({"rgb": torch.ones(12, 16, 3)}, {"image": transparent})
    assert metrics["ssim"] == pytest.approx(1.0, abs=1e-4)
    # LPIPS / metric modules never enter the checkpoint
    assert all(
        k.startswith(("network.", "embedder.", "ndc_scale", "device_indicator", "sample_aabb", "occupancy"))
        for k in model.state_dict()
    )
    with pytest.raises(ValueError, match=r"target image \(10, 16, 3\) does not match the render \(12, 16, 3\)"):
        model.get_loss_dict(out, {"image": torch.zeros(10, 16, 3)})


# --------------------------------------------------------------------------- training


def test_small_preset_overfits_one_image(tmp_path: Path) -> None:
    """The mobiler2l-small network and optimiser reach > 30 dB on one 48x48 view in 400 steps."""
    torch.manual_seed(0)
    scene = render_blender_scene(tmp_path / "one", 48, 1, 1, 1, seed=3)
    camera, image = load_view(scene, "train", 0)
    config = copy.deepcopy(mobiler2l_small_config)
    model = config.pipeline.model.setup(scene_box=BLENDER_BOX, num_train_data=1)
    optimizers = Optimizers(config.optimizers, model.get_param_groups())
    model.eval()
    start = psnr(model.get_outputs_for_camera(camera)["rgb"], image)
    for step in range(400):
        model.train()
        loss = model.get_loss_dict(model(camera), {"image": image})["rgb_loss"]
        optimizers.zero_grad_all()
        loss.backward()
        optimizers.optimizer_step_all()
        optimizers.scheduler_step_all(step)
    model.eval()
    final = psnr(model.get_outputs_for_camera(camera)["rgb"], image)
    assert start < 15.0
    assert final > 30.0, f"PSNR after 400 steps: {final:.2f} dB"


def test_batchnorm_frozen_steps_train_the_network_evaluation_runs(tmp_path: Path) -> None:
    """The last batchnorm_frozen_steps steps (at most half the run) train with BatchNorm on its
    running statistics, left as they are: the network then computes in training what it computes in
    evaluation (and in the ONNX export)."""
    torch.manual_seed(0)
    scene = render_blender_scene(tmp_path / "one", 32, 1, 1, 1, seed=3)
    camera, image = load_view(scene, "train", 0)
    model = make_model(depth=2, batchnorm_frozen_steps=4)
    trainer = SimpleNamespace(_start_step=100, config=SimpleNamespace(max_num_iterations=10))
    attributes = TrainingCallbackAttributes(optimizers=None, grad_scaler=None, pipeline=None, trainer=trainer)
    callbacks = model.get_training_callbacks(attributes)
    norms = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    optimizer = torch.optim.Adam(model.get_param_groups()["student"], lr=1e-3)
    for step in range(100, 110):
        model.train()  # as the trainer does before every step
        for callback in callbacks:
            callback.run_callback_at_location(step, TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
        stats = [m.running_mean.clone() for m in norms]
        loss = model.get_loss_dict(model(camera), {"image": image})["rgb_loss"]
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        frozen = step >= 106
        assert all(m.training != frozen for m in norms), step
        assert all(torch.equal(a, m.running_mean) for a, m in zip(stats, norms)) == frozen, step
    features = torch.randn(1, model.embedder.out_channels, 8, 8)  # the network alone: no depth jitter
    with torch.no_grad():
        training_output = model.network(features)
        assert model.training
        model.eval()
        assert torch.allclose(training_output, model.network(features), atol=1e-6)
    short = make_model(depth=2, batchnorm_frozen_steps=50)  # capped at the second half of the run
    short.train()
    for callback in short.get_training_callbacks(attributes):
        callback.run_callback_at_location(104, TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
    assert all(m.training for m in short.modules() if isinstance(m, torch.nn.BatchNorm2d))
    for callback in short.get_training_callbacks(attributes):
        callback.run_callback_at_location(105, TrainingCallbackLocation.BEFORE_TRAIN_ITERATION)
    assert not any(m.training for m in short.modules() if isinstance(m, torch.nn.BatchNorm2d))


def test_datamanager_aligned_crops_and_batches(tiny_scene: Path) -> None:
    config = MobileR2LDataManagerConfig(
        dataparser=BlenderDataParserConfig(), data=tiny_scene, crop_size=(16, 24), crop_alignment=4
    )
    datamanager = config.setup(device="cpu")
    seen_offsets = set()
    for step in range(12):
        camera, data = datamanager.next_train(step)
        assert camera.shape == (1,) and int(camera.width) == 24 and int(camera.height) == 16
        idx = int(data["image_idx"])
        full = datamanager.train_dataset.cameras[idx]
        x0, y0 = float(full.cx - camera.cx), float(full.cy - camera.cy)
        assert x0 % 4 == 0 and y0 % 4 == 0 and 0 <= x0 <= 8 and 0 <= y0 <= 16
        seen_offsets.add((x0, y0))
        cached = datamanager.cached_train[idx]["image"]
        assert torch.equal(data["image"], cached[int(y0) : int(y0) + 16, int(x0) : int(x0) + 24])
    assert len(seen_offsets) > 1
    assert datamanager.get_train_rays_per_batch() == 16 * 24

    # a crop camera renders the matching region of the full image (away from the SR head's borders)
    model = make_model(sr_factor=4).eval()
    full_camera = look_at_camera(32, 32)
    crop = crop_camera(full_camera, 8, 4, 16, 20)
    full_render = model.get_outputs_for_camera(full_camera)["rgb"]
    crop_render = model.get_outputs_for_camera(crop)["rgb"]
    assert crop_render.shape == (20, 16, 3)
    m = 8  # two low-res pixels: the transposed convs see their neighbours
    torch.testing.assert_close(crop_render[m:-m, m:-m], full_render[4 + m : 24 - m, 8 + m : 24 - m], rtol=0, atol=1e-5)

    # several images per batch: cameras [B], images [B, H, W, C], outputs [B, H, W, 3]
    config = MobileR2LDataManagerConfig(dataparser=BlenderDataParserConfig(), data=tiny_scene, train_images_per_batch=3)
    datamanager = config.setup(device="cpu")
    camera, data = datamanager.next_train(0)
    assert camera.shape == (3,) and data["image"].shape == (3, 32, 32, 3) and data["image_idx"].shape == (3,)
    model.train()
    outputs = model(camera)
    assert outputs["rgb"].shape == (3, 32, 32, 3)
    mse = ((outputs["rgb"].detach() - data["image"].float() / 255.0) ** 2).mean()  # over all three views
    assert float(model.get_loss_dict(outputs, data)["rgb_loss"].detach()) == pytest.approx(float(mse), rel=1e-5)


def test_trained_checkpoint_reloads_with_eval_setup(
    tiny_scene: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A short nerfstudio Trainer run; eval_setup loads the checkpoint and renders identically."""
    from nerfstudio.utils import eval_utils

    monkeypatch.chdir(tmp_path)
    config = copy.deepcopy(mobiler2l_small_config)
    config.output_dir = Path("outputs")
    config.vis = "tensorboard"
    config.machine.device_type = "cpu"
    config.max_num_iterations = 60
    config.steps_per_eval_image = 30
    config.steps_per_save = 1000
    config.logging.local_writer.enable = False
    config.pipeline.datamanager.data = tiny_scene
    config.pipeline.datamanager.dataparser.data = tiny_scene
    config.set_timestamp()
    config.save_config()
    torch.manual_seed(0)
    trainer = config.setup(local_rank=0, world_size=1)
    trainer.setup()
    trainer.train()

    camera, image = load_view(tiny_scene, "test", 0)
    trained = trainer.pipeline.model.eval()
    expected = trained.get_outputs_for_camera(camera)["rgb"]
    fresh = config.pipeline.model.setup(scene_box=BLENDER_BOX, num_train_data=4).eval()
    assert psnr(expected, image) > psnr(fresh.get_outputs_for_camera(camera)["rgb"], image) + 3.0

    config_path = config.get_base_dir() / "config.yml"
    _, pipeline, checkpoint, step = eval_utils.eval_setup(config_path, test_mode="test")
    assert step == 59 and checkpoint.name == "step-000000059.ckpt"
    assert isinstance(pipeline.model, MobileR2LModel)
    assert not pipeline.model.training
    rendered = pipeline.model.get_outputs_for_camera(camera)["rgb"]
    torch.testing.assert_close(rendered, expected, rtol=0, atol=1e-6)
    # ns-eval's path: every test image through get_outputs_for_camera + get_image_metrics_and_images,
    # scored as this test scores the test views against their ground truth (nerfstudio caches the
    # composited images as uint8: a rounding apart)
    metrics = pipeline.get_average_eval_image_metrics()
    expected_metrics = score_test_views(pipeline.model, tiny_scene)
    assert metrics["psnr"] == pytest.approx(expected_metrics["psnr"], abs=0.01)
    assert metrics["ssim"] == pytest.approx(expected_metrics["ssim"], abs=1e-3)


def _method_env() -> Dict[str, str]:
    """Environment for ns-* subprocesses (one OpenMP thread: the suite may share the machine)."""
    return dict(os.environ, OMP_NUM_THREADS="1")


def test_ns_train_and_ns_eval_cli(tiny_scene: Path, tmp_path: Path) -> None:
    """``ns-train mobiler2l-small ... blender-data --data SCENE`` then ``ns-eval`` on its config."""
    bin_dir = Path(sys.executable).parent
    env = _method_env()
    train = subprocess.run(
        [
            str(bin_dir / "ns-train"), "mobiler2l-small", "--vis", "tensorboard", "--output-dir", str(tmp_path / "out"),
            "--max-num-iterations", "30", "--steps-per-eval-image", "1000", "--timestamp", "run",
            "--pipeline.model.sr-widths", "32", "16", "--pipeline.datamanager.crop-size", "16", "24",
            "blender-data", "--data", str(tiny_scene),
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert train.returncode == 0, train.stdout[-3000:] + train.stderr[-3000:]
    assert "MobileR2L student: 82,787 parameters + 2,088,993 in the volume embedder" in " ".join(train.stdout.split())
    run_dir = tmp_path / "out" / "unnamed" / "mobiler2l-small" / "run"
    assert (run_dir / "nerfstudio_models" / "step-000000029.ckpt").is_file()
    evaluate = subprocess.run(
        [
            str(bin_dir / "ns-eval"), "--load-config", str(run_dir / "config.yml"),
            "--output-path", str(tmp_path / "eval.json"),
        ],
        cwd=tmp_path, env=env, capture_output=True, text=True, timeout=240,
    )  # fmt: skip
    assert evaluate.returncode == 0, evaluate.stdout[-3000:] + evaluate.stderr[-3000:]
    results = json.loads((tmp_path / "eval.json").read_text())
    assert results["method_name"] == "mobiler2l-small"
    # ns-eval's numbers are the trained checkpoint's scores on the test views, and training helped
    pipeline, _, step = load_pipeline(run_dir / "config.yml", "cpu")
    assert step == 29
    expected = score_test_views(pipeline.model, tiny_scene)
    assert results["results"]["psnr"] == pytest.approx(expected["psnr"], abs=0.01)  # uint8-cached targets
    assert results["results"]["ssim"] == pytest.approx(expected["ssim"], abs=1e-3)
    torch.manual_seed(0)
    untrained = copy.deepcopy(pipeline.model.config).setup(scene_box=BLENDER_BOX, num_train_data=4).eval()
    assert expected["psnr"] > score_test_views(untrained, tiny_scene)["psnr"] + 1.0


# --------------------------------------------------------------------------- bad input


def test_bad_input_errors() -> None:
    model = make_model().eval()
    for height, width in [(0, 53), (30, 0)]:
        camera = look_at_camera(max(height, 1), max(width, 1))
        camera.height[:] = height
        camera.width[:] = width
        with pytest.raises(ValueError, match=rf"cannot render a {height}x{width} \(HxW\) image"):
            model.get_outputs_for_camera(camera)
    with pytest.raises(ValueError, match="unsupported super-resolution factor 5: it must be a product of 2s and 3s"):
        make_model(sr_factor=5)
    with pytest.raises(ValueError, match="unsupported super-resolution factor 10"):
        sr_stage_factors(10)
    with pytest.raises(ValueError, match="set both near and far"):
        make_model(near=2.0, far=None)
    with pytest.raises(ValueError, match="3 stages"):
        make_model(sr_factor=8, sr_widths=(64, 16))
    with pytest.raises(TypeError, match="renders whole images from Cameras"):
        model.get_outputs(torch.zeros(3))  # type: ignore[arg-type]
