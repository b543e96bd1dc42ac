"""What the student's renders are compared with: target images as float RGB, and the masked MSE.

Targets come from any datamanager (real images, random crops, teacher-rendered pseudo views):
``[H, W, 3|4]`` or ``[B, H, W, 3|4]``, uint8 or float; RGBA is composited on the background colour.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from jaxtyping import Float
from nerfstudio.utils.colors import get_color
from torch import Tensor


def ground_truth(image: Tensor, like: Tensor, background_color: str) -> Float[Tensor, "*batch H W 3"]:
    """Target ``image`` as float RGB in [0, 1] on ``like``'s device (uint8 / 255; RGBA composited on
    ``background_color``); ValueError unless its shape then equals ``like``'s."""
    if image.dtype == torch.uint8:
        image = image.float() / 255.0
    image = image.to(like.device).float()
    if image.shape[-1] == 4:
        background = get_color(background_color).to(image)
        image = image[..., :3] * image[..., 3:] + background * (1.0 - image[..., 3:])
    if image.shape != like.shape:
        raise ValueError(f"target image {tuple(image.shape)} does not match the render {tuple(like.shape)}")
    return image


def masked_mse(
    pred: Float[Tensor, "*batch H W 3"], gt: Float[Tensor, "*batch H W 3"], mask: Optional[Tensor] = None
) -> Float[Tensor, ""]:
    """Mean squared colour error; with ``mask`` (``[*batch, H, W, 1]``, nonzero = counted) over the
    masked pixels only (0 when none is)."""
    if mask is None:
        return F.mse_loss(pred.float(), gt)
    mask = mask.to(pred.device).float()
    if mask.shape[:-1] != pred.shape[:-1]:
        raise ValueError(f"mask {tuple(mask.shape)} does not match the render {tuple(pred.shape)}")
    return ((pred.float() - gt) ** 2 * mask).sum() / (3.0 * mask.sum()).clamp_min(1.0)
