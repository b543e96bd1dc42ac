"""Training batches for the MobileR2L student: whole images or random crops, as cameras.

Built on nerfstudio's :class:`FullImageDatamanager` (as splatfacto is). A batch is never a set of
random rays: it is one camera (or ``train_images_per_batch`` cameras of one size) with its image.
A random crop is the same camera with the principal point shifted by the crop offset
(``cx - x0``, ``cy - y0``) and the crop's width / height. Offsets are multiples of
``crop_alignment`` (set it to the model's super-resolution factor, or a multiple of it) so the
crop's low-res ray grid is a sub-grid of the full image's.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple, Type

import torch
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.data.datamanagers.full_images_datamanager import FullImageDatamanager, FullImageDatamanagerConfig
from nerfstudio.data.dataparsers.base_dataparser import DataparserOutputs
from nerfstudio.data.datasets.base_dataset import InputDataset
from torch import Tensor

from mobiler2l_ns.student.sampler import DATA_NEAR_FAR_KEY, points_near_far, scene_box_near_far
from mobiler2l_ns.utils.data_checks import check_datamanager_data, parser_kind
from mobiler2l_ns.utils.log import log_once

IMAGE_KEYS = ("image", "mask", "depth_image")
"""Per-pixel batch entries that are cropped with the camera (``[H, W, C]``)."""


@dataclass
class MobileR2LDataManagerConfig(FullImageDatamanagerConfig):
    """Full-image datamanager with optional aligned random crops and several images per batch."""

    _target: Type = field(default_factory=lambda: MobileR2LDataManager)
    cache_images_type: Literal["uint8", "float32"] = "uint8"
    """Images are cached as uint8 (4x less memory); the model converts them."""
    crop_size: Optional[Tuple[int, int]] = None
    """(height, width) of random training crops; None: whole images."""
    crop_alignment: int = 8
    """Crop offsets are multiples of this (the model's super-resolution factor or a multiple of it)."""
    crop_seed: int = 0
    """Seed of the crop-offset generator."""
    train_images_per_batch: int = 1
    """Cameras (all of one size) per training batch; the paper trains with 10."""


class MobileR2LDataManager(FullImageDatamanager[InputDataset]):
    """:class:`FullImageDatamanager` whose training batches may be aligned random crops."""

    config: MobileR2LDataManagerConfig

    def __init__(self, config: MobileR2LDataManagerConfig, *args, **kwargs):
        if config.crop_alignment < 1:
            raise ValueError(f"crop_alignment must be >= 1, got {config.crop_alignment}")
        if config.crop_size is not None and min(config.crop_size) < 1:
            raise ValueError(f"crop_size must be positive (height, width), got {config.crop_size}")
        if config.train_images_per_batch < 1:
            raise ValueError(f"train_images_per_batch must be >= 1, got {config.train_images_per_batch}")
        check_datamanager_data(config)
        skip_unconverted_points(config)
        super().__init__(config, *args, **kwargs)
        self.crop_rng = random.Random(config.crop_seed)
        # read by models with near_far_from_data (the pipeline hands the train dataset's metadata to the model)
        self.train_dataset.metadata[DATA_NEAR_FAR_KEY] = data_near_far(self.train_dataparser_outputs)

    def next_train(self, step: int) -> Tuple[Cameras, Dict]:
        """Next batch: ``train_images_per_batch`` cameras (cropped when ``crop_size``) and images."""
        views = []
        for _ in range(self.config.train_images_per_batch):
            camera, data = self.next_view(step)
            if self.config.crop_size is not None:
                camera, data = self.random_crop(camera, data)
            views.append((camera, data))
        if len(views) == 1:
            return views[0]
        return stack_views(views)

    def next_view(self, step: int) -> Tuple[Cameras, Dict]:
        """One whole training view (camera, data): a real image here; subclasses add other sources."""
        return super().next_train(step)

    def random_crop(self, camera: Cameras, data: Dict) -> Tuple[Cameras, Dict]:
        """An aligned random crop of one view (the crop is clamped to the image size)."""
        assert self.config.crop_size is not None
        height, width = int(camera.height.reshape(-1)[0]), int(camera.width.reshape(-1)[0])
        crop_h, crop_w = min(self.config.crop_size[0], height), min(self.config.crop_size[1], width)
        a = self.config.crop_alignment
        y0 = a * self.crop_rng.randint(0, (height - crop_h) // a)
        x0 = a * self.crop_rng.randint(0, (width - crop_w) // a)
        return crop_camera(camera, x0, y0, crop_w, crop_h), crop_data(data, x0, y0, crop_w, crop_h)

    def get_train_rays_per_batch(self) -> int:
        """Pixels per training batch (for nerfstudio's rays/s statistics)."""
        pixels = super().get_train_rays_per_batch()
        if self.config.crop_size is not None:
            pixels = min(pixels, self.config.crop_size[0] * self.config.crop_size[1])
        return pixels * self.config.train_images_per_batch


def skip_unconverted_points(config: MobileR2LDataManagerConfig) -> None:
    """Turn off ``load_3D_points`` when nerfstudio would stop to ask whether to convert COLMAP points
    (a capture from an old ns-process-data without ``ply_file_path``): near / far then come from the
    scene box."""
    if parser_kind(config.dataparser) != "nerfstudio" or not getattr(config.dataparser, "load_3D_points", False):
        return
    data = Path(config.data if config.data is not None else config.dataparser.data)
    transforms = data if data.suffix == ".json" else data / "transforms.json"
    try:
        has_ply = "ply_file_path" in json.loads(transforms.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return
    if not has_ply:
        config.dataparser.load_3D_points = False
        log_once(f"{transforms}: no ply_file_path (sparse points); near / far will come from the scene box")


def data_near_far(outputs: DataparserOutputs) -> Tuple[float, float, str]:
    """One ``(near, far, source)`` z-depth range for all training cameras, from the data.

    From the sparse points (``points3D_xyz``, loaded by nerfstudio-data's ``load_3D_points``): the
    smallest 1st-percentile depth of the points a camera sees times 0.9 and the largest 99th-percentile
    depth times 1.1 (LLFF's bounds). Without points: the range of the per-camera scene-box bounds.
    """
    cameras = outputs.cameras.reshape((-1,))
    c2w = cameras.camera_to_worlds.float()
    points = outputs.metadata.get("points3D_xyz")
    if isinstance(points, Tensor) and points.shape[0] >= 8:
        columns = [cameras.fx, cameras.fy, cameras.cx, cameras.cy, cameras.width, cameras.height]
        intrinsics = torch.cat([c.reshape(-1, 1).float() for c in columns], dim=1)
        near, far = points_near_far(c2w, intrinsics, points.float())
        seen = torch.isfinite(near)
        if bool(seen.any()):
            source = f"{points.shape[0]} sparse points, seen by {int(seen.sum())} of {c2w.shape[0]} cameras"
            return 0.9 * float(near[seen].min()), 1.1 * float(far[seen].max()), source
    near, far = scene_box_near_far(c2w[:, :, 3], outputs.scene_box.aabb, min_near=0.0)
    return float(near.min()), float(far.max()), "scene box"


def crop_camera(camera: Cameras, x0: int, y0: int, width: int, height: int) -> Cameras:
    """The camera of the ``width x height`` crop at ``(x0, y0)``: principal point ``(cx - x0, cy - y0)``.

    ``camera`` may hold any number of cameras; all get the same crop.
    """
    if x0 < 0 or y0 < 0 or width < 1 or height < 1:
        raise ValueError(f"invalid crop: offset ({x0}, {y0}), size {width}x{height}")
    if bool((camera.width < x0 + width).any()) or bool((camera.height < y0 + height).any()):
        raise ValueError(f"crop at ({x0}, {y0}) of size {width}x{height} exceeds the image")
    return Cameras(
        camera_to_worlds=camera.camera_to_worlds,
        fx=camera.fx,
        fy=camera.fy,
        cx=camera.cx - x0,
        cy=camera.cy - y0,
        width=torch.full_like(camera.width, width),
        height=torch.full_like(camera.height, height),
        distortion_params=camera.distortion_params,
        camera_type=camera.camera_type,
        times=camera.times,
        metadata=dict(camera.metadata) if camera.metadata is not None else None,
    )


def crop_data(data: Dict, x0: int, y0: int, width: int, height: int) -> Dict:
    """Copy of a batch dict with its per-pixel entries (:data:`IMAGE_KEYS`) cropped."""
    out = dict(data)
    for key in IMAGE_KEYS:
        if key in out:
            out[key] = out[key][y0 : y0 + height, x0 : x0 + width]
    return out


def stack_views(views: List[Tuple[Cameras, Dict]]) -> Tuple[Cameras, Dict]:
    """One batch from several single-camera views of one size: cameras ``[B]``, images ``[B, H, W, C]``."""
    cameras = [camera.reshape((-1,)) for camera, _ in views]
    sizes = {(int(c.height[0]), int(c.width[0])) for c in cameras}
    if len(sizes) != 1:
        raise ValueError(f"cannot batch views of different sizes {sorted(sizes)}")

    def cat(name: str) -> Optional[Tensor]:
        values = [getattr(c, name) for c in cameras]
        return None if any(v is None for v in values) else torch.cat(values, dim=0)

    camera = Cameras(
        camera_to_worlds=cat("camera_to_worlds"),  # type: ignore[arg-type]
        fx=cat("fx"),  # type: ignore[arg-type]
        fy=cat("fy"),  # type: ignore[arg-type]
        cx=cat("cx"),  # type: ignore[arg-type]
        cy=cat("cy"),  # type: ignore[arg-type]
        width=cat("width"),
        height=cat("height"),
        distortion_params=cat("distortion_params"),
        camera_type=cat("camera_type"),  # type: ignore[arg-type]
        times=cat("times"),
    )
    data: Dict[str, Tensor] = {}
    for key in views[0][1]:
        values = [d[key] for _, d in views]
        if all(isinstance(v, Tensor) for v in values):
            data[key] = torch.stack(values, dim=0)  # e.g. image [B, H, W, C]
        elif all(isinstance(v, int) for v in values):
            data[key] = torch.tensor(values)  # e.g. image_idx [B]
    return camera, data
