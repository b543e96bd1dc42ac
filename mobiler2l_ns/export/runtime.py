"""Reference onnxruntime runtime of a ``mobiler2l-onnx`` export: camera pose -> image.

The consumer that the tests (and the browser viewer, ``web/static/viewer.js``) are checked against::

    from mobiler2l_ns.export.runtime import OnnxLightField
    field = OnnxLightField("exports/lego")          # reads metadata.json and the three graphs
    rgb = field.render(c2w)                          # [H, W, 3] float32 in [0, 1]
    rgb = field.render(c2w_capture, original_coords=True)

CLI (``mobiler2l-render``)::

    mobiler2l-render EXPORT_DIR --out view.png                       # the reference (first training) pose
    mobiler2l-render EXPORT_DIR --pose 1 0 0 0  0 1 0 0  0 0 1 4 --out view.png
    mobiler2l-render EXPORT_DIR --pose-file pose.json --original-coords --out view.png
    mobiler2l-render EXPORT_DIR --orbit 36 --out orbit.gif

Pose convention (:mod:`mobiler2l_ns.geometry`, whose pose maths this uses): a nerfstudio
camera-to-world matrix (OpenGL axes: the camera looks down its -Z, +Y up, +X right), 3x4 or 4x4,
row-major, in the dataparser's normalised world (the frame the student was trained in). With
``original_coords`` / ``--original-coords`` the pose is in the capture's original coordinates
(e.g. a ``transform_matrix`` of the capture's transforms.json) and is mapped with the run's
dataparser transform ``T`` and scale ``s`` from ``metadata.json``: ``R' = T[:, :3] R``,
``t' = s (T[:, :3] t + T[:, 3])`` (what nerfstudio's dataparsers do).
"""

from __future__ import annotations

import io
import json
import math
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import tyro
from typing_extensions import Annotated

from mobiler2l_ns.export.metadata import GRAPH_NAMES, ExportMetadata
from mobiler2l_ns.geometry import PoseLike, as_pose, rotate_about_point, rotation_about, to_normalised
from mobiler2l_ns.utils.cli import run_cli
from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.utils.io import encode_png, to_uint8, write_atomic


def orbit_poses(base: PoseLike, orbit: Dict[str, Any], frames: int) -> List[np.ndarray]:
    """``frames`` ``[3, 4]`` poses around ``base`` (normalised world) as described by ``metadata["orbit"]``.

    ``turntable``: ``base`` rotated about ``orbit["axis"]`` through ``orbit["center"]``;
    ``circle`` (forward-facing): the camera centre moves on a circle of ``orbit["radius"]`` in the
    base camera's image plane, the rotation stays fixed.
    """
    pose = as_pose(base)
    poses = []
    for i in range(frames):
        angle = 2.0 * math.pi * i / frames
        if orbit["kind"] == "turntable":
            centre = np.asarray(orbit["center"], dtype=np.float64)
            poses.append(rotate_about_point(pose, rotation_about(orbit["axis"], angle), centre))
        else:
            offset = orbit["radius"] * (math.cos(angle) * pose[:, 0] + math.sin(angle) * pose[:, 1])
            poses.append(np.concatenate([pose[:, :3], (pose[:, 3] + offset)[:, None]], axis=1))
    return poses


class OrtChain:
    """onnxruntime sessions (CPU) of the three graphs: ``sampler -> embedder -> model``.

    ``sources``: per graph name, a file path or the serialised graph (bytes).
    """

    def __init__(self, sources: Dict[str, Any], threads: Optional[int] = None):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads is not None:
            options.intra_op_num_threads = int(threads)
            options.inter_op_num_threads = 1
        self.sessions = {}
        for name in GRAPH_NAMES:
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
        """``points [h, w, K, 3]``, ``encoding [1, C, h, w]`` and ``image [1, 3, H, W]`` of a normalised-world pose."""
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
    """A ``mobiler2l-onnx`` export folder, ready to render poses with onnxruntime (CPU).

    ``metadata``: its validated ``metadata.json`` (:class:`ExportMetadata`, also readable as a dict).
    """

    def __init__(self, export_dir: Union[str, Path], threads: Optional[int] = None):
        self.export_dir = Path(export_dir)
        self.metadata = ExportMetadata.read(self.export_dir)
        self.metadata.refuse_snap(export_dir, "onnxruntime")
        files = {}
        for name in GRAPH_NAMES:
            path = self.export_dir / self.metadata.graph_file(name)
            if not path.is_file():
                raise InputError(f"{export_dir}: missing {path.name}")
            files[name] = str(path)
        self.chain = OrtChain(files, threads)

    @property
    def height(self) -> int:
        return self.metadata.height

    @property
    def width(self) -> int:
        return self.metadata.width

    @property
    def reference_pose(self) -> np.ndarray:
        """The first training camera's ``[3, 4]`` pose (normalised world)."""
        return as_pose(self.metadata.reference_pose)

    def normalise(self, c2w: PoseLike) -> np.ndarray:
        """Original capture coordinates -> normalised world (see module docstring)."""
        transform = self.metadata.dataparser_transform
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
        return orbit_poses(pose, self.metadata.orbit, frames)


# --------------------------------------------------------------------------- CLI


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


def image_format(out: Path, animated: bool) -> str:
    """PIL's format name for ``--out``'s extension (GIF when ``animated``); InputError otherwise."""
    from PIL import Image

    suffix = out.suffix.lower()
    if animated and suffix != ".gif":
        raise InputError(f"--orbit writes an animated GIF: --out must end in .gif, got {out}")
    name = Image.registered_extensions().get(suffix)
    if name is None or name not in Image.SAVE:
        raise InputError(
            f"--out {out}: unknown image file extension {suffix!r} (use .png, .jpg or, with --orbit, .gif)"
        )
    return name


def encode_frames(frames: List[np.ndarray], image_kind: str, animated: bool, fps: float) -> bytes:
    """File bytes of uint8 ``[H, W, 3]`` frames: one image, or an animated GIF looping at ``fps``."""
    if image_kind == "PNG" and not animated:
        return encode_png(frames[0])
    from PIL import Image

    images = [Image.fromarray(frame) for frame in frames]
    buffer = io.BytesIO()
    if animated:
        duration = round(1000.0 / fps)
        images[0].save(buffer, format=image_kind, save_all=True, append_images=images[1:], duration=duration, loop=0)
    else:
        images[0].save(buffer, format=image_kind)
    return buffer.getvalue()


@dataclass
class RenderCommand:
    """Render a mobiler2l-onnx export with onnxruntime (reference runtime)."""

    export_dir: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="EXPORT_DIR")]
    """Folder written by ns-export mobiler2l-onnx."""
    out: Path
    """Output image (.png, .jpg) or, with --orbit, .gif."""
    pose: Annotated[Optional[Tuple[float, ...]], tyro.conf.arg(metavar="X [X ...]")] = None
    """Camera-to-world matrix, 12 (3x4) or 16 (4x4) numbers, row-major (default: the reference pose)."""
    pose_file: Optional[Path] = None
    """JSON file: a 3x4 / 4x4 matrix, or an object with 'transform_matrix' or 'camera_to_world'."""
    original_coords: tyro.conf.FlagCreatePairsOff[bool] = False
    """The pose is in the capture's original coordinates (apply the stored dataparser transform and scale)."""
    orbit: Annotated[Optional[int], tyro.conf.arg(metavar="N")] = None
    """Render an N-frame orbit starting at the pose as a GIF."""
    fps: float = 15.0
    """GIF frame rate."""
    threads: Optional[int] = None
    """onnxruntime intra-op threads (default: onnxruntime's choice)."""

    def base_pose(self) -> Optional[np.ndarray]:
        """The ``[3, 4]`` pose of --pose / --pose-file (None: the reference pose); InputError on bad input."""
        if self.pose is not None and self.pose_file is not None:
            raise InputError("--pose and --pose-file: give one of them")
        if self.pose is not None:
            if len(self.pose) not in (12, 16):
                raise InputError(f"--pose takes 12 (3x4) or 16 (4x4) numbers, got {len(self.pose)}")
            try:
                return as_pose(self.pose)
            except InputError as err:
                raise InputError(f"--pose: {err.message}") from None
        if self.pose_file is not None:
            return read_pose_file(self.pose_file)
        if self.original_coords:
            raise InputError("--original-coords needs --pose or --pose-file")
        return None

    def main(self) -> int:
        """One image, or an orbit GIF with ``--orbit N``."""
        animated = self.orbit is not None
        if self.orbit is not None and self.orbit < 1:
            raise InputError(f"--orbit must be a positive number of frames, got {self.orbit}")
        kind = image_format(self.out, animated)
        if not self.fps > 0:
            raise InputError(f"--fps must be positive, got {self.fps}")
        if self.threads is not None and self.threads < 1:
            raise InputError(f"--threads must be positive, got {self.threads}")
        base = self.base_pose()
        field = OnnxLightField(self.export_dir, threads=self.threads)
        if not self.out.parent.exists():
            raise InputError(f"--out {self.out}: directory {self.out.parent} does not exist")
        if self.orbit is None:
            pose = field.reference_pose if base is None else (field.normalise(base) if self.original_coords else base)
            poses = [pose]
        else:
            poses = field.orbit(self.orbit, base, self.original_coords)
        frames = [to_uint8(field.render(p)) for p in poses]
        try:
            data = encode_frames(frames, kind, animated, self.fps)
        except (OSError, ValueError) as err:  # a format PIL cannot write RGB in
            raise InputError(f"--out {self.out}: cannot write ({err})") from None
        write_atomic(self.out, data, what=f"--out {self.out}")
        print(f"wrote {self.out}" + (f" ({self.orbit} frames)" if animated else ""))
        return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``mobiler2l-render``: parse ``argv`` (default: the command line) and run it; the exit status."""
    return run_cli(RenderCommand, argv, prog="mobiler2l-render", description=RenderCommand.__doc__)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
