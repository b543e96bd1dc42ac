"""MobileR2L student as a nerfstudio model: one forward pass renders a whole image from a camera.

``get_outputs(camera)`` takes nerfstudio :class:`~nerfstudio.cameras.cameras.Cameras` (as
splatfacto's does), never rays: it casts the low-res ray grid of each camera (intrinsics / s),
samples K points per ray (:mod:`.sampler`), embeds them (:mod:`.embedders`), runs the network
(:mod:`.network`) and crops the ``h*s x w*s`` result to the requested ``H x W``. Any resolution and
aspect ratio works, so the viewer and ``ns-eval`` render through
:meth:`MobileR2LModel.get_outputs_for_camera`.

Where the samples may lie (sampling box, the teacher's occupancy grid, near / far from the data)
is decided when the model is built (:mod:`.bounds`) and saved as buffers.

The model does not care where its targets come from: it reads ``batch["image"]`` (``[H, W, 3|4]``
or ``[B, H, W, 3|4]``, uint8 or float) and optionally ``batch["mask"]`` (:mod:`.targets`), whatever
datamanager (real images, random crops, teacher-rendered pseudo views) produced them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Tuple, Type

import torch
from jaxtyping import Float
from nerfstudio.cameras.cameras import Cameras, CameraType
from nerfstudio.configs.config_utils import to_immutable_dict
from nerfstudio.data.scene_box import OrientedBox
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.utils.rich_utils import CONSOLE
from torch import Tensor, nn
from torch.nn import Parameter
from torchmetrics.functional import peak_signal_noise_ratio

from mobiler2l_ns.student.bounds import (
    check_sampling_config,
    fixed_near_far,
    metadata_near_far,
    occupancy_grid,
    sampling_box,
)
from mobiler2l_ns.student.embedder import R2L_MIN_FREQ_EXP
from mobiler2l_ns.student.embedders import EmbedderKind, build_embedder, embedder_flops, embedder_parameters
from mobiler2l_ns.student.network import MobileR2LNetwork, count_parameters, frame_flops
from mobiler2l_ns.student.sampler import (
    depths_between,
    lowres_grid_size,
    lowres_pixel_directions,
    ndc_depth_to_camera_depth,
    ndc_points_from_pose,
    occupied_near_far,
    points_from_pose,
    ray_box_near_far,
    sample_fractions,
    scene_box_near_far,
)
from mobiler2l_ns.student.targets import ground_truth, masked_mse
from mobiler2l_ns.utils.log import log_once
from mobiler2l_ns.utils.metrics import ImageMetrics
from mobiler2l_ns.utils.steps import run_steps


@dataclass
class MobileR2LModelConfig(ModelConfig):
    """MobileR2L student (defaults: the paper's network, near/far from the scene box)."""

    _target: Type = field(default_factory=lambda: MobileR2LModel)
    enable_collider: bool = False
    """Unused: the student takes cameras, not rays (kept False)."""
    collider_params: Optional[Dict[str, float]] = None
    """Unused (no collider)."""
    loss_coefficients: Dict[str, float] = to_immutable_dict({"rgb_loss": 1.0})
    """Weight of each loss term."""
    num_points: int = 8
    """K, points sampled per ray."""
    embedder: EmbedderKind = "pe"
    """Input features of the K points: ``pe`` the paper's positional encoding; ``planes`` learned
    multi-resolution k-planes looked up at every point; ``slab`` learned light-slab grids of each ray
    (LightSpeed); ``volume`` k-planes composited along each ray. See student/embedders.py."""
    num_frequencies: int = 6
    """Positional-encoding frequencies per coordinate (plus the raw value); ``pe`` embedder."""
    grid_levels: int = 4
    """Learned embedders: resolution levels of the feature grids."""
    grid_features: int = 8
    """Learned embedders: features per grid (per level)."""
    grid_min_resolution: int = 32
    """Learned embedders: resolution of the coarsest level."""
    grid_max_resolution: int = 256
    """Learned embedders: resolution of the finest level."""
    grid_contraction: bool = False
    """``planes`` / ``volume``: contract points outside the scene box (unbounded captures) instead of zero features."""
    planes_combine: Literal["product", "sum"] = "product"
    """``planes``: how the xy, xz, yz features of a point are combined."""
    planes_pe_frequencies: int = 0
    """``planes``: frequencies of a positional encoding appended to the features (0: none)."""
    slab_axes: Tuple[str, ...] = ("x", "y", "z")
    """``slab``: slab axes; 360 scenes use all three (blended by direction), forward-facing ``z``."""
    slab_extent: float = 2.0
    """``slab``: slab coordinates (in scene-box halves) beyond this get zero features."""
    min_freq_exp: float = R2L_MIN_FREQ_EXP
    """Lowest frequency exponent in NeRFEncoding's convention; the default gives R2L's sin(2^j x)."""
    depth: int = 29
    """Residual blocks in the body."""
    width: int = 256
    """Channels of head and body."""
    sr_factor: int = 8
    """Super-resolution factor s (product of 2s and 3s): rays are cast on an (H/s) x (W/s) grid."""
    sr_widths: Optional[Tuple[int, ...]] = None
    """Channels of each SR stage (one per factor of s); None: 64, ..., 64, 16."""
    sr_blocks: int = 2
    """Residual blocks after each transposed conv."""
    batchnorm: bool = True
    """BatchNorm in the residual blocks (the paper); False: none, blocks initialised to the identity
    (what trains is then exactly what evaluation and the export run)."""
    output: Literal["sigmoid", "clip"] = "sigmoid"
    """Output activation: the paper's sigmoid, or ``clip`` (linear, clipped to [0, 1], the gradient passed
    straight through in training), which a network without BatchNorm needs on white backgrounds."""
    near: Optional[float] = None
    """Near z-depth of the samples; None (with far None): per camera from the scene box."""
    far: Optional[float] = None
    """Far z-depth of the samples; None (with near None): per camera from the scene box."""
    min_near: float = 0.05
    """Smallest near bound derived from the scene box or the data."""
    ray_box: bool = False
    """Sample the K points of each ray between where it enters and leaves the sampling box (a ray-box
    intersection in the sampler) instead of one near / far per camera: every point lands in the box,
    where the learned grids are. Not with NDC."""
    occupancy_sampling: bool = False
    """With ``ray_box``: place each ray's K points between the first and the last cell that the teacher's
    occupancy grid marks occupied along it (``occupancy_steps`` lookups per ray in the sampler), so they
    gather where the scene is. The grid comes from the datamanager's teacher and is saved with the
    model (and baked into sampler.onnx); without one, plain ``ray_box`` sampling."""
    occupancy_steps: int = 64
    """Lookups per ray of ``occupancy_sampling``."""
    sample_box: Optional[Tuple[float, float, float, float, float, float]] = None
    """The sampling box (min x y z, max x y z) of ``ray_box`` and of the learned grids; None: the
    teacher's occupied box when the datamanager has a teacher (metadata), else the scene box."""
    near_far_from_data: bool = False
    """One near / far for all cameras, derived from the training data when the model is built (the
    z-depths of the COLMAP sparse points the cameras see, else the scene box; see
    ``student.datamanager.data_near_far``) and saved in the checkpoint. Needs near = far = None."""
    use_ndc: bool = False
    """Sample in NeRF/LLFF NDC space (forward-facing scenes, LLFF world frame; see sampler.ndc_rays)."""
    ndc_scale: Optional[Tuple[float, float]] = None
    """NDC (2 fx / W, 2 fy / H); None: taken from the first camera rendered and saved with the model."""
    ndc_near_plane: float = 1.0
    """World near plane of the NDC frustum (z = -near)."""
    background_color: Literal["white", "black"] = "white"
    """Colour that RGBA ground-truth images are composited on (no-op for RGB targets)."""
    report_cost: bool = True
    """Print parameter count and GFLOPs per frame at the first training step."""
    batchnorm_frozen_steps: int = 0
    """The last N training steps run BatchNorm on its running statistics, without updating them, while
    the weights go on training. A batch of one image is normalised by that image's own statistics in
    training, but by the running statistics in evaluation, the viewer and the ONNX export (BatchNorm
    folded into the convs); these steps train the network that those actually run. At most the second
    half of a run (the running statistics need the first); 0: never."""


class MobileR2LModel(Model):
    """MobileR2L light field student; see the module docstring."""

    config: MobileR2LModelConfig

    def populate_modules(self) -> None:
        """Build embedder and network; validate near / far; take the sampling box, the teacher's
        occupancy grid and the data's near / far from the datamanager's metadata (:mod:`.bounds`)."""
        super().populate_modules()
        cfg = self.config
        check_sampling_config(cfg)
        metadata = self.kwargs.get("metadata")
        if cfg.near_far_from_data:
            self.register_buffer("data_near_far", metadata_near_far(metadata, cfg.min_near))
        self.register_buffer("sample_aabb", sampling_box(cfg, metadata, self.scene_box.aabb))
        occupancy, grid_box = occupancy_grid(cfg, metadata, self.sample_aabb)
        self.register_buffer("occupancy", occupancy)
        self.register_buffer("occupancy_aabb", grid_box)
        self.embedder = build_embedder(cfg, self.sample_aabb)
        self.network = MobileR2LNetwork(
            in_channels=self.embedder.out_channels,
            width=cfg.width,
            depth=cfg.depth,
            sr_factor=cfg.sr_factor,
            sr_widths=cfg.sr_widths,
            sr_blocks=cfg.sr_blocks,
            batchnorm=cfg.batchnorm,
            output=cfg.output,
        )
        ndc_scale = torch.tensor(cfg.ndc_scale if cfg.ndc_scale is not None else (float("nan"),) * 2)
        self.register_buffer("ndc_scale", ndc_scale.float())
        # Held outside the module tree: LPIPS weights (present only on some machines) must never
        # enter state_dict, or checkpoints would load only where the same weights exist.
        self._metrics: List[ImageMetrics] = []
        self._cost_reported = False

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: D401 (torch hook)
        """A checkpoint's occupancy grid replaces the placeholder whatever its size."""
        key = prefix + "occupancy"
        if key in state_dict and state_dict[key].shape != self.occupancy.shape:
            self._buffers["occupancy"] = torch.zeros_like(state_dict[key], device=self.occupancy.device)
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    # ------------------------------------------------------------------ nerfstudio API

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> List[TrainingCallback]:
        """Freezes BatchNorm for the last ``batchnorm_frozen_steps`` steps of the trainer's run."""
        callbacks = super().get_training_callbacks(training_callback_attributes)
        trainer = training_callback_attributes.trainer
        if self.config.batchnorm_frozen_steps > 0 and trainer is not None:
            steps = run_steps(trainer)
            start = steps.start + max(len(steps) - self.config.batchnorm_frozen_steps, len(steps) // 2)
            callbacks.append(
                TrainingCallback(
                    where_to_run=[TrainingCallbackLocation.BEFORE_TRAIN_ITERATION],
                    update_every_num_iters=1,
                    func=lambda step: self.freeze_batchnorm(step >= start),
                )
            )
        return callbacks

    def freeze_batchnorm(self, frozen: bool = True) -> None:
        """BatchNorm layers on their running statistics (not updated) while frozen, else per batch.

        Runs before every training step (after the trainer's ``pipeline.train()``)."""
        if not self.training:
            return
        for module in self.network.modules():
            if isinstance(module, nn.modules.batchnorm._BatchNorm):
                module.train(not frozen)

    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        """``"student"``: the network's parameters; ``"grids"``: a learned embedder's feature grids."""
        groups = {"student": list(self.network.parameters())}
        grids = list(self.embedder.parameters())
        if grids:
            groups["grids"] = grids
        return groups

    def get_outputs(self, camera: Cameras) -> Dict[str, Tensor]:  # type: ignore[override]
        """Render every camera of ``camera`` (all of one size ``H x W``).

        Returns ``rgb`` ``[H, W, 3]`` in [0, 1] and ``depth`` ``[H, W, 1]``, with a leading batch
        dim ``B`` when more than one camera is given. A light field has no geometry: ``depth`` is
        the ray distance of the far bound (in NDC mode: of the farthest eval sample), so that the
        viewer's depth compositing draws scene widgets in front of the image.
        """
        if not isinstance(camera, Cameras):
            raise TypeError(
                "MobileR2LModel renders whole images from Cameras (use a full-image datamanager), "
                f"got {type(camera).__name__}"
            )
        rgb, depth = self.render(camera)
        if rgb.shape[0] == 1:
            rgb, depth = rgb[0], depth[0]
        return {"rgb": rgb, "depth": depth}

    @torch.no_grad()
    def get_outputs_for_camera(self, camera: Cameras, obb_box: Optional[OrientedBox] = None) -> Dict[str, Tensor]:
        """Render a camera in one pass (viewer, ns-eval, ns-render). ``obb_box`` is ignored:
        a light field cannot crop by a 3D box."""
        return self.get_outputs(camera.to(self.device))

    def get_metrics_dict(self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]) -> Dict[str, Tensor]:
        """Training PSNR of the rendered image(s) against the target(s)."""
        pred = outputs["rgb"].detach().float()
        gt = ground_truth(batch["image"], pred, self.config.background_color)
        return {"psnr": peak_signal_noise_ratio(pred, gt, data_range=1.0)}

    def get_loss_dict(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor], metrics_dict=None
    ) -> Dict[str, Tensor]:
        """MSE between rendered and target colours (masked pixels excluded when ``batch["mask"]``)."""
        pred = outputs["rgb"]
        loss = masked_mse(pred, ground_truth(batch["image"], pred, self.config.background_color), batch.get("mask"))
        return {"rgb_loss": self.config.loss_coefficients["rgb_loss"] * loss}

    def get_image_metrics_and_images(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        """PSNR / SSIM (/ LPIPS when available offline) and a ground truth | render image."""
        pred = outputs["rgb"].float()
        gt = ground_truth(batch["image"], pred, self.config.background_color)
        if pred.dim() != 3:
            raise ValueError(f"image metrics take one [H, W, 3] render, got {tuple(pred.shape)}")
        metrics = self.image_metrics(pred.device)(pred, gt)
        return metrics, {"img": torch.cat([gt, pred], dim=1)}

    # ------------------------------------------------------------------ rendering

    def render(self, camera: Cameras) -> Tuple[Float[Tensor, "B H W 3"], Float[Tensor, "B H W 1"]]:
        """Colours and (far-bound) ray distances of a batch of equally sized perspective cameras."""
        cfg = self.config
        s = cfg.sr_factor
        heights, widths = camera.height.reshape(-1), camera.width.reshape(-1)
        if heights.numel() == 0:
            raise ValueError("no camera to render")
        H, W = int(heights[0]), int(widths[0])
        if H < 1 or W < 1 or bool((heights < 1).any()) or bool((widths < 1).any()):
            raise ValueError(f"cannot render a {H}x{W} (HxW) image: height and width must be >= 1")
        if bool((heights != H).any()) or bool((widths != W).any()):
            raise ValueError("all cameras of a batch must have the same height and width")
        if bool((camera.camera_type.reshape(-1) != CameraType.PERSPECTIVE.value).any()):
            raise ValueError("MobileR2L renders perspective (pinhole) cameras only")
        h, w = lowres_grid_size(H, W, s)
        if self.training and cfg.report_cost and not self._cost_reported:
            self._cost_reported = True
            CONSOLE.print(f"[bold]{self.cost_summary(H, W)}")

        device = self.device
        c2w = camera.camera_to_worlds.reshape(-1, 3, 4).to(device=device, dtype=torch.float32)
        rotation, centre = c2w[..., :3], c2w[..., 3]
        fx, fy, cx, cy = (
            x.reshape(-1).to(device=device, dtype=torch.float32) for x in (camera.fx, camera.fy, camera.cx, camera.cy)
        )
        batch = c2w.shape[0]
        dirs = lowres_pixel_directions(fx / s, fy / s, cx / s, cy / s, h, w)  # [B, h, w, 3]
        fractions = sample_fractions(cfg.num_points, (batch, h, w), jitter=self.training, device=device)
        if cfg.use_ndc:
            scale = self.ndc_frustum_scale(fx[0], fy[0], W, H)
            points = ndc_points_from_pose(rotation, centre, dirs, fractions, scale, cfg.ndc_near_plane)
            last = (cfg.num_points - 0.5) / cfg.num_points
            far = torch.full((batch,), ndc_depth_to_camera_depth(last, cfg.ndc_near_plane), device=device)
        elif cfg.ray_box:
            near, far = self.ray_near_far(rotation, centre, dirs)  # [B, h, w]
            points = points_from_pose(rotation, centre, dirs, near[..., None] + (far - near)[..., None] * fractions)
            far = far.reshape(batch, -1).amax(dim=-1)
        else:
            near, far = self.near_far(centre)
            points = points_from_pose(rotation, centre, dirs, depths_between(near, far, fractions))
        image = self.network(self.embedder(points))  # [B, 3, h*s, w*s]
        rgb = image[:, :, :H, :W].permute(0, 2, 3, 1)
        full_dirs = lowres_pixel_directions(fx, fy, cx, cy, H, W)  # [B, H, W, 3]
        depth = torch.linalg.norm(full_dirs, dim=-1, keepdim=True) * far[:, None, None, None]
        return rgb, depth

    def near_far(self, centres: Float[Tensor, "B 3"]) -> Tuple[Float[Tensor, " B"], Float[Tensor, " B"]]:
        """Per-camera near / far z-depths: from the config, or the data, else from the scene box."""
        fixed = self.fixed_near_far()
        if fixed is not None:
            near = torch.full(centres.shape[:-1], fixed[0], device=centres.device)
            far = torch.full(centres.shape[:-1], fixed[1], device=centres.device)
            return near, far
        return scene_box_near_far(centres, self.scene_box.aabb, self.config.min_near)

    def fixed_near_far(self) -> Optional[Tuple[float, float]]:
        """The near / far shared by all cameras (config values, or derived from the data), else None
        (per-camera scene-box bounds)."""
        return fixed_near_far(self.config, getattr(self, "data_near_far", None))

    def ray_near_far(self, rotation: Tensor, centre: Tensor, dirs: Tensor) -> Tuple[Tensor, Tensor]:
        """Per-ray near / far of ``ray_box`` sampling (around the occupied cells when there are any)."""
        if self.uses_occupancy():
            return occupied_near_far(
                rotation, centre, dirs, self.sample_aabb, self.occupancy, self.occupancy_aabb,
                self.config.occupancy_steps, self.config.min_near,
            )  # fmt: skip
        return ray_box_near_far(rotation, centre, dirs, self.sample_aabb, self.config.min_near)

    def uses_occupancy(self) -> bool:
        """Whether ``occupancy_sampling`` has a grid (from the teacher, or a loaded checkpoint)."""
        return bool(self.config.occupancy_sampling and self.occupancy.numel() > 1 and self.occupancy.any())

    def ndc_frustum_scale(self, fx: Tensor, fy: Tensor, width: int, height: int) -> Tuple[float, float]:
        """NDC ``(2 fx / W, 2 fy / H)``: stored in the model, taken from the first camera if unset."""
        if bool(torch.isnan(self.ndc_scale).any()):
            self.ndc_scale.copy_(torch.stack([2.0 * fx / width, 2.0 * fy / height]).to(self.ndc_scale))
            log_once(f"MobileR2L: NDC frustum scale set from a {width}x{height} camera: {self.ndc_scale.tolist()}")
        return float(self.ndc_scale[0]), float(self.ndc_scale[1])

    # ------------------------------------------------------------------ helpers

    def image_metrics(self, device: torch.device) -> ImageMetrics:
        """The (lazily built, unregistered) :class:`ImageMetrics` on ``device``."""
        if not self._metrics:
            self._metrics.append(ImageMetrics())
        return self._metrics[0].to(device)

    def cost_summary(self, height: int, width: int) -> str:
        """One line: parameter count and GFLOPs of one ``height x width`` frame."""
        h, w = lowres_grid_size(height, width, self.config.sr_factor)
        gflops = (frame_flops(self.network, h, w) + embedder_flops(self.embedder, h, w)) / 1e9
        grids = embedder_parameters(self.embedder)
        embedder = f" + {grids:,} in the {self.config.embedder} embedder" if grids else ""
        return (
            f"MobileR2L student: {count_parameters(self.network):,} parameters{embedder}, {gflops:.2f} GFLOPs per "
            f"{width}x{height} frame (ray grid {w}x{h}, x{self.config.sr_factor} super-resolution, "
            f"{self.config.num_points} points per ray)"
        )
