"""Per-image statistics of a capture: brightness (mean luma) and sharpness (normalised variance of the Laplacian)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Tuple

import numpy as np
from numpy.typing import NDArray
from PIL import Image

FloatArray = NDArray[np.float64]


def load_grey(path: Path, size: int) -> Tuple[FloatArray, Optional[FloatArray]]:
    """Luma ``[H, W]`` in [0, 1] (Rec. 601 weights on the sRGB values) and alpha ``[H, W]`` (None when
    opaque) of an image downscaled to at most ``size`` pixels on its long side."""
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft("RGB", (size, size))  # decode at a reduced scale: fast for large photos
        img.load()
        has_alpha = img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info)
        img = img.convert("RGBA" if has_alpha else "RGB")
        if max(img.size) > size:
            scale = size / max(img.size)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BOX)
        pixels = np.asarray(img, dtype=np.float64) / 255.0
    grey = pixels[..., 0] * 0.299 + pixels[..., 1] * 0.587 + pixels[..., 2] * 0.114
    return grey, (pixels[..., 3] if has_alpha else None)


def laplacian(grey: FloatArray) -> FloatArray:
    """4-neighbour Laplacian of ``[H, W]`` at interior pixels, ``[H-2, W-2]``."""
    return grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1]


def image_statistics(path: Path, size: int) -> Tuple[float, float]:
    """``(brightness, sharpness)`` of one image.

    Brightness: mean luma; of an image with alpha, the alpha-weighted mean (the object, not the
    transparent background). Sharpness: variance of the Laplacian over the variance of the luma, at
    interior pixels (with alpha: those with alpha > 0.5, on the image composited on white as the
    Blender presets train): contrast-independent, so a darker frame is not taken for a blurrier one.
    """
    grey, alpha = load_grey(path, size)
    if alpha is not None:
        brightness = float((grey * alpha).sum() / alpha.sum()) if alpha.sum() > 0 else 1.0
        grey = grey * alpha + (1.0 - alpha)
        inside = alpha[1:-1, 1:-1] > 0.5
    else:
        brightness = float(grey.mean())
        inside = np.ones((grey.shape[0] - 2, grey.shape[1] - 2), dtype=bool)
    if inside.sum() < 16:
        return brightness, float("nan")
    lap = laplacian(grey)[inside]
    values = grey[1:-1, 1:-1][inside]
    return brightness, float(lap.var() / max(values.var(), 1e-8))
