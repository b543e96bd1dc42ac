"""The pseudo-view shard file: stored image encodings and the checksummed shard bytes.

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

Images are either ``png`` (uint8 RGB, lossless PNG, zlib level 6) or ``fp16`` (float16 RGB, byte planes split
then zlib). Encoding is deterministic: the same views give byte-identical shards. The folder of
shards and its manifest are :mod:`mobiler2l_ns.distill.cache`.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import zlib
from dataclasses import dataclass
from typing import BinaryIO, List, Literal, Tuple

import numpy as np
import torch
from jaxtyping import Float
from PIL import Image
from torch import Tensor

from mobiler2l_ns.utils.io import encode_png, to_uint8

MAGIC = b"M2LPSV01"
FORMAT = "mobiler2l-pseudo-views"
VERSION = 1
DIGEST_BYTES = 32

Encoding = Literal["png", "fp16"]
ENCODINGS = ("png", "fp16")


def shard_name(index: int) -> str:
    """File name of shard ``index``."""
    return f"shard-{index:05d}.m2lp"


# --------------------------------------------------------------------------- images


def to_storage(rgb: Float[Tensor, "H W 3"], encoding: Encoding) -> Tensor:
    """A rendered ``[H, W, 3]`` float image in the stored precision (CPU): uint8 (png) or float16 (fp16)."""
    rgb = rgb.detach().float().clamp(0.0, 1.0).cpu()
    if encoding == "png":
        return torch.from_numpy(to_uint8(rgb.numpy()))
    return rgb.to(torch.float16)


def encode_image(image: Tensor, encoding: Encoding) -> bytes:
    """Bytes of one stored ``[H, W, 3]`` image (uint8 for png, float16 for fp16)."""
    array = np.ascontiguousarray(image.numpy())
    if encoding == "png":
        if array.dtype != np.uint8:
            raise ValueError(f"png stores uint8 images, got {array.dtype}")
        return encode_png(array)
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


def read_header(f: BinaryIO) -> Tuple[dict, int]:
    """Header of an open shard file (not checked: its checksum was checked before) and where its
    payload starts; reads only the header."""
    f.seek(0)
    (header_len,) = struct.unpack_from("<I", f.read(len(MAGIC) + 4), len(MAGIC))
    return json.loads(f.read(header_len)), len(MAGIC) + 4 + header_len


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
