"""Positional encoding of the K sample points of every ray into the student's input channels.

Built on nerfstudio's :class:`~nerfstudio.field_components.encodings.NeRFEncoding` (torch
implementation). With K points, F frequencies and the raw value kept, each ray gets
``K * 3 * (2F + 1)`` channels: 8 x 3 x 13 = 312 for the paper.

Exact channel order (the ONNX exporter and the browser runtime must reproduce it)::

    channel(k, part, c, j) for point k in 0..K-1, coordinate c in (x, y, z) = (0, 1, 2),
    frequency j in 0..F-1, with P = 3 * (2F + 1) channels per point:

      k * P +          c * F + j   sin(a_j * p[k, c])
      k * P + 3 * F  + c * F + j   cos(a_j * p[k, c])    (computed as sin(a_j * p + pi / 2))
      k * P + 6 * F  + c           p[k, c]               (raw coordinate)

    a_j = 2 * pi * 2 ** e_j,  e_j = linspace(min_freq_exp, min_freq_exp + F - 1, F)[j]

i.e. points are the slowest-varying index; within a point NeRFEncoding's layout: all sines
(coordinate-major, frequency-minor), all cosines (same order), then x, y, z.

Frequencies: NeRFEncoding multiplies its input by ``2 pi``. The default ``min_freq_exp =
-log2(2 pi)`` cancels that, so ``a_j = 2 ** j`` (up to float rounding): the NeRF / R2L encoding
``sin(2^j x), cos(2^j x)``, j = 0..5, of raw world (or NDC) coordinates. Pass
``min_freq_exp=0`` for nerfstudio's own ``sin(2 pi 2^j x)``.
"""

from __future__ import annotations

import math
from typing import Any, Dict, List

import torch
from jaxtyping import Float
from torch import Tensor

from mobiler2l_ns.student.ray_embedder import RayEmbedder, nerf_encoding

R2L_MIN_FREQ_EXP: float = -math.log2(2.0 * math.pi)
"""Exponent offset that turns NeRFEncoding's ``sin(2 pi 2^e x)`` into R2L's ``sin(2^j x)``."""

COORDS = ("x", "y", "z")


def embedding_channels(num_points: int, num_frequencies: int) -> int:
    """Number of input channels: ``K * 3 * (2F + 1)`` (312 for K=8, F=6)."""
    return num_points * 3 * (2 * num_frequencies + 1)


def channel_names(num_points: int, num_frequencies: int) -> List[str]:
    """Name of every input channel in order, e.g. ``"p0.sin.x.f0"``, ``"p7.cos.z.f5"``, ``"p7.raw.z"``."""
    names: List[str] = []
    for k in range(num_points):
        for part in ("sin", "cos"):
            names += [f"p{k}.{part}.{c}.f{j}" for c in COORDS for j in range(num_frequencies)]
        names += [f"p{k}.raw.{c}" for c in COORDS]
    return names


class PointEmbedder(RayEmbedder):
    """Encode ``[*batch, h, w, K, 3]`` sample points into an NCHW ``[B, C, h, w]`` network input.

    Args:
        num_points: K, points per ray.
        num_frequencies: F, frequencies per coordinate.
        min_freq_exp: exponent of the lowest frequency in NeRFEncoding's convention (see module doc).
    """

    KIND = "pe"
    FORMULA = (
        "for point k, coordinate c, frequency j: sin(a_j p[k,c]), cos(a_j p[k,c]) = sin(a_j p[k,c] + pi/2), "
        "raw p[k,c]; a_j = frequencies[j] (computed as (2 pi p) * 2**e_j)"
    )
    CHANNEL_ORDER = "k * P + c * F + j: sin; k * P + 3F + c * F + j: cos; k * P + 6F + c: raw (P = 3 (2F + 1))"

    def __init__(self, num_points: int = 8, num_frequencies: int = 6, min_freq_exp: float = R2L_MIN_FREQ_EXP):
        super().__init__(num_points)
        self.num_frequencies = num_frequencies
        self.encoding = nerf_encoding(num_frequencies, min_freq_exp)
        self.out_channels = embedding_channels(num_points, num_frequencies)
        assert self.encoding.get_out_dim() * num_points == self.out_channels

    def settings(self) -> Dict[str, Any]:
        """Frequencies as the graph computes them (float32 ``2 ** e_j``, times ``2 pi``)."""
        enc = self.encoding
        freqs = 2 ** torch.linspace(enc.min_freq, enc.max_freq, enc.num_frequencies)
        return {
            "num_frequencies": self.num_frequencies,
            "min_freq_exp": float(enc.min_freq),
            "frequencies": [float(2 * math.pi * f) for f in freqs.tolist()],
        }

    def describe(self) -> Dict[str, Any]:
        """:meth:`RayEmbedder.describe` plus the name of every channel."""
        return {**super().describe(), "channel_names": channel_names(self.num_points, self.num_frequencies)}

    def forward(self, points: Float[Tensor, "*batch h w K 3"]) -> Float[Tensor, "B C h w"]:
        """Encode points; leading batch dims are flattened into ``B`` (absent -> ``B = 1``)."""
        points = self.ray_grid(points)
        batch, h, w = points.shape[:3]
        encoded = self.encoding(points)  # [B, h, w, K, 3 * (2F + 1)]
        encoded = encoded.reshape(batch, h, w, self.out_channels)
        return encoded.permute(0, 3, 1, 2).contiguous()
