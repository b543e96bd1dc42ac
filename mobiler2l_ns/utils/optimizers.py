"""Optimizer configs in nerfstudio's form that nerfstudio 1.1.5 lacks (AdamW; Adam with torch's fused kernel)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Type

import torch
from nerfstudio.engine.optimizers import AdamOptimizerConfig, OptimizerConfig


@dataclass
class AdamWOptimizerConfig(OptimizerConfig):
    """AdamW (decoupled weight decay) in nerfstudio's optimizer-config form."""

    _target: Type = torch.optim.AdamW
    weight_decay: float = 0.01
    """Decoupled weight decay."""
    fused: Optional[bool] = True
    """torch's fused kernel (CPU and CUDA; None: torch's default, a per-tensor loop on CPU): one kernel
    per parameter group instead of ~10 small ops per tensor per step."""


@dataclass
class FusedAdamOptimizerConfig(AdamOptimizerConfig):
    """nerfstudio's Adam with torch's fused kernel (see :class:`AdamWOptimizerConfig`)."""

    fused: Optional[bool] = True
    """torch's fused kernel (None: torch's default)."""
