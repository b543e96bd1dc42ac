"""Image metrics that never touch the network.

Stock nerfstudio models build torchmetrics' LPIPS in ``populate_modules``; that downloads
torchvision's AlexNet weights and crashes ``ns-train`` on an offline machine. Here LPIPS is
built only when the weights are already in the torch hub cache, and otherwise reported as
unavailable in one log line.
"""

from __future__ import annotations

import os
from typing import Dict, Optional

import torch
from jaxtyping import Float
from torch import Tensor
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from mobiler2l_ns.utils.log import log_once

LPIPS_UNAVAILABLE = "LPIPS unavailable: AlexNet weights not found at {path} (offline: no download attempted)"


def alexnet_weights_path() -> str:
    """Where torchvision would cache the AlexNet weights LPIPS needs."""
    from torchvision.models import AlexNet_Weights

    filename = os.path.basename(AlexNet_Weights.IMAGENET1K_V1.url)
    return os.path.join(torch.hub.get_dir(), "checkpoints", filename)


def build_lpips() -> Optional[torch.nn.Module]:
    """LPIPS (AlexNet) if its weights are on disk, else None after one log line."""
    path = alexnet_weights_path()
    if not os.path.isfile(path):
        log_once(LPIPS_UNAVAILABLE.format(path=path))
        return None
    from torchmetrics.image.lpip import LearnedPerceptualImagePatchSimilarity

    return LearnedPerceptualImagePatchSimilarity(net_type="alex", normalize=True)


class ImageMetrics(torch.nn.Module):
    """PSNR / SSIM (and LPIPS when available offline) of an image against ground truth."""

    def __init__(self) -> None:
        super().__init__()
        self.psnr = PeakSignalNoiseRatio(data_range=1.0)
        self.ssim = StructuralSimilarityIndexMeasure(data_range=1.0)
        self.lpips = build_lpips()

    @torch.no_grad()
    def forward(self, image: Float[Tensor, "H W 3"], gt: Float[Tensor, "H W 3"]) -> Dict[str, float]:
        """Metrics of one image; both HWC in [0, 1]. Returns floats keyed psnr, ssim[, lpips]."""
        self.to(image.device)
        pred = torch.moveaxis(image, -1, 0)[None].clamp(0.0, 1.0).float()
        target = torch.moveaxis(gt, -1, 0)[None].float()
        out = {"psnr": float(self.psnr(pred, target)), "ssim": float(self.ssim(pred, target))}
        if self.lpips is not None:
            out["lpips"] = float(self.lpips(pred, target))
        return out
