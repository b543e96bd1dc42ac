"""What every student embedder shares: the ``points [*batch, h, w, K, 3] -> features [B, C, h, w]`` contract.

:class:`RayEmbedder` is the base of the four embedders (:mod:`.embedders`): it holds ``num_points``
(K) and ``out_channels`` (C), checks and flattens the input points (:meth:`RayEmbedder.ray_grid`),
counts parameters and lookup FLOPs, and assembles ``describe()`` (the ``embedding`` entry of an
export's metadata.json) from the subclass's ``KIND``, ``FORMULA``, ``CHANNEL_ORDER`` and
:meth:`RayEmbedder.settings`. :func:`nerf_encoding` builds the positional encodings (points, ray
directions) with one convention.
"""

from __future__ import annotations

from typing import Any, Dict

from jaxtyping import Float
from nerfstudio.field_components.encodings import NeRFEncoding
from torch import Tensor, nn

from mobiler2l_ns.student.network import count_parameters


def nerf_encoding(num_frequencies: int, min_freq_exp: float) -> NeRFEncoding:
    """NeRFEncoding (torch) of 3D inputs: ``num_frequencies`` octaves from ``min_freq_exp``, raw input kept.

    Channels: ``3 (2 F + 1)``, in NeRFEncoding's order (all sines, all cosines, then x, y, z).
    """
    return NeRFEncoding(
        in_dim=3,
        num_frequencies=num_frequencies,
        min_freq_exp=min_freq_exp,
        max_freq_exp=min_freq_exp + max(num_frequencies - 1, 0),
        include_input=True,
        implementation="torch",
    )


class RayEmbedder(nn.Module):
    """Base of the student's embedders: ``[*batch, h, w, K, 3]`` points -> ``[B, C, h, w]`` features.

    Subclasses set ``out_channels`` in their constructor and implement ``forward``; they name
    themselves with ``KIND`` and document their maths for metadata.json in ``FORMULA`` and
    ``CHANNEL_ORDER``.
    """

    KIND = ""
    """``config.embedder`` value of the subclass (``pe``, ``planes``, ``slab``, ``volume``)."""
    FORMULA = ""
    """One-paragraph statement of the features, for metadata.json."""
    CHANNEL_ORDER = ""
    """The channel layout, for metadata.json."""

    def __init__(self, num_points: int):
        super().__init__()
        self.num_points = num_points
        self.out_channels = 0

    def ray_grid(self, points: Float[Tensor, "*batch h w K 3"]) -> Float[Tensor, "B h w K 3"]:
        """``points`` with the leading batch dims flattened into one ``B`` (absent -> ``B = 1``).

        ValueError unless the last two dims are ``(K, 3)``.
        """
        if points.shape[-2:] != (self.num_points, 3):
            raise ValueError(f"expected points [..., h, w, {self.num_points}, 3], got {tuple(points.shape)}")
        h, w = points.shape[-4], points.shape[-3]
        return points.reshape(-1, h, w, self.num_points, 3)

    def settings(self) -> Dict[str, Any]:
        """The subclass's constants for :meth:`describe` (between ``channels`` and ``formula``)."""
        return {}

    def describe(self) -> Dict[str, Any]:
        """Kind, settings and channel layout for metadata.json (learned values live in the graph)."""
        return {
            "kind": self.KIND,
            "num_points": self.num_points,
            "channels": self.out_channels,
            **self.settings(),
            "formula": self.FORMULA,
            "channel_order": self.CHANNEL_ORDER,
        }

    def parameter_count(self) -> int:
        """Learned values (0 for a fixed encoding)."""
        return count_parameters(self)

    def flops(self, h: int, w: int) -> int:
        """Approximate FLOPs of the learned lookups on an ``h x w`` ray grid (0 for a fixed encoding:
        its sines are not counted, as in the paper's FLOP figures)."""
        return 0
