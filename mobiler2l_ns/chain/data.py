"""What ``mobiler2l run DATA`` was given: a Blender scene, an ns-process-data folder, photos or a video."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from mobiler2l_ns.utils.data_checks import VIDEO_SUFFIXES, list_photos
from mobiler2l_ns.utils.errors import InputError

DataKind = Literal["blender", "nerfstudio", "images", "video"]


def data_kind(data: Path) -> DataKind:
    """What ``data`` is; InputError (one line) when it is none of the four accepted kinds."""
    if not data.exists():
        raise InputError(f"DATA {data}: no such file or folder")
    if data.is_file():
        if data.suffix.lower() in VIDEO_SUFFIXES:
            return "video"
        raise InputError(f"DATA {data}: a file, but not a video ({', '.join(VIDEO_SUFFIXES)})")
    if (data / "transforms_train.json").is_file():
        return "blender"
    if (data / "transforms.json").is_file():
        return "nerfstudio"
    if list_photos(data):
        return "images"
    raise InputError(
        f"DATA {data}: expected a Blender scene (transforms_train.json), an ns-process-data folder "
        "(transforms.json), a folder of photos or a video"
    )
