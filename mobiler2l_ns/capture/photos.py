"""Photos shrunk before COLMAP: a phone's full-resolution photos cost COLMAP minutes it does not need.

COLMAP's CPU SIFT extracts up to 8,192 features from an image up to 3,200 px, and exhaustive matching
compares every pair of photos' features, so a 12 MP phone capture spends most of its processing time
on matching, while the CPU chain trains on images of at most 1,600 px anyway (the nerfstudio-data
dataparser's automatic downscale). :func:`shrink_photos` writes copies whose longer side is at most
``max_size`` (Pillow, Lanczos; JPEG quality 95 with the photo's EXIF, so COLMAP still reads the focal
length) under the same relative names, so ``ns-process-data`` lists them in the same order.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence, Tuple

from PIL import Image, UnidentifiedImageError
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

MAX_PHOTO_SIZE = 1600
"""Default longest side (px) of the photos COLMAP sees (``mobiler2l-process --max-photo-size``, 0: keep)."""


def photo_size(path: Path) -> Optional[Tuple[int, int]]:
    """``(width, height)`` of a photo from its header, None when Pillow cannot read it (a camera raw)."""
    try:
        with Image.open(path) as image:
            return image.size
    except (OSError, UnidentifiedImageError):
        return None


def largest_side(photos: Sequence[Path]) -> Optional[int]:
    """The longest side among ``photos``, None when Pillow cannot read one of them (nothing to shrink then)."""
    sizes = [photo_size(path) for path in photos]
    if not sizes or any(size is None for size in sizes):
        return None
    return max(max(size) for size in sizes if size is not None)


def shrink_photo(src: Path, dst: Path, max_size: int) -> Tuple[Tuple[int, int], Tuple[int, int]]:
    """Write ``src`` to ``dst`` with its longer side at most ``max_size``; returns ``(width, height)`` before
    and after.

    The aspect ratio is kept (each side rounded); JPEGs keep their EXIF block (focal length, camera model;
    orientation included, as the pixels are not rotated) and are written at quality 95.
    """
    with Image.open(src) as image:
        before = image.size
        exif = image.info.get("exif")
        icc = image.info.get("icc_profile")
        image.thumbnail((max_size, max_size), Image.Resampling.LANCZOS)  # decodes JPEGs at a reduced scale
        dst.parent.mkdir(parents=True, exist_ok=True)
        options = {"quality": 95} if image.format == "JPEG" or dst.suffix.lower() in (".jpg", ".jpeg") else {}
        if exif:
            options["exif"] = exif
        if icc:
            options["icc_profile"] = icc
        image.save(dst, **options)
        return before, image.size


def shrink_photos(photos: Sequence[Path], root: Path, out: Path, max_size: int) -> int:
    """Copies of ``photos`` (files under ``root``) in ``out`` under the same relative paths, each with
    its longer side at most ``max_size`` px (smaller photos are copied as they are decoded and saved).
    Returns how many were made smaller. Shows a rich progress bar."""
    shrunk = 0
    columns = (TextColumn("shrinking photos for COLMAP"), BarColumn(), MofNCompleteColumn())
    with Progress(*columns, transient=True) as progress:
        task = progress.add_task("shrink", total=len(photos))
        for path in photos:
            before, after = shrink_photo(path, out / path.relative_to(root), max_size)
            shrunk += int(after != before)
            progress.advance(task)
    return shrunk
