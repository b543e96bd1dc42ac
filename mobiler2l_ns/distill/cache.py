"""The pseudo-view cache: a folder of checksummed shards plus a manifest.

Layout of a cache folder::

    manifest.json        what the cache is: teacher id, pose config (+ hash), shard size, encoding
    shard-00000.m2lp     views 0 .. S-1
    shard-00001.m2lp     views S .. 2S-1
    ...

The shard file format is :mod:`mobiler2l_ns.distill.shards`. Shards and the manifest are written
with :func:`mobiler2l_ns.utils.io.write_atomic` (durable: fsync'd, then renamed from a hidden
temporary ``.NAME.tmp-PID`` beside them), so a shard file is always complete; a truncated or
otherwise damaged one fails its checksum and is reported by name.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence, Tuple

from torch import Tensor

from mobiler2l_ns.distill.shards import (
    ENCODINGS,
    FORMAT,
    VERSION,
    Encoding,
    ShardError,
    ShardViews,
    decode_image,
    decode_shard,
    encode_shard,
    parse_shard,
    read_header,
    shard_name,
)
from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.utils.io import TEMP_MARKER, write_atomic

MANIFEST = "manifest.json"
SHARD_PATTERN = re.compile(r"shard-(\d{5,})\.m2lp")
WRITABLE_HINT = (
    "choose a writable cache folder (ns-train: --pipeline.datamanager.pseudo-cache DIR; "
    "mobiler2l-pseudo generate: --cache DIR)"
)


@dataclass(frozen=True)
class CacheSpec:
    """What a cache must hold: checked against its manifest and every shard header."""

    teacher_id: str
    poses: Dict[str, object]
    """:func:`mobiler2l_ns.distill.poses.pose_fingerprint` (includes ``count`` and ``hash``)."""
    shard_size: int
    encoding: Encoding
    teacher: Optional[Dict[str, object]] = None
    """Informational (config path, checkpoint, step): recorded, not compared."""

    @property
    def count(self) -> int:
        return int(self.poses["count"])  # type: ignore[arg-type]

    @property
    def pose_hash(self) -> str:
        return str(self.poses["hash"])

    @property
    def num_shards(self) -> int:
        return math.ceil(self.count / self.shard_size)

    def shard_range(self, index: int) -> Tuple[int, int]:
        """First and one-past-last view of shard ``index``."""
        return index * self.shard_size, min((index + 1) * self.shard_size, self.count)

    def manifest(self) -> dict:
        return {
            "format": FORMAT,
            "version": VERSION,
            "teacher_id": self.teacher_id,
            "teacher": self.teacher or {},
            "poses": self.poses,
            "count": self.count,
            "shard_size": self.shard_size,
            "num_shards": self.num_shards,
            "encoding": self.encoding,
        }


def describe_pose_difference(cached: dict, wanted: dict) -> str:
    """'seed 0 (cache) vs 1 (this run), ...' for the pose settings that differ."""
    keys = sorted((set(cached) | set(wanted)) - {"hash"})
    diffs = [
        f"{k} {cached.get(k)!r} (cache) vs {wanted.get(k)!r} (this run)" for k in keys if cached.get(k) != wanted.get(k)
    ]
    return ", ".join(diffs) or f"pose hash {cached.get('hash')} vs {wanted.get('hash')}"


def read_manifest(root: Path) -> dict:
    """The manifest of the cache at ``root`` (InputError if missing or unreadable)."""
    path = root / MANIFEST
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"pseudo cache {root}: no {MANIFEST} (not a pseudo-view cache)") from None
    except (OSError, ValueError) as err:
        raise InputError(f"pseudo cache {root}: {MANIFEST} is unreadable ({err.__class__.__name__})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise InputError(f"pseudo cache {root}: {MANIFEST} is not a {FORMAT} manifest")
    if manifest.get("version") != VERSION:
        raise InputError(f"pseudo cache {root}: format version {manifest.get('version')}, this code reads {VERSION}")
    return manifest


def refuse_other_teacher(root: Path, manifest: dict, teacher_id: str) -> None:
    """InputError unless the cache's manifest names the teacher ``teacher_id``."""
    if manifest["teacher_id"] != teacher_id:
        made_by = (manifest.get("teacher") or {}).get("config", "?")
        raise InputError(
            f"pseudo cache {root} was rendered by another teacher (id {manifest['teacher_id']}, "
            f"{made_by}), not this one (id {teacher_id}); use another cache folder"
        )


def spec_from_manifest(manifest: dict) -> CacheSpec:
    """The spec a manifest describes (for ``check`` without a teacher)."""
    return CacheSpec(
        teacher_id=str(manifest["teacher_id"]),
        poses=dict(manifest["poses"]),
        shard_size=int(manifest["shard_size"]),
        encoding=manifest["encoding"],
        teacher=manifest.get("teacher"),
    )


class PseudoCache:
    """A cache folder for one :class:`CacheSpec`; see the module docstring for the files."""

    def __init__(self, root: Path, spec: CacheSpec) -> None:
        if spec.shard_size < 1:
            raise ValueError(f"shard size must be >= 1, got {spec.shard_size}")
        if spec.encoding not in ENCODINGS:
            raise ValueError(f"encoding must be one of {ENCODINGS}, got {spec.encoding!r}")
        self.root = Path(root)
        self.spec = spec

    @property
    def what(self) -> str:
        """How write errors name the cache: ``pseudo cache ROOT``."""
        return f"pseudo cache {self.root}"

    # ---------------------------------------------------------------- manifest

    def open(self, create: bool = True) -> None:
        """Check the manifest against the spec (InputError naming what differs), or write it."""
        path = self.root / MANIFEST
        if not path.exists():
            if not create:
                raise InputError(f"pseudo cache {self.root}: no {MANIFEST}")
            if self.root.exists() and any(SHARD_PATTERN.fullmatch(p.name) for p in self.root.iterdir()):
                raise InputError(f"pseudo cache {self.root}: shards but no {MANIFEST}; use an empty folder")
            try:
                self.root.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise InputError(
                    f"pseudo cache {self.root}: cannot create it ({err.strerror or err}); {WRITABLE_HINT}"
                ) from None
            text = json.dumps(self.spec.manifest(), indent=2, sort_keys=True) + "\n"
            write_atomic(path, text.encode(), durable=True, what=self.what)  # every rank writes the same bytes
            return
        manifest = read_manifest(self.root)
        ours = self.spec
        refuse_other_teacher(self.root, manifest, ours.teacher_id)
        if manifest["poses"].get("hash") != ours.pose_hash:
            raise InputError(
                f"pseudo cache {self.root} was made with another pose config "
                f"({describe_pose_difference(manifest['poses'], ours.poses)}); use another cache folder"
            )
        for key in ("shard_size", "encoding"):
            if manifest[key] != getattr(ours, key):
                raise InputError(
                    f"pseudo cache {self.root} was made with {key} {manifest[key]!r}, this run asks for "
                    f"{getattr(ours, key)!r}; use another cache folder"
                )

    def require_writable(self, shards_to_write: int) -> None:
        """InputError when shards must be written (or removed) but the cache folder is read-only."""
        if shards_to_write and not os.access(self.root, os.W_OK | os.X_OK):
            raise InputError(
                f"pseudo cache {self.root}: not writable, and {shards_to_write} shard(s) are to be rendered; "
                + WRITABLE_HINT
            )

    # ---------------------------------------------------------------- shards

    def shard_path(self, index: int) -> Path:
        return self.root / shard_name(index)

    def read(self, index: int) -> Tuple[dict, memoryview]:
        """Header and payload of shard ``index``, checked (size, checksum, teacher, poses, range)."""
        path = self.shard_path(index)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ShardError(path.name, "missing", "not rendered yet") from None
        header, payload = parse_shard(path.name, data)
        start, stop = self.spec.shard_range(index)
        if header.get("teacher_id") != self.spec.teacher_id or header.get("pose_hash") != self.spec.pose_hash:
            raise ShardError(path.name, "foreign", "made by another teacher or pose config than the manifest's")
        if (header.get("shard"), header.get("start"), header.get("count")) != (index, start, stop - start):
            raise ShardError(path.name, "corrupt", "header does not match its position in the cache")
        if header.get("encoding") != self.spec.encoding:
            raise ShardError(path.name, "foreign", f"encoding {header.get('encoding')}")
        return header, payload

    def load(self, index: int) -> ShardViews:
        """The checked, decoded views of shard ``index``."""
        return decode_shard(*self.read(index))

    def check(self, indices: Iterable[int]) -> Dict[int, Optional[ShardError]]:
        """``{index: None (valid) or the ShardError}`` for each shard index."""
        result: Dict[int, Optional[ShardError]] = {}
        for index in indices:
            try:
                self.read(index)
                result[index] = None
            except ShardError as err:
                result[index] = err
        return result

    def write(self, index: int, views: ShardViews) -> Path:
        """Encode and atomically write shard ``index``."""
        start, stop = self.spec.shard_range(index)
        if views.start != start or len(views.images) != stop - start:
            raise ValueError(f"shard {index} holds views {start}..{stop - 1}, got {views.start} + {len(views.images)}")
        data = encode_shard(index, views, self.spec.teacher_id, self.spec.pose_hash, self.spec.encoding)
        path = self.shard_path(index)
        write_atomic(path, data, durable=True, what=self.what)
        return path

    def remove_temporaries(self, indices: Sequence[int]) -> List[Path]:
        """Delete leftover temporary files of the given shards (an interrupted writer's): today's
        ``.shard-K.m2lp.tmp-PID`` and the ``shard-K.m2lp.tmp-PID`` of caches written before."""
        names = {shard_name(i) for i in indices}
        removed = []
        for path in self.root.glob(f"*shard-*.m2lp{TEMP_MARKER}*"):
            if path.name.split(TEMP_MARKER)[0].removeprefix(".") in names:
                try:
                    path.unlink(missing_ok=True)
                except OSError:  # a read-only cache that needs nothing written: the leftover is harmless
                    continue
                removed.append(path)
        return removed

    def remove(self, index: int) -> None:
        self.shard_path(index).unlink(missing_ok=True)

    def existing_bytes(self) -> Tuple[int, int]:
        """(bytes of all shard files, views in them) — for bytes-per-view statistics."""
        total, views = 0, 0
        for index in range(self.spec.num_shards):
            path = self.shard_path(index)
            if path.exists():
                total += path.stat().st_size
                start, stop = self.spec.shard_range(index)
                views += stop - start
        return total, views


def owned_shards(num_shards: int, rank: int, world_size: int) -> List[int]:
    """Shards that rank ``rank`` of ``world_size`` renders: every ``world_size``-th from ``rank``."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"invalid rank {rank} of world size {world_size}")
    return list(range(rank, num_shards, world_size))


def shard_problems_message(root: Path, problems: Dict[int, ShardError], flag: str) -> str:
    """One line naming every unusable shard and the flag that re-renders them."""
    listed = "; ".join(str(err) for err in list(problems.values())[:8])
    more = f" and {len(problems) - 8} more" if len(problems) > 8 else ""
    return f"pseudo cache {root}: unusable shard(s) {listed}{more}; rerun with {flag} to render them again"


class ViewReader:
    """Random access to single views of valid shards (their checksums were checked before)."""

    def __init__(self, cache: PseudoCache) -> None:
        self.cache = cache
        self._headers: Dict[int, Tuple[dict, int]] = {}

    def _header(self, shard: int) -> Tuple[dict, int]:
        if shard not in self._headers:
            with open(self.cache.shard_path(shard), "rb") as f:
                self._headers[shard] = read_header(f)
        return self._headers[shard]

    def image(self, view: int) -> Tensor:
        """The stored image of view ``view`` (uint8 or float16 ``[H, W, 3]``)."""
        shard = view // self.cache.spec.shard_size
        header, payload_start = self._header(shard)
        offset, length, height, width = header["images"][view - int(header["start"])]
        with open(self.cache.shard_path(shard), "rb") as f:
            f.seek(payload_start + offset)
            blob = f.read(length)
        return decode_image(blob, header["encoding"], height, width)
