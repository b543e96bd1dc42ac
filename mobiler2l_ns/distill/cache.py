"""The pseudo-view cache: a folder of checksummed shards plus a manifest.

Layout of a cache folder::

    manifest.json        what the cache is: teacher id, pose config (+ hash), shard size, encoding
    shard-00000.m2lp     views 0 .. S-1
    shard-00001.m2lp     views S .. 2S-1
    ...

Shard file (little-endian)::

    offset 0    8 bytes   magic b"M2LPSV01"
    offset 8    uint32    H, length of the header
    offset 12   H bytes   header, UTF-8 JSON (sorted keys): format, version, shard, start, count,
                          teacher_id, pose_hash, encoding, payload_bytes, and where in the payload
                          the arrays and images are ("c2w", "intrinsics": [offset, bytes];
                          "images": [[offset, bytes, height, width], ...])
    offset 12+H P bytes   payload: c2w float32 [n, 3, 4], intrinsics float32 [n, 6]
                          (fx, fy, cx, cy, width, height), then one encoded image per view
    end         32 bytes  SHA-256 of everything before it

Images are either ``png`` (uint8 RGB, lossless PNG) or ``fp16`` (float16 RGB, byte planes split
then zlib). Shards are written to a temporary name in the folder and renamed, so a shard file is
always complete; a truncated or otherwise damaged one fails its checksum and is reported by name.
Encoding is deterministic: the same teacher, poses and settings give byte-identical shards.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import re
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Literal, Optional, Sequence, Tuple

import numpy as np
import torch
from PIL import Image
from torch import Tensor

from mobiler2l_ns.utils.errors import InputError

MAGIC = b"M2LPSV01"
FORMAT = "mobiler2l-pseudo-views"
VERSION = 1
MANIFEST = "manifest.json"
SHARD_PATTERN = re.compile(r"shard-(\d{5,})\.m2lp")
TEMP_MARKER = ".tmp-"
WRITABLE_HINT = (
    "choose a writable cache folder (ns-train: --pipeline.datamanager.pseudo-cache DIR; "
    "mobiler2l-pseudo generate: --cache DIR)"
)
DIGEST_BYTES = 32
PNG_LEVEL = 6

Encoding = Literal["png", "fp16"]
ENCODINGS = ("png", "fp16")


def shard_name(index: int) -> str:
    """File name of shard ``index``."""
    return f"shard-{index:05d}.m2lp"


# --------------------------------------------------------------------------- images


def to_storage(rgb: Tensor, encoding: Encoding) -> Tensor:
    """A rendered ``[H, W, 3]`` float image in the stored precision (CPU): uint8 or float16."""
    rgb = rgb.detach().float().clamp(0.0, 1.0).cpu()
    if encoding == "png":
        return torch.round(rgb * 255.0).to(torch.uint8)
    return rgb.to(torch.float16)


def encode_image(image: Tensor, encoding: Encoding) -> bytes:
    """Bytes of one stored ``[H, W, 3]`` image (uint8 for png, float16 for fp16)."""
    array = np.ascontiguousarray(image.numpy())
    if encoding == "png":
        if array.dtype != np.uint8:
            raise ValueError(f"png stores uint8 images, got {array.dtype}")
        buffer = io.BytesIO()
        Image.fromarray(array, mode="RGB").save(buffer, format="PNG", compress_level=PNG_LEVEL)
        return buffer.getvalue()
    if array.dtype != np.float16:
        raise ValueError(f"fp16 stores float16 images, got {array.dtype}")
    planes = array.astype("<f2").view(np.uint8).reshape(-1, 2).T  # low bytes, then high bytes
    return zlib.compress(np.ascontiguousarray(planes).tobytes(), 6)


def decode_image(blob: bytes, encoding: Encoding, height: int, width: int) -> Tensor:
    """Inverse of :func:`encode_image`: ``[H, W, 3]`` uint8 (png) or float16 (fp16)."""
    if encoding == "png":
        with Image.open(io.BytesIO(blob)) as image:
            array = np.asarray(image.convert("RGB"))
    else:
        planes = np.frombuffer(zlib.decompress(blob), dtype=np.uint8).reshape(2, -1)
        array = np.ascontiguousarray(planes.T).view("<f2").reshape(height, width, 3)
    if array.shape != (height, width, 3):
        raise ValueError(f"decoded image is {array.shape}, expected {(height, width, 3)}")
    return torch.from_numpy(array.copy())


# --------------------------------------------------------------------------- shards


@dataclass
class ShardViews:
    """Views ``start .. start + n - 1`` of a cache: poses, intrinsics and stored images."""

    start: int
    c2w: Tensor
    """[n, 3, 4] float32."""
    intrinsics: Tensor
    """[n, 6] float32: fx, fy, cx, cy, width, height."""
    images: List[Tensor]
    """n stored images [H, W, 3] (uint8 or float16)."""


class ShardError(Exception):
    """A shard that cannot be used: ``kind`` is missing, truncated, corrupt or foreign."""

    def __init__(self, name: str, kind: str, detail: str) -> None:
        super().__init__(f"{name}: {kind} ({detail})")
        self.name, self.kind, self.detail = name, kind, detail


def encode_shard(index: int, views: ShardViews, teacher_id: str, pose_hash: str, encoding: Encoding) -> bytes:
    """The bytes of a shard file (see the module docstring)."""
    n = len(views.images)
    if views.c2w.shape != (n, 3, 4) or views.intrinsics.shape != (n, 6):
        raise ValueError(
            f"shard of {n} images with c2w {tuple(views.c2w.shape)}, intrinsics {tuple(views.intrinsics.shape)}"
        )
    c2w = views.c2w.float().numpy().astype("<f4").tobytes()
    intrinsics = views.intrinsics.float().numpy().astype("<f4").tobytes()
    blobs = [encode_image(image, encoding) for image in views.images]
    offset = len(c2w) + len(intrinsics)
    images = []
    for blob, image in zip(blobs, views.images):
        images.append([offset, len(blob), int(image.shape[0]), int(image.shape[1])])
        offset += len(blob)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "shard": index,
        "start": views.start,
        "count": n,
        "teacher_id": teacher_id,
        "pose_hash": pose_hash,
        "encoding": encoding,
        "c2w": [0, len(c2w)],
        "intrinsics": [len(c2w), len(intrinsics)],
        "images": images,
        "payload_bytes": offset,
    }
    header_bytes = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    body = b"".join([MAGIC, struct.pack("<I", len(header_bytes)), header_bytes, c2w, intrinsics, *blobs])
    return body + hashlib.sha256(body).digest()


def parse_shard(name: str, data: bytes) -> Tuple[dict, memoryview]:
    """Header and payload of a shard file's bytes, after checking size and checksum."""
    if len(data) < len(MAGIC) + 4:
        raise ShardError(name, "truncated", f"{len(data)} bytes")
    if data[: len(MAGIC)] != MAGIC:
        raise ShardError(name, "corrupt", "not a pseudo-view shard (bad magic)")
    (header_len,) = struct.unpack_from("<I", data, len(MAGIC))
    start = len(MAGIC) + 4
    if start + header_len + DIGEST_BYTES > len(data):
        raise ShardError(name, "truncated", f"{len(data)} bytes, header alone needs {start + header_len}")
    try:
        header = json.loads(bytes(data[start : start + header_len]))
        payload_bytes = int(header["payload_bytes"])
    except (ValueError, KeyError, TypeError):
        raise ShardError(name, "corrupt", "unreadable header") from None
    expected = start + header_len + payload_bytes + DIGEST_BYTES
    if len(data) < expected:
        raise ShardError(name, "truncated", f"{len(data)} of {expected} bytes")
    if len(data) > expected:
        raise ShardError(name, "corrupt", f"{len(data)} bytes, expected {expected}")
    if hashlib.sha256(memoryview(data)[:-DIGEST_BYTES]).digest() != data[-DIGEST_BYTES:]:
        raise ShardError(name, "corrupt", "checksum mismatch")
    if header.get("format") != FORMAT or header.get("version") != VERSION:
        raise ShardError(name, "corrupt", f"unknown format {header.get('format')} v{header.get('version')}")
    payload = memoryview(data)[start + header_len : start + header_len + payload_bytes]
    return header, payload


def decode_shard(header: dict, payload: memoryview) -> ShardViews:
    """The views of a parsed shard."""
    n = int(header["count"])
    c_off, c_len = header["c2w"]
    i_off, i_len = header["intrinsics"]
    c2w = torch.from_numpy(np.frombuffer(payload[c_off : c_off + c_len], dtype="<f4").reshape(n, 3, 4).copy())
    intrinsics = torch.from_numpy(np.frombuffer(payload[i_off : i_off + i_len], dtype="<f4").reshape(n, 6).copy())
    images = [
        decode_image(bytes(payload[off : off + length]), header["encoding"], height, width)
        for off, length, height, width in header["images"]
    ]
    return ShardViews(int(header["start"]), c2w.float(), intrinsics.float(), images)


def write_atomic(path: Path, data: bytes) -> None:
    """Write ``data`` to a temporary file beside ``path``, fsync it, then rename it to ``path``."""
    tmp = path.with_name(f"{path.name}{TEMP_MARKER}{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as err:  # disk full, file-size limit, read-only folder: nothing half-written stays
        tmp.unlink(missing_ok=True)
        raise InputError(f"pseudo cache {path.parent}: cannot write {path.name} ({err.strerror or err})") from None
    try:  # make the rename itself durable
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:  # pragma: no cover - platforms without directory fsync
        pass


# --------------------------------------------------------------------------- the cache


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
            write_atomic(path, text.encode())  # every rank writes the same bytes: a race is harmless
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
        write_atomic(path, data)
        return path

    def remove_temporaries(self, indices: Sequence[int]) -> List[Path]:
        """Delete leftover temporary files of the given shards (an interrupted writer's)."""
        names = {shard_name(i) for i in indices}
        removed = []
        for path in self.root.glob(f"shard-*.m2lp{TEMP_MARKER}*"):
            if path.name.split(TEMP_MARKER)[0] in names:
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
                prefix = f.read(len(MAGIC) + 4)
                (header_len,) = struct.unpack_from("<I", prefix, len(MAGIC))
                header = json.loads(f.read(header_len))
            self._headers[shard] = (header, len(MAGIC) + 4 + header_len)
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
