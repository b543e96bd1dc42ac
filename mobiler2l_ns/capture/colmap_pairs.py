"""What COLMAP's matcher concluded about the photo pairs of a processed capture (``DATA/colmap/database.db``).

Each verified pair of photos gets a two-view configuration (COLMAP's ``TwoViewGeometry``): calibrated or
uncalibrated (general motion, with parallax), planar, or one *without parallax*: panoramic (a pure rotation),
planar-or-panoramic, or *watermark* (the matched features in the image borders move by one 2D shift; COLMAP
leaves those out of the reconstruction). A capture whose pairs mostly lack parallax had a background that
stayed put while the view changed: a turntable capture (the object turned, the camera stood still). In a
walk-around they are a minority (a rendered 24-photo walk-around: 11 of 54 pairs).
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from typing import Dict, Tuple

PANORAMIC, PLANAR_OR_PANORAMIC, WATERMARK = 5, 6, 7
"""COLMAP's ``TwoViewGeometry`` configurations without parallax."""
NO_PARALLAX = (PANORAMIC, PLANAR_OR_PANORAMIC, WATERMARK)


def database_path(data: Path) -> Path:
    """Where ``ns-process-data`` leaves COLMAP's database in a processed capture folder (``data``: the folder
    or its ``transforms.json``)."""
    folder = Path(data).parent if Path(data).suffix == ".json" else Path(data)
    return folder / "colmap" / "database.db"


def pair_configurations(database: Path) -> Dict[int, int]:
    """Photo pairs with verified (inlier) matches per COLMAP two-view configuration; ``{}`` when the
    database is missing or unreadable (read-only access, never modified)."""
    if not Path(database).is_file():
        return {}
    try:
        with closing(sqlite3.connect(f"file:{Path(database).resolve()}?mode=ro", uri=True)) as db:
            rows = db.execute("SELECT config, COUNT(*) FROM two_view_geometries WHERE rows > 0 GROUP BY config")
            return {int(config): int(count) for config, count in rows.fetchall()}
    except sqlite3.Error:
        return {}


def no_parallax_pairs(configurations: Dict[int, int]) -> Tuple[int, int]:
    """``(pairs without parallax, all verified pairs)`` of :func:`pair_configurations`' counts."""
    return sum(configurations.get(config, 0) for config in NO_PARALLAX), sum(configurations.values())
