"""Checks that a dataset folder holds what its dataparser will read, before nerfstudio reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

from mobiler2l_ns.utils.errors import InputError

PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".tif", ".tiff", ".cr2")
"""Photo files every entry point takes (``ns-process-data images``'s list), compared case-insensitively."""
UNSUPPORTED_PHOTO_SUFFIXES = {".heic": "HEIC", ".heif": "HEIF", ".avif": "AVIF", ".dng": "DNG"}
"""Photo formats phones write that ``ns-process-data`` (COLMAP) cannot read."""
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm")
"""Video files the chain takes as DATA (``ns-process-data video``), compared case-insensitively."""


def is_photo(path: Path) -> bool:
    """Whether ``path`` ends in an accepted photo suffix (any case: ``.JPG``, ``.Jpg``, ``.tif``)."""
    return Path(path).suffix.lower() in PHOTO_SUFFIXES


def list_photos(folder: Path) -> List[Path]:
    """Photo files under ``folder`` (recursively, hidden names skipped), sorted, as ``ns-process-data`` lists them.

    InputError (one line) when the folder holds no accepted photo but photos of a format COLMAP cannot
    read (e.g. an iPhone's ``.HEIC``).
    """
    files = sorted(p for p in Path(folder).glob("**/[!.]*") if p.is_file())
    photos = [p for p in files if is_photo(p)]
    if not photos:
        unsupported = [p for p in files if p.suffix.lower() in UNSUPPORTED_PHOTO_SUFFIXES]
        if unsupported:
            kind = UNSUPPORTED_PHOTO_SUFFIXES[unsupported[0].suffix.lower()]
            raise InputError(
                f"{folder}: {len(unsupported)} {kind} photos ({unsupported[0].name}, ...) and none of "
                f"{', '.join(PHOTO_SUFFIXES)}: {kind} is not supported, convert them to JPEG first "
                "(e.g. `heif-convert`, or the phone's 'most compatible' camera setting)"
            )
    return photos


def read_transforms(path: Path) -> dict:
    """Parse a transforms JSON file or raise a one-line InputError naming it."""
    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
    except json.JSONDecodeError as err:
        raise InputError(f"{path}: not valid JSON (line {err.lineno}: {err.msg})") from None
    except (OSError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: cannot be read ({err.__class__.__name__}: {err})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("frames"), list):
        raise InputError(f"{path}: expected a JSON object with a 'frames' list")
    return meta


def frame_images(meta: dict, root: Path, default_suffix: str = "") -> List[Path]:
    """The image files a transforms file's frames name that exist on disk."""
    found = []
    for frame in meta["frames"]:
        name = frame.get("file_path") if isinstance(frame, dict) else None
        if not name:
            continue
        path = root / name
        candidates = [path] if path.suffix else [path.with_name(path.name + default_suffix)]
        found += [c for c in candidates if c.is_file()]
    return found


def parser_kind(dataparser_config: object) -> str:
    """'blender', 'nerfstudio' or 'other': which layout check applies to a dataparser config."""
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

    if isinstance(dataparser_config, BlenderDataParserConfig):
        return "blender"
    if isinstance(dataparser_config, NerfstudioDataParserConfig):
        return "nerfstudio"
    return "other"


def check_datamanager_data(config) -> None:
    """Check the dataset a datamanager config points at (``--data`` or the dataparser's data)."""
    data = config.data if config.data is not None else config.dataparser.data
    check_dataset(data, parser_kind(config.dataparser))


def check_dataset(data: Path, parser: str, frames: bool = True) -> int:
    """Raise InputError unless ``data`` looks loadable by ``parser`` ("blender" or "nerfstudio").

    Other parsers only get the existence check: nerfstudio validates them itself. ``frames``: also
    check every frame (:func:`check_frames`); ``mobiler2l-check-capture`` reports bad frames as
    findings instead (all of them, not the first). Returns the number of frames checked (every
    split's; 0 without ``frames`` or for other parsers).
    """
    data = Path(data)
    if not data.exists():
        raise InputError(f"--data {data}: no such file or folder")
    if parser == "blender":
        transforms = data / "transforms_train.json"
        if not transforms.is_file():
            raise InputError(f"--data {data}: no transforms_train.json (Blender format expected)")
        root, suffix = data, ".png"
    elif parser == "nerfstudio":
        transforms = data if data.suffix == ".json" else data / "transforms.json"
        if not transforms.is_file():
            raise InputError(f"--data {data}: no transforms.json (run ns-process-data first)")
        root, suffix = transforms.parent, ""
    else:
        return 0
    meta = read_transforms(transforms)
    if not frame_images(meta, root, suffix):
        raise InputError(
            f"--data {data}: no images found ({transforms.name} lists {len(meta['frames'])} frames, "
            "none of whose image files exist)"
        )
    if not frames:
        return 0
    if parser != "blender":
        return check_frames(transforms, meta, root, suffix, parser)
    splits = [data / f"transforms_{split}.json" for split in BLENDER_SPLITS]
    return sum(check_frames(path, read_transforms(path), root, suffix, parser) for path in splits if path.is_file())


BLENDER_SPLITS = ("train", "val", "test")
"""Splits of a Blender scene the dataparser may read (each checked when its file exists)."""
NERFSTUDIO_INTRINSICS = ("fl_x", "fl_y", "cx", "cy", "w", "h")
"""Intrinsics a nerfstudio-data transforms.json gives once for all frames or per frame."""


def check_frames(transforms: Path, meta: dict, root: Path, default_suffix: str, parser: str) -> int:
    """Every frame the dataparser will read, before it reads any: its keys, its image (exists, decodes)
    and its size; InputError (one line) naming the transforms file and the first bad frame. Returns
    the number of frames checked.

    Sizes: a Blender split has one image size (its dataparser reads the first image's); a
    nerfstudio-data frame's image has the size its ``w`` / ``h`` state (a downscaled copy in
    ``images_N/`` is accepted when all frames of that stated size share it).
    """
    if parser == "blender" and not isinstance(meta.get("camera_angle_x"), (int, float)):
        raise InputError(f"{transforms}: no 'camera_angle_x' (the horizontal field of view in radians)")
    sizes: dict = {}
    for index, frame in enumerate(meta["frames"]):
        where = f"{transforms}: frame {index}"
        if not isinstance(frame, dict) or not frame.get("file_path"):
            raise InputError(f"{where}: no 'file_path'")
        where = f"{transforms}: frame {index} ({frame['file_path']})"
        matrix = frame.get("transform_matrix")
        if not _is_pose(matrix):
            raise InputError(f"{where}: 'transform_matrix' must be a 4x4 (or 3x4) list of numbers")
        if parser == "nerfstudio":
            missing = [k for k in NERFSTUDIO_INTRINSICS if k not in frame and k not in meta]
            if missing:
                raise InputError(f"{where}: no {', '.join(repr(k) for k in missing)} (neither per frame nor for all)")
        path = root / frame["file_path"]
        if not path.suffix:
            path = path.with_name(path.name + default_suffix)
        size = _image_size(path, where)
        stated = (frame.get("w", meta.get("w")), frame.get("h", meta.get("h"))) if parser == "nerfstudio" else None
        first = sizes.setdefault(stated, (size, index))
        if first[0] != size:
            (w0, h0), i0 = first
            raise InputError(
                f"{where}: image is {size[0]}x{size[1]} but frame {i0}'s is {w0}x{h0} "
                + ("(a Blender split needs one image size)" if parser == "blender" else f"(both state w x h {stated})")
            )
    return len(meta["frames"])


def _is_pose(matrix) -> bool:
    """A 4x4 or 3x4 nested list of finite numbers."""
    import math

    if not isinstance(matrix, list) or len(matrix) not in (3, 4):
        return False
    return all(
        isinstance(row, list) and len(row) == 4 and all(isinstance(v, (int, float)) and math.isfinite(v) for v in row)
        for row in matrix
    )


def _image_size(path: Path, where: str) -> tuple:
    """(width, height) of the image at ``path`` after checking that it decodes; InputError naming ``where``."""
    from PIL import Image, UnidentifiedImageError

    if not path.is_file():
        raise InputError(f"{where}: image file {path} does not exist")
    try:
        with Image.open(path) as image:
            size = image.size
            image.verify()  # chunk structure and checksums, without decoding every pixel
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as err:
        kind = "empty file" if path.stat().st_size == 0 else f"{err.__class__.__name__}: {err}"
        raise InputError(f"{where}: {path} is not a readable image ({kind})") from None
    return size
