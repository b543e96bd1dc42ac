"""Checks that a dataset folder holds what its dataparser will read, before nerfstudio reads it."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List

from mobiler2l_ns.utils.errors import InputError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".PNG", ".JPG", ".JPEG")


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


def check_dataset(data: Path, parser: str) -> None:
    """Raise InputError unless ``data`` looks loadable by ``parser`` ("blender" or "nerfstudio").

    Other parsers only get the existence check: nerfstudio validates them itself.
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
        return
    meta = read_transforms(transforms)
    if not frame_images(meta, root, suffix):
        raise InputError(
            f"--data {data}: no images found ({transforms.name} lists {len(meta['frames'])} frames, "
            "none of whose image files exist)"
        )
