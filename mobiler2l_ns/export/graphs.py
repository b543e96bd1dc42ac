"""The three exported graphs as torch modules, built from a trained :class:`MobileR2LModel`.

They call the same functions as :meth:`MobileR2LModel.render` (``student/sampler.py``,
``student/embedder.py``, ``student/network.py``) with every camera constant baked in, so the ONNX
chain ``sampler -> embedder -> model`` computes what ``get_outputs_for_camera`` computes for a
camera with the exported intrinsics (eval mode: bin-midpoint depths, no jitter).

Tensors, batch-free, float32, row-major (C order):

========  =====================================  ===========================================
graph     inputs                                 output
========  =====================================  ===========================================
sampler   ``rotation [3, 3]``, ``translation``   ``points [h, w, K, 3]``: sample k of the ray
          ``[3]`` (camera-to-world, OpenGL)      of low-res pixel (row i, col j), x y z
embedder  ``points [h, w, K, 3]``                ``encoding [1, C, h, w]`` (NCHW, C = K*3*(2F+1),
                                                 channel order of ``student/embedder.py``)
model     ``encoding [1, C, h, w]``              ``image [1, 3, H, W]`` (NCHW, RGB in [0, 1])
========  =====================================  ===========================================

:func:`sampling_settings` reads the sampling mode and its constants off a model (they go into
``metadata.json`` too); :func:`build_graphs` makes the sampler and embedder modules from them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Dict, Literal, Optional, Tuple

import torch
from torch import Tensor, nn

from mobiler2l_ns.student.network import MobileR2LNetwork, fold_batchnorm
from mobiler2l_ns.student.sampler import (
    depths_between,
    lowres_grid_size,
    lowres_pixel_directions,
    ndc_points_from_pose,
    occupied_near_far,
    points_from_pose,
    ray_box_near_far,
    sample_fractions,
    scene_box_near_far,
)

SamplingMode = Literal["fixed", "scene_box", "ndc", "ray_box", "occupancy"]


@dataclass(frozen=True)
class ExportCamera:
    """Pinhole intrinsics of the exported image (pixels; OpenGL camera, see ``student/sampler.py``)."""

    height: int
    width: int
    fx: float
    fy: float
    cx: float
    cy: float

    def resized(self, height: Optional[int], width: Optional[int]) -> "ExportCamera":
        """The same field of view at another resolution (a missing side keeps the aspect ratio).

        Focal lengths and principal point scale with their axis: ``fx, cx`` by ``W' / W`` and
        ``fy, cy`` by ``H' / H``.
        """
        if height is None and width is None:
            return self
        if height is None:
            assert width is not None
            height = max(1, round(self.height * width / self.width))
        if width is None:
            width = max(1, round(self.width * height / self.height))
        sx, sy = width / self.width, height / self.height
        return ExportCamera(height, width, self.fx * sx, self.fy * sy, self.cx * sx, self.cy * sy)


class SamplerGraph(nn.Module):
    """``(rotation [3, 3], translation [3]) -> points [h, w, K, 3]`` with the ray grid baked in.

    Modes: ``fixed`` (config near / far z-depths), ``scene_box`` (per-camera near / far from the
    scene box, computed in the graph from the camera centre), ``ndc`` (NeRF/LLFF NDC points),
    ``ray_box`` (per-ray near / far where the ray crosses the sampling box), ``occupancy`` (per ray,
    around the occupied cells of a baked occupancy grid along its chord through the box).
    """

    def __init__(
        self,
        camera: ExportCamera,
        sr_factor: int,
        num_points: int,
        mode: SamplingMode,
        near: Optional[float] = None,
        far: Optional[float] = None,
        aabb: Optional[Tensor] = None,
        min_near: float = 0.05,
        ndc_scale: Optional[Tuple[float, float]] = None,
        ndc_near_plane: float = 1.0,
        occupancy: Optional[Tensor] = None,
        occupancy_aabb: Optional[Tensor] = None,
        occupancy_steps: int = 64,
    ):
        super().__init__()
        s = sr_factor
        self.h, self.w = lowres_grid_size(camera.height, camera.width, s)
        self.mode = mode
        dirs = lowres_pixel_directions(camera.fx / s, camera.fy / s, camera.cx / s, camera.cy / s, self.h, self.w)
        self.register_buffer("dirs", dirs.float().contiguous())  # [h, w, 3]
        self.register_buffer("fractions", sample_fractions(num_points, (), jitter=False).contiguous())  # [K]
        if mode == "fixed":
            assert near is not None and far is not None
            self.register_buffer("near", torch.tensor(float(near)))
            self.register_buffer("far", torch.tensor(float(far)))
        elif mode == "scene_box":
            assert aabb is not None
            self.register_buffer("aabb", aabb.detach().float().cpu().clone())
            self.min_near = float(min_near)
        elif mode in ("ray_box", "occupancy"):
            assert aabb is not None
            self.register_buffer("aabb", aabb.detach().float().cpu().clone())
            self.min_near = float(min_near)
            if mode == "occupancy":
                assert occupancy is not None and occupancy_aabb is not None
                self.register_buffer("occupancy", occupancy.detach().float().cpu().clone())
                self.register_buffer("occupancy_aabb", occupancy_aabb.detach().float().cpu().clone())
                self.occupancy_steps = int(occupancy_steps)
        elif mode == "ndc":
            assert ndc_scale is not None
            self.ndc_scale = (float(ndc_scale[0]), float(ndc_scale[1]))
            self.ndc_near_plane = float(ndc_near_plane)
        else:
            raise ValueError(f"unknown sampling mode {mode!r}")

    def forward(self, rotation: Tensor, translation: Tensor) -> Tensor:
        """World (or NDC) points of the K eval samples of every low-res ray."""
        if self.mode == "ndc":
            return ndc_points_from_pose(
                rotation, translation, self.dirs, self.fractions, self.ndc_scale, self.ndc_near_plane
            )
        if self.mode == "ray_box":
            near, far = ray_box_near_far(rotation, translation, self.dirs, self.aabb, self.min_near)
            return points_from_pose(
                rotation, translation, self.dirs, near[..., None] + (far - near)[..., None] * self.fractions
            )
        if self.mode == "occupancy":
            near, far = occupied_near_far(
                rotation, translation, self.dirs, self.aabb, self.occupancy, self.occupancy_aabb,
                self.occupancy_steps, self.min_near,
            )  # fmt: skip
            return points_from_pose(
                rotation, translation, self.dirs, near[..., None] + (far - near)[..., None] * self.fractions
            )
        if self.mode == "fixed":
            near, far = self.near, self.far
        else:
            near, far = scene_box_near_far(translation, self.aabb, self.min_near)
        depths = depths_between(near, far, self.fractions)  # [1, 1, K]
        return points_from_pose(rotation, translation, self.dirs, depths)


class EmbedderGraph(nn.Module):
    """``points [h, w, K, 3] -> encoding [1, C, h, w]``: the student's embedder with a batch of one."""

    def __init__(self, embedder: nn.Module):
        super().__init__()
        self.embedder = copy.deepcopy(embedder).eval()

    def forward(self, points: Tensor) -> Tensor:
        """The embedder's features, NCHW."""
        return self.embedder(points)


class ModelGraph(nn.Module):
    """``encoding [1, C, h, w] -> image [1, 3, H, W]``: the BN-folded network, cropped to ``H x W``.

    ``half``: weights and arithmetic in float16, inputs / outputs still float32 (Cast at both ends).
    ``relu_for_gelu``: GELUs replaced by ReLUs (placeholders that the Snap target renames to
    ``GeluSnap``; this module then computes a different function and is never run).
    """

    def __init__(
        self, network: MobileR2LNetwork, height: int, width: int, half: bool = False, relu_for_gelu: bool = False
    ):
        super().__init__()
        folded = fold_batchnorm(network)
        if relu_for_gelu:
            replace_gelu(folded, nn.ReLU)
        self.half_precision = half
        self.network = folded.half() if half else folded
        self.height, self.width = height, width

    def forward(self, encoding: Tensor) -> Tensor:
        """Image in [0, 1], the top-left ``H x W`` of the ``h*s x w*s`` network output."""
        x = encoding.half() if self.half_precision else encoding
        image = self.network(x)[:, :, : self.height, : self.width]
        return image.float() if self.half_precision else image


def replace_gelu(module: nn.Module, factory) -> int:
    """Replace every ``nn.GELU`` below ``module`` by ``factory()`` in place; returns how many."""
    count = 0
    for name, child in list(module.named_children()):
        if isinstance(child, nn.GELU):
            setattr(module, name, factory())
            count += 1
        else:
            count += replace_gelu(child, factory)
    return count


def count_gelu(module: nn.Module) -> int:
    """Number of ``nn.GELU`` modules below ``module``."""
    return sum(isinstance(m, nn.GELU) for m in module.modules())


def sampling_settings(model: Any, camera: ExportCamera) -> Dict[str, Any]:
    """Sampling mode and its constants (JSON values), exactly as :meth:`MobileR2LModel.render` uses them."""
    cfg = model.config
    if cfg.use_ndc:
        # the model fixes its NDC frustum from the first camera it renders when the checkpoint has none
        fx, fy = torch.tensor(camera.fx), torch.tensor(camera.fy)
        ax, ay = model.ndc_frustum_scale(fx, fy, camera.width, camera.height)
        return {"mode": "ndc", "ndc_scale": [ax, ay], "ndc_near_plane": float(cfg.ndc_near_plane)}
    if cfg.ray_box:
        box = {"aabb": model.sample_aabb.detach().float().cpu().tolist(), "min_near": float(cfg.min_near)}
        if model.uses_occupancy():
            return {"mode": "occupancy", **box, "occupancy_shape": list(model.occupancy.shape),
                    "occupancy_aabb": model.occupancy_aabb.detach().float().cpu().tolist(),
                    "occupancy_steps": int(cfg.occupancy_steps)}  # fmt: skip
        return {"mode": "ray_box", **box}
    fixed = model.fixed_near_far()  # config values, or derived from the data (near_far_from_data)
    if fixed is not None:
        return {"mode": "fixed", "near": float(fixed[0]), "far": float(fixed[1])}
    aabb = model.scene_box.aabb.detach().float().cpu()
    return {"mode": "scene_box", "aabb": aabb.tolist(), "min_near": float(cfg.min_near)}


def build_graphs(model: Any, camera: ExportCamera, sampling: Dict[str, Any]) -> Tuple[SamplerGraph, EmbedderGraph]:
    """Sampler and embedder modules (eval) of ``model`` for ``camera`` with :func:`sampling_settings`."""
    cfg = model.config
    mode: SamplingMode = sampling["mode"]
    occupancy = mode == "occupancy"
    sampler = SamplerGraph(
        camera,
        cfg.sr_factor,
        cfg.num_points,
        mode,
        near=sampling.get("near"),
        far=sampling.get("far"),
        aabb=torch.tensor(sampling["aabb"]) if "aabb" in sampling else None,
        min_near=sampling.get("min_near", cfg.min_near),
        ndc_scale=tuple(sampling["ndc_scale"]) if "ndc_scale" in sampling else None,
        ndc_near_plane=sampling.get("ndc_near_plane", 1.0),
        occupancy=model.occupancy if occupancy else None,
        occupancy_aabb=model.occupancy_aabb if occupancy else None,
        occupancy_steps=sampling.get("occupancy_steps", 64),
    ).eval()
    return sampler, EmbedderGraph(model.embedder).eval()
