"""Multiresolution hash grid (Instant-NGP) with one parameter layout for two kernels.

The parameters are a single flat tensor laid out exactly as tiny-cuda-nn's ``HashGrid``
encoding lays out its own (per-level tables of ``min(next_multiple(res^3, 8), 2^log2_T)``
entries, ``F`` features interleaved per entry, dense indexing on coarse levels and the
``1 ^ 2654435761 ^ 805459861`` spatial hash on fine ones). So a checkpoint written with the
tiny-cuda-nn kernel on a GPU loads into the pure-torch kernel on a CPU and back, unchanged.
"""

from __future__ import annotations

import functools
import math
import os
import shutil
from dataclasses import dataclass
from typing import List, Literal, Optional, Sequence, Tuple

import torch
from jaxtyping import Float, Int
from torch import Tensor, nn

from mobiler2l_ns.utils.log import log_once

HASH_PRIMES = (1, 2654435761, 805459861)

try:  # optional accelerated kernel
    import tinycudann as tcnn  # type: ignore

    TCNN_EXISTS = True
except ImportError:  # pragma: no cover - tiny-cuda-nn is never installed by CI
    tcnn = None
    TCNN_EXISTS = False


@dataclass(frozen=True)
class GridLevel:
    """One resolution level: its ``scale`` and ``resolution`` as tiny-cuda-nn computes them."""

    scale: float
    resolution: int
    size: int  # table entries
    offset: int  # first entry in the flat table
    dense: bool  # indexed densely (res^3 fits) instead of hashed


def grid_levels(
    num_levels: int, log2_hashmap_size: int, base_resolution: int, per_level_scale: float
) -> List[GridLevel]:
    """Level geometry identical to tiny-cuda-nn's ``GridEncodingTemplated`` constructor."""
    levels, offset = [], 0
    max_params = 2**log2_hashmap_size
    for i in range(num_levels):
        scale = 2.0 ** (i * math.log2(per_level_scale)) * base_resolution - 1.0
        resolution = int(math.ceil(scale)) + 1
        dense_size = resolution**3
        size = min(int(math.ceil(dense_size / 8) * 8), max_params)
        levels.append(GridLevel(scale, resolution, size, offset, dense_size <= size))
        offset += size
    return levels


def per_level_scale_for(base_resolution: int, max_resolution: int, num_levels: int) -> float:
    """Growth factor b so that the finest level has ``max_resolution`` (Instant-NGP eq. 3)."""
    if num_levels < 2:
        return 1.0
    return math.exp((math.log(max_resolution) - math.log(base_resolution)) / (num_levels - 1))


def _as_int32(value: int) -> int:
    """The int32 whose two's-complement bits equal the uint32 ``value``."""
    return value - (1 << 32) if value >= 1 << 31 else value


def level_corners(x: Float[Tensor, "N 3"], level: GridLevel) -> Tuple[Int[Tensor, "N 8"], Float[Tensor, "N 8"]]:
    """Table rows (global, int32) and trilinear weights of the 8 cell corners around each point.

    Corner c = 4z + 2y + x-bit. Hashed levels have a power-of-two size (2^log2_T), so the
    uint32 hash modulo the size is the low bits of the wrapped int32 product: no int64 needed.
    """
    pos = x * level.scale + 0.5
    cell = torch.floor(pos)
    frac = pos - cell
    lo = cell.to(torch.int32)
    axes, stride = [], 1
    for d in range(3):
        corner = torch.stack([lo[:, d], lo[:, d] + 1], dim=-1)  # [N, 2]
        if level.dense:
            axes.append(corner * stride)
            stride *= level.resolution
        else:
            axes.append(corner * _as_int32(HASH_PRIMES[d]))
    ax, ay, az = axes[0][:, None, None, :], axes[1][:, None, :, None], axes[2][:, :, None, None]
    if level.dense:
        index = torch.remainder(ax + ay + az, level.size)
    else:
        index = torch.bitwise_and(ax ^ ay ^ az, level.size - 1)
    w = [torch.stack([1.0 - frac[:, d], frac[:, d]], dim=-1) for d in range(3)]
    weight = w[2][:, :, None, None] * w[1][:, None, :, None] * w[0][:, None, None, :]
    return index.reshape(-1, 8) + level.offset, weight.reshape(-1, 8)


def corners_all_levels(x: Float[Tensor, "N 3"], levels: Sequence[GridLevel]) -> Tuple[Tensor, Tensor]:
    """Table rows [N, L, 8] (int32) and trilinear weights [N, L, 8] of ``x`` at every level."""
    corners = [level_corners(x, level) for level in levels]
    return torch.stack([c[0] for c in corners], dim=1), torch.stack([c[1] for c in corners], dim=1)


def interpolate_rows(table: Float[Tensor, "T F"], index: Tensor, weight: Tensor) -> Float[Tensor, "N L F"]:
    """out[n, l] = sum_c weight[n, l, c] * table[index[n, l, c]]."""
    rows = table.index_select(0, index.reshape(-1)).view(*index.shape, table.shape[1])  # [N, L, 8, F]
    return (rows * weight[..., None]).sum(2)


def scatter_rows(grad_out: Float[Tensor, "N L F"], index: Tensor, weight: Tensor, num_rows: int) -> Tensor:
    """Gradient of :func:`interpolate_rows` w.r.t. the table: [num_rows, F]."""
    grad_rows = grad_out[:, :, None, :] * weight[..., None]  # [N, L, 8, F]
    grad_table = grad_out.new_zeros(num_rows, grad_out.shape[-1])
    return grad_table.index_add_(0, index.reshape(-1), grad_rows.reshape(-1, grad_out.shape[-1]))


def can_compile() -> bool:
    """Whether torch.compile's CPU backend has a C++ compiler to work with."""
    return any(shutil.which(name) for name in (os.environ.get("CXX", "c++"), "g++", "clang++"))


class CpuKernels:
    """The torch kernel's three steps, eager or compiled with ``torch.compile`` (inductor, C++).

    Compiled, they run about 10x faster on a CPU than eager torch (one fused loop per step instead
    of dozens of full-size temporaries). Compilation happens once per process and grid layout
    (20-30 s, cached on disk by torch); if it fails (e.g. no C++ compiler), eager is used.
    """

    def __init__(self, levels: Sequence[GridLevel], compile: bool) -> None:
        self.levels = tuple(levels)
        self.compiled = compile
        corners = functools.partial(corners_all_levels, levels=self.levels)
        if compile:
            self.corners = torch.compile(corners, dynamic=True)
            self.interpolate = torch.compile(interpolate_rows, dynamic=True)
            self.scatter = torch.compile(scatter_rows, dynamic=True)
        else:
            self.corners, self.interpolate, self.scatter = corners, interpolate_rows, scatter_rows

    def run(self, step: str, *args):
        """Call ``step`` ("corners", "interpolate" or "scatter"); a failed compile falls back to eager."""
        try:
            return getattr(self, step)(*args)
        except Exception as err:  # pylint: disable=broad-except
            if not self.compiled:
                raise
            log_once(f"torch.compile of the hash grid failed ({err.__class__.__name__}: {err}); using eager torch")
            self.__init__(self.levels, compile=False)
            return getattr(self, step)(*args)


class _InterpolateTable(torch.autograd.Function):
    """Trilinear table lookup; the gradient goes to the table only (positions need none)."""

    @staticmethod
    def forward(ctx, table: Tensor, index: Tensor, weight: Tensor, kernels: CpuKernels) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(index, weight)
        ctx.kernels, ctx.num_rows = kernels, table.shape[0]
        return kernels.run("interpolate", table, index, weight)

    @staticmethod
    def backward(ctx, grad_out: Tensor):  # type: ignore[override]
        index, weight = ctx.saved_tensors
        grad_table = ctx.kernels.run("scatter", grad_out.contiguous(), index, weight, ctx.num_rows)
        return grad_table, None, None, None


def hash_grid_torch(
    x: Float[Tensor, "N 3"],
    table: Float[Tensor, "T F"],
    levels: Sequence[GridLevel],
    kernels: Optional[CpuKernels] = None,
) -> Float[Tensor, "N LF"]:
    """Pure-torch kernel: trilinear lookup of ``x`` in [0, 1]^3 at every level.

    Returns features ordered level-major (level 0's F features first), as tiny-cuda-nn does.
    """
    kernels = kernels or CpuKernels(levels, compile=False)
    index, weight = kernels.run("corners", x.detach().float())
    return _InterpolateTable.apply(table, index, weight.to(table.dtype), kernels).flatten(1)


class HashGrid(nn.Module):
    """Instant-NGP hash encoding of points in [0, 1]^3.

    Args:
        num_levels: L, number of resolution levels.
        features_per_level: F, features stored per table entry.
        log2_hashmap_size: log2 of the maximum entries per level (T).
        base_resolution: coarsest grid resolution.
        max_resolution: finest grid resolution (sets the per-level growth factor).
        implementation: "tcnn" (tiny-cuda-nn, CUDA only), "torch", or "auto" (tcnn when it
            is importable and the input is on CUDA, torch otherwise). The parameters and hence
            checkpoints are the same for every choice.
        compile_cpu: run the torch kernel through ``torch.compile`` (about 10x faster on CPU).
    """

    def __init__(
        self,
        num_levels: int = 16,
        features_per_level: int = 2,
        log2_hashmap_size: int = 19,
        base_resolution: int = 16,
        max_resolution: int = 2048,
        implementation: Literal["auto", "torch", "tcnn"] = "auto",
        compile_cpu: bool = False,
    ) -> None:
        super().__init__()
        self.features_per_level = features_per_level
        self.per_level_scale = per_level_scale_for(base_resolution, max_resolution, num_levels)
        self.levels = grid_levels(num_levels, log2_hashmap_size, base_resolution, self.per_level_scale)
        total = self.levels[-1].offset + self.levels[-1].size
        # tiny-cuda-nn initialises grid parameters uniformly in [-1e-4, 1e-4].
        self.params = nn.Parameter(torch.empty(total * features_per_level).uniform_(-1e-4, 1e-4))
        self.implementation = implementation
        self.cpu_kernels = CpuKernels(self.levels, compile=compile_cpu and can_compile())
        self._tcnn: List[nn.Module] = []  # kept out of the module tree: it shares self.params
        if implementation == "tcnn" and not TCNN_EXISTS:
            raise ValueError("--pipeline.model.implementation tcnn: tiny-cuda-nn is not installed")
        if TCNN_EXISTS and implementation in ("auto", "tcnn"):
            encoding = tcnn.Encoding(
                n_input_dims=3,
                encoding_config={
                    "otype": "HashGrid",
                    "n_levels": num_levels,
                    "n_features_per_level": features_per_level,
                    "log2_hashmap_size": log2_hashmap_size,
                    "base_resolution": base_resolution,
                    "per_level_scale": self.per_level_scale,
                },
                dtype=torch.float32,
            )
            if encoding.params.numel() != self.params.numel():
                log_once("tiny-cuda-nn hash grid layout differs from ours; using the torch kernel")
            else:
                encoding.params = self.params  # one parameter, two kernels
                self._tcnn.append(encoding)

    @property
    def output_dim(self) -> int:
        return len(self.levels) * self.features_per_level

    def forward(self, x: Float[Tensor, "*batch 3"]) -> Float[Tensor, "*batch LF"]:
        """Encode points already normalised to [0, 1]^3."""
        flat = x.reshape(-1, 3)
        if self._tcnn and flat.is_cuda and self.implementation != "torch":
            out = self._tcnn[0](flat).float()
        else:
            table = self.params.view(-1, self.features_per_level)
            kernels = None if flat.is_cuda else self.cpu_kernels  # compiled for the CPU only
            out = hash_grid_torch(flat, table, self.levels, kernels)
        return out.reshape(*x.shape[:-1], self.output_dim)
