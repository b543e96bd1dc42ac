"""The MobileR2L light field network: a residual 1x1-conv body on the low-res ray grid and a
transposed-conv super-resolution head (Cao et al., CVPR 2023; snap-research/MobileR2L ``R2L.py``).

Layout, input NCHW ``[B, C_in, h, w]`` -> output ``[B, 3, h*s, w*s]`` in ``[0, 1]``::

    head   conv1x1(C_in -> W) + GELU
    body   depth x ResBlock(W); global skip: x = head(x) + body(head(x))
    sr     one stage per factor of s (2s first, then 3s):
             ConvTranspose2d(k=4, stride=2, pad=1)  (x2)  or  ConvTranspose2d(k=3, stride=3, pad=0)  (x3)
             + sr_blocks x ResBlock(width of that stage)
    tail   conv1x1(-> 3) + sigmoid

    ResBlock(c): x + BN(conv1x1(GELU(BN(conv1x1(x)))))

Only conv, transposed conv, batch norm, GELU, add and sigmoid: ops ONNX and mobile GPUs run well.
Paper: depth 29, width 256, s = 8 (stages 2, 2, 2, widths 64, 64, 16): 4,305,539 parameters.
"""

from __future__ import annotations

import copy
from typing import List, Optional, Sequence, Tuple

import torch
from jaxtyping import Float
from torch import Tensor, nn


def sr_stage_factors(sr_factor: int) -> List[int]:
    """Decompose the super-resolution factor into upsampling stages of 2 and 3 (2s first).

    ``8 -> [2, 2, 2]``, ``12 -> [2, 2, 3]``, ``4 -> [2, 2]``, ``1 -> []``. Raises ValueError for a
    factor < 1 or with another prime factor (e.g. 5, 10).
    """
    if isinstance(sr_factor, bool) or not isinstance(sr_factor, int) or sr_factor < 1:
        raise ValueError(f"super-resolution factor must be a positive integer, got {sr_factor!r}")
    stages: List[int] = []
    rest = sr_factor
    for p in (2, 3):
        while rest % p == 0:
            stages.append(p)
            rest //= p
    if rest != 1:
        raise ValueError(
            f"unsupported super-resolution factor {sr_factor}: it must be a product of 2s and 3s "
            f"(e.g. 1, 2, 3, 4, 6, 8, 12, 16, 24); {sr_factor} has the factor {rest}"
        )
    return stages


def default_sr_widths(num_stages: int) -> Tuple[int, ...]:
    """Channel widths of the SR stages: 64 for all but the last, 16 for the last (paper: 64, 64, 16)."""
    if num_stages == 0:
        return ()
    return (64,) * (num_stages - 1) + (16,)


def upsampler(in_channels: int, out_channels: int, factor: int) -> nn.ConvTranspose2d:
    """Transposed conv that upsamples exactly by ``factor`` (2: k4 s2 p1, 3: k3 s3 p0)."""
    if factor == 2:
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=4, stride=2, padding=1)
    if factor == 3:
        return nn.ConvTranspose2d(in_channels, out_channels, kernel_size=3, stride=3, padding=0)
    raise ValueError(f"an upsampling stage must be x2 or x3, got x{factor}")


class ResBlock(nn.Module):
    """``x + BN(conv1x1(GELU(BN(conv1x1(x)))))`` on ``[B, C, h, w]``: 2 C^2 + 6 C parameters.

    ``batchnorm=False``: ``x + conv1x1(GELU(conv1x1(x)))`` with the second conv starting at zero (the
    block starts as the identity, so a deep body trains without normalisation; 2 C^2 + 2 C parameters).
    """

    def __init__(self, channels: int, batchnorm: bool = True):
        super().__init__()
        if batchnorm:
            layers = [nn.Conv2d(channels, channels, kernel_size=1), nn.BatchNorm2d(channels), nn.GELU(),
                      nn.Conv2d(channels, channels, kernel_size=1), nn.BatchNorm2d(channels)]  # fmt: skip
        else:
            layers = [
                nn.Conv2d(channels, channels, kernel_size=1),
                nn.GELU(),
                nn.Conv2d(channels, channels, kernel_size=1),
            ]
            nn.init.zeros_(layers[-1].weight)
            nn.init.zeros_(layers[-1].bias)
        self.block = nn.Sequential(*layers)

    def forward(self, x: Float[Tensor, "B C h w"]) -> Float[Tensor, "B C h w"]:
        """Residual 1x1-conv block; shape preserved."""
        return x + self.block(x)


class ClipOutput(nn.Module):
    """Colours clipped to [0, 1]; in training the gradient passes straight through the clip.

    The paper's sigmoid saturates: a network without BatchNorm, pushed towards a white background by
    Adam, can drive its logits into the sigmoid's flat tail within a few dozen steps and stop learning
    (measured on a mostly white scene: logits past 1000, gradients exactly 0). Here a white pixel stops
    pulling once it is white (the clipped value equals its target), while any other pixel keeps its
    gradient, so the outputs settle instead of running away. Evaluation and ONNX: a plain Clip.
    """

    def forward(self, x: Tensor) -> Tensor:
        clipped = x.clamp(0.0, 1.0)
        return x + (clipped - x).detach() if self.training else clipped


class MobileR2LNetwork(nn.Module):
    """Light field network; see the module docstring for the layout.

    Args:
        in_channels: input channels (312 = 8 points x 3 coords x 13).
        width: channels of head and body (W).
        depth: residual blocks in the body (the paper's 60-layer net: (60 - 2) / 2 = 29).
        sr_factor: super-resolution factor s, a product of 2s and 3s.
        sr_widths: channels of each SR stage (one per factor of s); None: :func:`default_sr_widths`.
        sr_blocks: residual blocks after each transposed conv.
        batchnorm: BatchNorm in the residual blocks (the paper); False: none (zero-initialised blocks).
        output: ``sigmoid`` (the paper) or ``clip`` (:class:`ClipOutput`, a linear output clipped to [0, 1]).
    """

    def __init__(
        self,
        in_channels: int = 312,
        width: int = 256,
        depth: int = 29,
        sr_factor: int = 8,
        sr_widths: Optional[Sequence[int]] = None,
        sr_blocks: int = 2,
        batchnorm: bool = True,
        output: str = "sigmoid",
    ):
        super().__init__()
        if depth < 0 or width < 1 or in_channels < 1 or sr_blocks < 0:
            raise ValueError(
                f"invalid network size: in={in_channels}, width={width}, depth={depth}, sr_blocks={sr_blocks}"
            )
        self.sr_factor = sr_factor
        self.stage_factors = sr_stage_factors(sr_factor)
        widths = tuple(sr_widths) if sr_widths is not None else default_sr_widths(len(self.stage_factors))
        if len(widths) != len(self.stage_factors):
            raise ValueError(
                f"super-resolution factor {sr_factor} has {len(self.stage_factors)} stages "
                f"{self.stage_factors}, but {len(widths)} SR widths {widths} were given"
            )
        self.sr_widths = widths
        self.head = nn.Sequential(nn.Conv2d(in_channels, width, kernel_size=1), nn.GELU())
        self.body = nn.Sequential(*[ResBlock(width, batchnorm) for _ in range(depth)])
        stages: List[nn.Module] = []
        channels = width
        for factor, out in zip(self.stage_factors, widths):
            blocks = [ResBlock(out, batchnorm) for _ in range(sr_blocks)]
            stages.append(nn.Sequential(upsampler(channels, out, factor), *blocks))
            channels = out
        self.sr = nn.Sequential(*stages)
        if output not in ("sigmoid", "clip"):
            raise ValueError(f"network output must be 'sigmoid' or 'clip', got {output!r}")
        self.tail = nn.Sequential(
            nn.Conv2d(channels, 3, kernel_size=1), nn.Sigmoid() if output == "sigmoid" else ClipOutput()
        )
        if output == "clip":
            nn.init.constant_(self.tail[0].bias, 0.5)  # start grey, inside the clip

    def forward(self, x: Float[Tensor, "B C_in h w"]) -> Float[Tensor, "B 3 H_pad W_pad"]:
        """Render ``[B, 3, h*s, w*s]`` colours in [0, 1] from the embedded ray grid."""
        x = self.head(x)
        x = x + self.body(x)
        return self.tail(self.sr(x))


def fold_batchnorm(network: MobileR2LNetwork) -> MobileR2LNetwork:
    """An eval-mode copy of ``network`` with every BatchNorm folded into the conv before it.

    Each ``conv1x1 -> BN`` pair of the residual blocks becomes one conv with
    ``W' = W * g / sqrt(v + eps)``, ``b' = (b - m) * g / sqrt(v + eps) + beta`` (running statistics,
    i.e. the eval-mode function), and the BN is replaced by ``nn.Identity``. The copy computes the
    same function as ``network.eval()`` (up to float rounding); ``network`` itself is not changed.
    Used by the ONNX exporter so that the graphs contain no BatchNormalization nodes.
    """
    from torch.nn.utils.fusion import fuse_conv_bn_eval

    folded = copy.deepcopy(network).eval()
    for module in folded.modules():
        if not isinstance(module, nn.Sequential):
            continue
        for i in range(1, len(module)):
            prev, cur = module[i - 1], module[i]
            if isinstance(cur, nn.BatchNorm2d) and isinstance(prev, nn.Conv2d):
                module[i - 1] = fuse_conv_bn_eval(prev, cur)
                module[i] = nn.Identity()
    leftover = [name for name, m in folded.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if leftover:
        raise ValueError(f"cannot fold BatchNorm layers that do not follow a conv: {leftover}")
    return folded


def count_parameters(module: nn.Module) -> int:
    """Number of parameters (trainable or not) of ``module``."""
    return sum(p.numel() for p in module.parameters())


def _conv_flops(module: nn.Module, pixels: int) -> int:
    """``2 * C_in * C_out * k_h * k_w * pixels`` for a conv / transposed conv, 0 for anything else."""
    if not isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
        return 0
    kh, kw = module.kernel_size
    return 2 * module.in_channels * module.out_channels * kh * kw * pixels


def frame_flops(network: MobileR2LNetwork, h: int, w: int) -> int:
    """Exact FLOPs of one forward pass on an ``h x w`` low-res grid (batch 1).

    Counts 2 x multiply-adds of every conv (bias, BN, GELU, adds excluded), the convention of
    ``torch.utils.flop_counter.FlopCounterMode``: a conv costs ``2 C_in C_out k_h k_w`` per
    *output* pixel, a transposed conv the same per *input* pixel.
    """
    pixels = h * w
    total = sum(_conv_flops(m, pixels) for m in network.head.modules())
    total += sum(_conv_flops(m, pixels) for m in network.body.modules())
    for stage, factor in zip(network.sr, network.stage_factors):
        upsample, blocks = stage[0], stage[1:]
        total += _conv_flops(upsample, pixels)  # per input pixel
        pixels *= factor * factor
        total += sum(_conv_flops(m, pixels) for m in blocks.modules())
    total += sum(_conv_flops(m, pixels) for m in network.tail.modules())
    return total


def measured_flops(network: nn.Module, x: Tensor) -> int:
    """FLOPs of ``network(x)`` counted by ``torch.utils.flop_counter.FlopCounterMode`` (runs it)."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter, torch.no_grad():
        network(x)
    return int(counter.get_total_flops())
