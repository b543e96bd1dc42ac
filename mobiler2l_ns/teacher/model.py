"""The teacher: an Instant-NGP radiance field that trains and renders on CPU and CUDA."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Literal, Optional, Tuple, Type

import nerfacc
import torch
from jaxtyping import Float
from nerfstudio.cameras.cameras import Cameras
from nerfstudio.cameras.rays import RayBundle
from nerfstudio.engine.callbacks import TrainingCallback, TrainingCallbackAttributes, TrainingCallbackLocation
from nerfstudio.model_components.renderers import RGBRenderer
from nerfstudio.models.base_model import Model, ModelConfig
from nerfstudio.utils import colormaps
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio
from torch.nn import Parameter

from mobiler2l_ns.teacher.field import TeacherField
from mobiler2l_ns.teacher.hash_grid import HashGrid
from mobiler2l_ns.teacher.marcher import (
    PackedSamples,
    filter_visible,
    march,
    nerfacc_cuda_available,
    render_weights,
    sample_points,
)
from mobiler2l_ns.utils.log import log_once
from mobiler2l_ns.utils.metrics import ImageMetrics


@dataclass
class TeacherModelConfig(ModelConfig):
    """Instant-NGP teacher. Defaults follow nerfstudio's instant-ngp."""

    _target: Type = field(default_factory=lambda: TeacherModel)
    enable_collider: bool = False  # the marcher intersects rays with the grid itself
    # hash grid
    num_levels: int = 16
    features_per_level: int = 2
    log2_hashmap_size: int = 19
    base_resolution: int = 16
    max_resolution: int = 2048
    implementation: Literal["auto", "torch", "tcnn"] = "auto"
    """Hash grid kernel: tiny-cuda-nn when importable on CUDA ("auto"), or torch. Checkpoints are the same."""
    compile_cpu: bool = True
    """On CPU, compile the torch hash-grid kernel with torch.compile (~10x faster; ~30 s once per process)."""
    # MLPs
    hidden_dim: int = 64
    hidden_dim_color: int = 64
    geo_feat_dim: int = 15
    average_init_density: float = 1.0
    """Density scale (nerfstudio's convention); < 1 starts from nearly empty space."""
    # scene
    contract: bool = False
    """Unbounded scene: contract space outside the scene box (nerfstudio's L-inf SceneContraction)."""
    background_color: Literal["random", "black", "white"] = "random"
    # occupancy grid and marching
    grid_resolution: int = 128
    grid_levels: int = 1
    grid_update_every: int = 16
    grid_warmup_steps: int = 256
    occ_threshold: float = 0.01
    steps_per_diagonal: int = 1000
    """Marching step = scene-box diagonal / this (nerfstudio's instant-ngp uses 1000)."""
    render_step_size: Optional[float] = None
    """Explicit marching step; overrides steps_per_diagonal."""
    cone_angle: float = 0.0
    alpha_thre: float = 0.01
    early_stop_eps: float = 1e-4
    near_plane: float = 0.05
    far_plane: float = 1e3
    marcher: Literal["auto", "torch", "nerfacc"] = "auto"
    """Ray marcher: nerfacc's CUDA kernels ("auto" on CUDA when they load) or pure torch."""
    single_pass_inference: bool = True
    """Inference on the torch marcher evaluates the field once per occupied sample and filters samples
    from those densities (same image as the two-pass path, one hash-grid pass less)."""
    occ_eval_chunk: int = 1 << 16
    """Points per density evaluation when refreshing the occupancy grid (bounds memory)."""


class TeacherModel(Model):
    """Instant-NGP: hash grid field, occupancy grid with empty-space skipping, volume rendering."""

    config: TeacherModelConfig

    def populate_modules(self) -> None:
        super().populate_modules()
        cfg = self.config
        aabb = self.scene_box.aabb
        grid = HashGrid(
            num_levels=cfg.num_levels,
            features_per_level=cfg.features_per_level,
            log2_hashmap_size=cfg.log2_hashmap_size,
            base_resolution=cfg.base_resolution,
            max_resolution=cfg.max_resolution,
            implementation=cfg.implementation,
            compile_cpu=cfg.compile_cpu,
        )
        self.field = TeacherField(
            aabb=aabb,
            hash_grid=grid,
            contract=cfg.contract,
            hidden_dim=cfg.hidden_dim,
            hidden_dim_color=cfg.hidden_dim_color,
            geo_feat_dim=cfg.geo_feat_dim,
            average_init_density=cfg.average_init_density,
        )
        self.render_step_size = cfg.render_step_size or float((aabb[1] - aabb[0]).norm()) / cfg.steps_per_diagonal
        self.occupancy_grid = nerfacc.OccGridEstimator(
            roi_aabb=aabb.flatten(), resolution=cfg.grid_resolution, levels=cfg.grid_levels
        )
        self.renderer_rgb = RGBRenderer(background_color=cfg.background_color)
        self.rgb_loss = torch.nn.MSELoss()
        self._image_metrics = [ImageMetrics()]  # a list keeps it out of state_dict and checkpoints

    # ------------------------------------------------------------------ training
    def occupancy(self, points: Tensor) -> Tensor:
        """Opacity of one marching step at ``points`` [N, 3] -> [N, 1], evaluated in chunks."""
        chunks = [self.field.density_fn(p) * self.render_step_size for p in points.split(self.config.occ_eval_chunk)]
        return torch.cat(chunks) if chunks else points.new_zeros(0, 1)

    def get_training_callbacks(
        self, training_callback_attributes: TrainingCallbackAttributes
    ) -> List[TrainingCallback]:
        def update_occupancy_grid(step: int) -> None:
            self.occupancy_grid.update_every_n_steps(
                step=step,
                occ_eval_fn=self.occupancy,
                occ_thre=self.config.occ_threshold,
                warmup_steps=self.config.grid_warmup_steps,
                n=self.config.grid_update_every,
            )

        return [
            TrainingCallback(
                where_to_run=[TrainingCallbackLocation.BEFORE_TRAIN_ITERATION],
                update_every_num_iters=1,
                func=update_occupancy_grid,
            )
        ]

    def get_param_groups(self) -> Dict[str, List[Parameter]]:
        return {"fields": list(self.field.parameters())}

    # ----------------------------------------------------------------- rendering
    def use_nerfacc(self, device: torch.device) -> bool:
        """Which marcher renders on ``device`` (decided per call: checkpoints move between devices)."""
        choice = self.config.marcher
        if choice == "nerfacc" and not nerfacc_cuda_available():
            raise RuntimeError("--pipeline.model.marcher nerfacc needs CUDA and nerfacc's CUDA kernels")
        accelerated = choice != "torch" and device.type == "cuda" and nerfacc_cuda_available()
        kernel = "tcnn" if (self.field.hash_grid._tcnn and device.type == "cuda") else "torch"
        log_once(f"Teacher on {device.type}: ray marcher={'nerfacc' if accelerated else 'torch'}, hash grid={kernel}")
        return accelerated

    def shade(self, ray_bundle: RayBundle) -> Tuple[PackedSamples, Tensor, Tensor, int]:
        """March ``ray_bundle`` and evaluate the field: ``(samples, density [M, 1], rgb [M, 3], num_rays)``.

        In inference on the torch marcher the field is evaluated once per occupied sample and the
        samples are filtered from those densities, instead of a density pass in the marcher and a
        second field evaluation of the survivors (same samples, same values, one hash-grid pass less).
        """
        origins = ray_bundle.origins.reshape(-1, 3)
        directions = ray_bundle.directions.reshape(-1, 3)
        num_rays = origins.shape[0]
        accelerated = self.use_nerfacc(origins.device)
        inference = not self.training and not torch.is_grad_enabled()
        single_pass = self.config.single_pass_inference and inference and not accelerated

        def sigma_fn(t_starts: Tensor, t_ends: Tensor, ray_indices: Tensor) -> Tensor:
            return self.field.density_fn(sample_points(origins, directions, t_starts, t_ends, ray_indices))[:, 0]

        samples = march(
            self.occupancy_grid,
            origins,
            directions,
            use_nerfacc=accelerated,
            near_plane=self.config.near_plane,
            far_plane=self.config.far_plane,
            render_step_size=self.render_step_size,
            cone_angle=self.config.cone_angle,
            stratified=self.training,
            sigma_fn=None if single_pass else sigma_fn,
            early_stop_eps=self.config.early_stop_eps,
            alpha_thre=self.config.alpha_thre,
        )
        positions = samples.positions(origins, directions)
        if not single_pass:
            density, rgb = self.field(positions, directions[samples.ray_indices])
            return samples, density, rgb, num_rays
        density, features = self.field.density_and_features(positions)
        keep = filter_visible(
            self.occupancy_grid, samples, density[:, 0], num_rays, self.config.early_stop_eps, self.config.alpha_thre
        )
        samples = samples.select(keep)
        return samples, density[keep], self.field.rgb(features[keep], directions[samples.ray_indices]), num_rays

    def get_outputs(self, ray_bundle: RayBundle) -> Dict[str, Tensor]:
        samples, density, rgb, num_rays = self.shade(ray_bundle)
        ray_indices = samples.ray_indices
        t_mids = samples.midpoints()
        weights = render_weights(samples, density[:, 0], num_rays)
        accumulation = nerfacc.accumulate_along_rays(weights, None, ray_indices, num_rays)
        depth = nerfacc.accumulate_along_rays(weights, t_mids, ray_indices, num_rays) / accumulation.clamp(min=1e-10)
        rgb = self.renderer_rgb(rgb=rgb, weights=weights[:, None], ray_indices=ray_indices, num_rays=num_rays)
        samples_per_ray = torch.bincount(ray_indices, minlength=num_rays)
        return {"rgb": rgb, "accumulation": accumulation, "depth": depth, "num_samples_per_ray": samples_per_ray}

    @torch.inference_mode()
    def render_rgb(self, camera: Cameras, rays_per_chunk: Optional[int] = None) -> Float[Tensor, "H W 3"]:
        """Colours of one camera, equal to ``get_outputs_for_camera(camera)["rgb"]``, computing only them.

        For pseudo-view generation: no depth, accumulation or sample counts, no per-chunk output dicts.
        """
        if self.training:
            raise RuntimeError("render_rgb is for inference: call model.eval() first")
        bundle = camera.generate_rays(camera_indices=0, keep_shape=True)
        height, width = bundle.origins.shape[:2]
        flat = bundle.flatten()
        chunk = rays_per_chunk or self.config.eval_num_rays_per_chunk
        out = []
        for start in range(0, len(flat), chunk):
            samples, density, rgb, num_rays = self.shade(flat[start : start + chunk])
            weights = render_weights(samples, density[:, 0], num_rays)
            out.append(
                self.renderer_rgb(rgb=rgb, weights=weights[:, None], ray_indices=samples.ray_indices, num_rays=num_rays)
            )
        return torch.cat(out).view(height, width, 3)

    # ------------------------------------------------------------ losses/metrics
    def get_metrics_dict(self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]) -> Dict[str, Tensor]:
        image = self.renderer_rgb.blend_background(batch["image"].to(self.device))
        return {
            "psnr": peak_signal_noise_ratio(outputs["rgb"].detach(), image, data_range=1.0),
            "num_samples_per_batch": outputs["num_samples_per_ray"].sum(),
        }

    def get_loss_dict(self, outputs, batch, metrics_dict=None) -> Dict[str, Tensor]:
        pred_rgb, image = self.renderer_rgb.blend_background_for_loss_computation(
            pred_image=outputs["rgb"],
            pred_accumulation=outputs["accumulation"],
            gt_image=batch["image"].to(self.device),
        )
        return {"rgb_loss": self.rgb_loss(image, pred_rgb)}

    def get_image_metrics_and_images(
        self, outputs: Dict[str, Tensor], batch: Dict[str, Tensor]
    ) -> Tuple[Dict[str, float], Dict[str, Tensor]]:
        image = self.renderer_rgb.blend_background(batch["image"].to(self.device))
        rgb = outputs["rgb"]
        metrics = self._image_metrics[0](rgb, image)
        images = {
            "img": torch.cat([image, rgb], dim=1),
            "accumulation": colormaps.apply_colormap(outputs["accumulation"]),
            "depth": colormaps.apply_depth_colormap(outputs["depth"], accumulation=outputs["accumulation"]),
        }
        return metrics, images
