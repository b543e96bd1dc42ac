"""Reference onnxruntime runtime of a ``mobiler2l-onnx`` export: camera pose -> image.

The consumer that the tests (and a future browser viewer) are checked against::

    from mobiler2l_ns.export.runtime import OnnxLightField
    field = OnnxLightField("exports/lego")          # reads metadata.json and the three graphs
    rgb = field.render(c2w)                          # [H, W, 3] float32 in [0, 1]
    rgb = field.render(c2w_capture, original_coords=True)

CLI (``mobiler2l-render``)::

    mobiler2l-render EXPORT_DIR --out view.png                       # the reference (first training) pose
    mobiler2l-render EXPORT_DIR --pose 1 0 0 0  0 1 0 0  0 0 1 4 --out view.png
    mobiler2l-render EXPORT_DIR --pose-file pose.json --original-coords --out view.png
    mobiler2l-render EXPORT_DIR --orbit 36 --out orbit.gif

Pose convention: a nerfstudio camera-to-world matrix (OpenGL axes: the camera looks down its
-Z, +Y up, +X right), 3x4 or 4x4, row-major, in the dataparser's normalised world (the frame the
student was trained in). With ``original_coords`` / ``--original-coords`` the pose is in the
capture's original coordinates (e.g. a ``transform_matrix`` of the capture's transforms.json) and
is mapped with the run's dataparser transform ``T`` and scale ``s`` from ``metadata.json``:
``R' = T[:, :3] R``, ``t' = s (T[:, :3] t + T[:, 3])`` (what nerfstudio's dataparsers do).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Union

import numpy as np

from mobiler2l_ns.utils.errors import InputError, OneLineArgumentParser

METADATA_NAME = "metadata.json"
PoseLike = Union[np.ndarray, Sequence[Sequence[float]]]


def as_pose(c2w: PoseLike) -> np.ndarray:
    """A ``[3, 4]`` float64 camera-to-world matrix from a 3x4 / 4x4 array (or 12 / 16 numbers)."""
    pose = np.asarray(c2w, dtype=np.float64)
    if pose.ndim == 1 and pose.size in (12, 16):
        pose = pose.reshape(-1, 4)
    if pose.shape not in ((3, 4), (4, 4)):
        raise InputError(f"a camera pose must be a 3x4 or 4x4 camera-to-world matrix, got shape {pose.shape}")
    if not np.isfinite(pose).all():
        raise InputError("the camera pose contains NaN or infinite values")
    check_rotation(pose[:3, :3])
    return pose[:3, :4].copy()


ROTATION_TOLERANCE = 1e-3
"""Largest ``|R^T R - I|`` entry accepted in a camera pose (rounded JSON matrices stay far below it)."""


def check_rotation(rotation: np.ndarray) -> None:
    """InputError unless ``rotation`` (3x3) is a rotation: orthonormal columns, determinant +1."""
    error = float(np.abs(rotation.T @ rotation - np.eye(3)).max())
    det = float(np.linalg.det(rotation))
    if error > ROTATION_TOLERANCE or det < 0:
        raise InputError(
            f"the camera pose's left 3x3 block is not a rotation (|R^T R - I| = {error:.3g}, det {det:.3g}): "
            "expected a camera-to-world matrix [R | t] with R orthonormal, det +1"
        )


def to_normalised(c2w: PoseLike, transform: PoseLike, scale: float) -> np.ndarray:
    """Map an OpenGL c2w from the capture's original coordinates into the dataparser's normalised world."""
    pose = as_pose(c2w)
    T = np.asarray(transform, dtype=np.float64)[:3, :4]
    rotation = T[:, :3] @ pose[:, :3]
    translation = scale * (T[:, :3] @ pose[:, 3] + T[:, 3])
    return np.concatenate([rotation, translation[:, None]], axis=1)


def to_original(c2w: PoseLike, transform: PoseLike, scale: float) -> np.ndarray:
    """Inverse of :func:`to_normalised`."""
    pose = as_pose(c2w)
    T = np.asarray(transform, dtype=np.float64)[:3, :4]
    inv = np.linalg.inv(T[:, :3])
    rotation = inv @ pose[:, :3]
    translation = inv @ (pose[:, 3] / scale - T[:, 3])
    return np.concatenate([rotation, translation[:, None]], axis=1)


def rotation_about(axis: Sequence[float], angle: float) -> np.ndarray:
    """Rodrigues rotation matrix of ``angle`` radians about the unit vector ``axis``."""
    k = np.asarray(axis, dtype=np.float64)
    k = k / np.linalg.norm(k)
    K = np.array([[0.0, -k[2], k[1]], [k[2], 0.0, -k[0]], [-k[1], k[0], 0.0]])
    return np.eye(3) + math.sin(angle) * K + (1.0 - math.cos(angle)) * (K @ K)


def orbit_poses(base: PoseLike, orbit: Dict[str, Any], frames: int) -> List[np.ndarray]:
    """``frames`` poses around ``base`` (normalised world) as described by ``metadata["orbit"]``.

    ``turntable``: ``base`` rotated about ``orbit["axis"]`` through ``orbit["center"]``;
    ``circle`` (forward-facing): the camera centre moves on a circle of ``orbit["radius"]`` in the
    base camera's image plane, the rotation stays fixed.
    """
    pose = as_pose(base)
    poses = []
    for i in range(frames):
        angle = 2.0 * math.pi * i / frames
        if orbit["kind"] == "turntable":
            R = rotation_about(orbit["axis"], angle)
            centre = np.asarray(orbit["center"], dtype=np.float64)
            rotation = R @ pose[:, :3]
            translation = centre + R @ (pose[:, 3] - centre)
        else:
            offset = orbit["radius"] * (math.cos(angle) * pose[:, 0] + math.sin(angle) * pose[:, 1])
            rotation, translation = pose[:, :3], pose[:, 3] + offset
        poses.append(np.concatenate([rotation, translation[:, None]], axis=1))
    return poses


class OrtChain:
    """onnxruntime sessions of the three graphs: ``sampler -> embedder -> model``."""

    def __init__(self, sources: Dict[str, Any], threads: Optional[int] = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self.sessions = {}
        for name in ("sampler", "embedder", "model"):
            try:
                self.sessions[name] = ort.InferenceSession(
                    sources[name], sess_options=options, providers=["CPUExecutionProvider"]
                )
            except Exception as err:  # noqa: BLE001 - onnxruntime raises its own Fail/InvalidProtobuf types
                where = sources[name] if isinstance(sources[name], str) else f"the {name} graph"
                reason = (str(err).splitlines() or [""])[0][:200]
                raise InputError(f"{where}: onnxruntime cannot load it ({reason}); export it again") from None

    @classmethod
    def from_protos(cls, protos: Dict[str, Any], threads: Optional[int] = None) -> "OrtChain":
        """Sessions from in-memory ONNX ModelProtos."""
        return cls({name: proto.SerializeToString() for name, proto in protos.items()}, threads)

    def stages(self, c2w: PoseLike) -> Dict[str, np.ndarray]:
        """``points``, ``encoding`` and ``image`` (NCHW) of a normalised-world pose."""
        pose = as_pose(c2w)
        rotation = np.ascontiguousarray(pose[:, :3], dtype=np.float32)
        translation = np.ascontiguousarray(pose[:, 3], dtype=np.float32)
        (points,) = self.sessions["sampler"].run(None, {"rotation": rotation, "translation": translation})
        (encoding,) = self.sessions["embedder"].run(None, {"points": points})
        (image,) = self.sessions["model"].run(None, {"encoding": encoding})
        return {"points": points, "encoding": encoding, "image": image}

    def render(self, c2w: PoseLike) -> np.ndarray:
        """``[H, W, 3]`` float32 RGB in [0, 1] of a normalised-world pose."""
        return np.ascontiguousarray(self.stages(c2w)["image"][0].transpose(1, 2, 0))


class OnnxLightField:
    """A ``mobiler2l-onnx`` export directory, ready to render poses with onnxruntime (CPU)."""

    def __init__(self, export_dir: Union[str, Path], threads: Optional[int] = None):
        self.export_dir = Path(export_dir)
        meta_path = self.export_dir / METADATA_NAME
        if not meta_path.is_file():
            raise InputError(f"{export_dir}: not a mobiler2l-onnx export (no {METADATA_NAME})")
        try:
            self.metadata: Dict[str, Any] = json.loads(meta_path.read_text())
        except ValueError as err:
            raise InputError(f"{meta_path}: invalid JSON ({err})") from None
        if self.metadata.get("format") != "mobiler2l-onnx":
            raise InputError(f"{meta_path}: not a mobiler2l-onnx metadata file")
        if self.metadata.get("target") == "snap":
            raise InputError(
                f"{export_dir}: a --target snap export runs only in Lens Studio (GeluSnap op); "
                "export with the standard target for onnxruntime"
            )
        files = {}
        for name, spec in self.metadata["graphs"].items():
            path = self.export_dir / spec["file"]
            if not path.is_file():
                raise InputError(f"{export_dir}: missing {spec['file']}")
            files[name] = str(path)
        self.chain = OrtChain(files, threads)

    @property
    def height(self) -> int:
        return int(self.metadata["height"])

    @property
    def width(self) -> int:
        return int(self.metadata["width"])

    @property
    def reference_pose(self) -> np.ndarray:
        """The first training camera's pose (normalised world)."""
        return as_pose(self.metadata["reference_pose"])

    def normalise(self, c2w: PoseLike) -> np.ndarray:
        """Original capture coordinates -> normalised world (see module docstring)."""
        transform = self.metadata["dataparser_transform"]
        return to_normalised(c2w, transform["transform"], float(transform["scale"]))

    def render(self, c2w: PoseLike, original_coords: bool = False) -> np.ndarray:
        """``[H, W, 3]`` float32 RGB in [0, 1] seen from ``c2w``."""
        pose = self.normalise(c2w) if original_coords else as_pose(c2w)
        return self.chain.render(pose)

    def orbit(self, frames: int, base: Optional[PoseLike] = None, original_coords: bool = False) -> List[np.ndarray]:
        """Normalised-world poses of an orbit of ``frames`` views starting at ``base`` (default: reference)."""
        if base is None:
            pose = self.reference_pose
        else:
            pose = self.normalise(base) if original_coords else as_pose(base)
        return orbit_poses(pose, self.metadata["orbit"], frames)


def to_uint8(image: np.ndarray) -> np.ndarray:
    """[H, W, 3] float in [0, 1] -> uint8 (rounded)."""
    return (np.clip(image, 0.0, 1.0) * 255.0 + 0.5).astype(np.uint8)


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineArgumentParser(
        prog="mobiler2l-render",
        description="Render a mobiler2l-onnx export with onnxruntime (reference runtime).",
    )
    parser.add_argument("export_dir", type=Path, help="directory written by ns-export mobiler2l-onnx")
    parser.add_argument("--out", type=Path, required=True, help="output image (.png, .jpg) or, with --orbit, .gif")
    pose = parser.add_mutually_exclusive_group()
    pose.add_argument(
        "--pose",
        type=float,
        nargs="+",
        metavar="X",
        help="camera-to-world matrix, 12 (3x4) or 16 (4x4) numbers, row-major",
    )
    pose.add_argument(
        "--pose-file",
        type=Path,
        help="JSON file: a 3x4 / 4x4 matrix, or an object with 'transform_matrix' or 'camera_to_world'",
    )
    parser.add_argument(
        "--original-coords",
        action="store_true",
        help="the pose is in the capture's original coordinates (apply the stored dataparser transform and scale)",
    )
    parser.add_argument("--orbit", type=int, metavar="N", help="render an N-frame orbit starting at the pose as a GIF")
    parser.add_argument("--fps", type=float, default=15.0, help="GIF frame rate (default 15)")
    parser.add_argument("--threads", type=int, help="onnxruntime intra-op threads (default: onnxruntime's choice)")
    return parser


def read_pose_file(path: Path) -> np.ndarray:
    """A pose from a JSON file (matrix, or an object with 'transform_matrix' / 'camera_to_world')."""
    try:
        data = json.loads(path.read_text())
    except OSError as err:
        raise InputError(f"--pose-file {path}: {err.strerror or err}") from None
    except ValueError as err:
        raise InputError(f"--pose-file {path}: invalid JSON ({err})") from None
    if isinstance(data, dict):
        for key in ("transform_matrix", "camera_to_world", "c2w"):
            if key in data:
                data = data[key]
                break
        else:
            raise InputError(f"--pose-file {path}: expected a matrix or a 'transform_matrix' entry")
    try:
        return as_pose(data)
    except (TypeError, ValueError):
        raise InputError(f"--pose-file {path}: expected a 3x4 or 4x4 matrix of numbers") from None
    except InputError as err:
        raise InputError(f"--pose-file {path}: {err.message}") from None


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``mobiler2l-render``: one image, or an orbit GIF with ``--orbit N``."""
    args = build_parser().parse_args(argv)
    if args.orbit is not None and args.orbit < 1:
        raise InputError(f"--orbit must be a positive number of frames, got {args.orbit}")
    if args.orbit is not None and args.out.suffix.lower() != ".gif":
        raise InputError(f"--orbit writes an animated GIF: --out must end in .gif, got {args.out}")
    if args.fps <= 0:
        raise InputError(f"--fps must be positive, got {args.fps}")
    if args.threads is not None and args.threads < 1:
        raise InputError(f"--threads must be positive, got {args.threads}")
    base = None
    if args.pose is not None:
        if len(args.pose) not in (12, 16):
            raise InputError(f"--pose takes 12 (3x4) or 16 (4x4) numbers, got {len(args.pose)}")
        try:
            base = as_pose(args.pose)
        except InputError as err:
            raise InputError(f"--pose: {err.message}") from None
    elif args.pose_file is not None:
        base = read_pose_file(args.pose_file)
    if args.original_coords and base is None:
        raise InputError("--original-coords needs --pose or --pose-file")
    field = OnnxLightField(args.export_dir, threads=args.threads)
    if not args.out.parent.exists():
        raise InputError(f"--out {args.out}: directory {args.out.parent} does not exist")

    from PIL import Image

    try:
        if args.orbit is None:
            pose = field.reference_pose if base is None else (field.normalise(base) if args.original_coords else base)
            Image.fromarray(to_uint8(field.render(pose))).save(args.out)
        else:
            frames = [
                Image.fromarray(to_uint8(field.render(p))) for p in field.orbit(args.orbit, base, args.original_coords)
            ]
            frames[0].save(args.out, save_all=True, append_images=frames[1:], duration=round(1000.0 / args.fps), loop=0)
    except (OSError, ValueError) as err:  # unwritable path, unknown image extension
        raise InputError(f"--out {args.out}: cannot write ({err})") from None
    print(f"wrote {args.out}" + (f" ({args.orbit} frames)" if args.orbit else ""))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
