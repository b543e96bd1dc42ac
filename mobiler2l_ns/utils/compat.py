"""Compatibility of nerfstudio 1.1.5 with the torch that ``pip install`` resolves today.

nerfstudio 1.1.5 saves checkpoints whose scheduler state holds numpy scalars. Since torch 2.6,
``torch.load`` defaults to ``weights_only=True`` and refuses those, so ``ns-train --load-dir``,
``ns-eval``, ``ns-viewer`` and ``ns-render`` cannot load a checkpoint. Allowing exactly the numpy
types such checkpoints hold keeps the safe loader on (nothing else becomes unpicklable).
"""

from __future__ import annotations

from typing import List

import numpy as np
import torch


def checkpoint_safe_globals() -> List[object]:
    """The numpy objects that nerfstudio checkpoints pickle (scalars, dtypes)."""
    try:  # numpy >= 2
        from numpy._core.multiarray import scalar
    except ImportError:  # pragma: no cover - numpy 1.x
        from numpy.core.multiarray import scalar  # type: ignore[no-redef]
    dtype_classes = [type(np.dtype(name)) for name in ("float64", "float32", "int64", "int32", "bool")]
    return [scalar, np.dtype, *dtype_classes]


def register_checkpoint_safe_globals() -> None:
    """Let ``torch.load(weights_only=True)`` read nerfstudio checkpoints (no-op on old torch)."""
    add_safe_globals = getattr(torch.serialization, "add_safe_globals", None)
    if add_safe_globals is not None:
        add_safe_globals(checkpoint_safe_globals())
