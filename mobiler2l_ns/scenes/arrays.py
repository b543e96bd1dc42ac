"""Small numpy helpers and array types shared by the scene modules."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from numpy.typing import NDArray

FloatArray = NDArray[np.float64]
Vec3 = tuple[float, float, float]


def vec3(c: Sequence[float]) -> FloatArray:
    """A point, direction or colour as a ``(3,)`` float64 array."""
    return np.asarray(c, dtype=np.float64).reshape(3)


def normalize(v: FloatArray) -> FloatArray:
    """Normalise vectors along the last axis, (..., 3) -> (..., 3)."""
    return v / np.linalg.norm(v, axis=-1, keepdims=True)
