"""Image metrics that never touch the network.

Stock nerfstudio models build torchmetrics' LPIPS in ``populate_modules``; that downloads
torchvision's AlexNet weights and crashes ``ns-train`` on an offline machine. Here LPIPS is
built only when the weights are already in the torch hub cache, and otherwise reported as
unavailable in one log line.
"""

from __future__ import annotations

import os
from typing import Dict, Optional, Union

import numpy as np
import torch
from jaxtyping import Float
from torch import Tensor
from torchmetrics.functional.image import peak_signal_noise_ratio
from torchmetrics.image import PeakSignalNoiseRatio, StructuralSimilarityIndexMeasure

from mobiler2l_ns.utils.log import log_once

ImageLike = Union[np.ndarray, Tensor]


def psnr(a: ImageLike, b: ImageLike, data_range: float = 1.0) -> float:
    """PSNR in dB of two images of the same shape (torchmetrics, in float64; ``inf`` when equal).

    ``data_range``: 1.0 for images in [0, 1], 255.0 for uint8 ones.
    """
    a_t = torch.as_tensor(a if isinstance(a, Tensor) else np.asarray(a)).detach().cpu().double()
    b_t = torch.as_tensor(b if isinstance(b, Tensor) else np.asarray(b)).detach().cpu().double()
    if a_t.shape != b_t.shape:
        raise ValueError(f"psnr: shapes differ, {tuple(a_t.shape)} vs {tuple(b_t.shape)}")
    if torch.equal(a_t, b_t):
        return float("inf")
    return float(peak_signal_noise_ratio(a_t, b_t, data_range=data_range))


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
