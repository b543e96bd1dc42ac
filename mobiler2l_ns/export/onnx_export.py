"""Export a trained MobileR2L student as three ONNX graphs plus ``metadata.json``.

``ns-export mobiler2l-onnx --load-config RUN/config.yml --output-dir DIR`` (see
:mod:`mobiler2l_ns.export.ns_export_hook`) and :func:`export_mobiler2l_onnx` write::

    DIR/sampler.onnx    (rotation [3, 3], translation [3]) -> points [h, w, K, 3]
    DIR/embedder.onnx   points [h, w, K, 3]                -> encoding [1, C, h, w]   (NCHW)
    DIR/model.onnx      encoding [1, C, h, w]               -> image [1, 3, H, W]     (NCHW, [0, 1])
    DIR/metadata.json   sizes, intrinsics, sampling, encoding, graph I/O, dataparser transform, ...

All tensors are float32 and row-major; every camera constant (low-res ray directions, sample
depths / NDC frustum, encoding frequencies) is baked into the graphs, BatchNorm is folded into
the convs. The pose is a nerfstudio camera-to-world matrix (OpenGL: camera looks down -Z, +Y up)
in the dataparser's normalised world; ``metadata.json`` holds the transform and scale that map a
pose given in the capture's original coordinates into it (:mod:`mobiler2l_ns.export.runtime`).

Targets:

* ``standard`` (default): opset 17, exact (erf) GELU; checked with ``onnx.checker`` (full check),
  strict shape inference and onnxruntime against the PyTorch student.
* ``--fp16``: ``model.onnx`` stores weights and computes in float16 (inputs / outputs stay
  float32); its PSNR against the fp32 graph on training poses is printed and stored.
* ``snap``: opset 11 and every GELU as the ``GeluSnap`` custom op of Snap's Lens Studio (SnapML)
  template (snap-research/MobileR2L ``lens/``). Runs only inside Lens Studio: not checked with
  onnxruntime (the sampler and embedder, plain ONNX, still pass ``onnx.checker``).

Graphs are produced by torch's TorchScript-based exporter (``dynamo=False``): it is the one that
emits opset 11 (the dynamo exporter starts at opset 18 and cannot convert down that far), it is
several times faster, and after BatchNorm folding and onnxscript's optimizer its graphs are the
same ops (Conv, ConvTranspose, Erf-GELU, Add, Sigmoid, Slice) as the dynamo exporter's.

Writes are atomic: everything is written into a temporary directory next to ``--output-dir`` and
moved into place at the end; any failure leaves the output directory as it was.
"""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Literal, Optional, Sequence, Tuple

import numpy as np
import torch

from mobiler2l_ns.export.graphs import (
    EmbedderGraph,
    ExportCamera,
    ModelGraph,
    SamplerGraph,
    SamplingMode,
    count_gelu,
)
from mobiler2l_ns.student.embedders import embedder_flops, embedder_parameters
from mobiler2l_ns.student.network import count_parameters, frame_flops
from mobiler2l_ns.utils.checkpoints import checkpoint_steps
from mobiler2l_ns.utils.errors import InputError

Target = Literal["standard", "snap"]

STANDARD_OPSET = 17
SNAP_OPSET = 11
SNAP_GELU_OP = "GeluSnap"
METADATA_NAME = "metadata.json"
GRAPH_FILES = {"sampler": "sampler.onnx", "embedder": "embedder.onnx", "model": "model.onnx"}
FORMAT_NAME = "mobiler2l-onnx"
FORMAT_VERSION = 1
FP16_EVAL_POSES = 4
POSE_CONVENTION = (
    "nerfstudio camera-to-world, OpenGL axes (camera looks down its -Z, +Y up, +X right); "
    "rotation = c2w[:3, :3], translation = c2w[:3, 3] (camera centre)"
)


@dataclass
class ExportResult:
    """What an export wrote: the output directory, its files and the metadata (as in the JSON)."""

    output_dir: Path
    files: List[Path]
    metadata: Dict[str, Any]
    fp16_psnr_db: Optional[float] = None


@dataclass
class StudentRun:
    """A loaded student run: model (eval, CPU), training cameras and dataparser transform."""

    model: Any  # MobileR2LModel
    camera: ExportCamera
    train_poses: np.ndarray  # [N, 3, 4] normalised-world c2w of the training cameras
    dataparser_transform: np.ndarray  # [3, 4]
    dataparser_scale: float
    source: Dict[str, Any] = field(default_factory=dict)


# --------------------------------------------------------------------------- public API


def export_mobiler2l_onnx(
    load_config: Path,
    output_dir: Path,
    *,
    target: Target = "standard",
    fp16: bool = False,
    height: Optional[int] = None,
    width: Optional[int] = None,
    verbose: bool = True,
) -> ExportResult:
    """Export the MobileR2L student of a run (``RUN/config.yml``) to ``output_dir``.

    Args:
        load_config: the run's ``config.yml`` (or the run directory holding it).
        output_dir: directory to write (created if missing; other files in it are left alone).
        target: ``"standard"`` (opset 17) or ``"snap"`` (opset 11, ``GeluSnap``; Lens Studio only).
        fp16: store and run ``model.onnx`` in float16 (standard target); measures PSNR vs fp32.
        height, width: image size of the export (default: the first training camera's); one of
            them alone keeps the training aspect ratio. Intrinsics are scaled with the size.
        verbose: print progress and the fp16 PSNR.

    Raises:
        InputError: missing / wrong config (e.g. a teacher run), no checkpoint, bad options or an
            unwritable output directory (one-line message; nothing is left behind).
    """
    validate_options(target, fp16, height, width)
    config, config_path = load_trainer_config(Path(load_config))  # cheap checks first: path, kind of run
    staging = StagingDir(Path(output_dir))  # fails before the slow part when the output is unwritable
    try:
        run = load_student_run(config_path, config)
        camera = run.camera.resized(height, width)
        result = write_export(run, camera, staging.path, target=target, fp16=fp16, verbose=verbose)
        files = staging.commit()
    except OSError as err:  # disk full, file-size or quota limits: nothing is left behind
        staging.abort()
        raise InputError(f"--output-dir {output_dir}: cannot write the export ({err.strerror or err})") from None
    except BaseException:
        staging.abort()
        raise
    result.output_dir = staging.output_dir
    result.files = files
    if verbose:
        from nerfstudio.utils.rich_utils import CONSOLE

        CONSOLE.print(
            f"[bold green]Exported MobileR2L ONNX ({target}) to {staging.output_dir}: "
            + ", ".join(p.name for p in files)
        )
    return result


def export_model(
    model,
    camera: ExportCamera,
    output_dir: Path,
    train_poses: np.ndarray,
    *,
    dataparser_transform: Optional[np.ndarray] = None,
    dataparser_scale: float = 1.0,
    target: Target = "standard",
    fp16: bool = False,
    verbose: bool = False,
) -> ExportResult:
    """Export an in-memory :class:`MobileR2LModel` (no run directory), e.g. a randomly initialised one.

    What :func:`export_mobiler2l_onnx` writes for a trained run, for benchmarks and tests:
    ``train_poses`` ``[N, 3, 4]`` (normalised-world c2w; the first is the reference pose, all of
    them set the orbit), ``dataparser_transform`` ``[3, 4]`` (default identity) and
    ``dataparser_scale`` are stored in ``metadata.json`` as a run's would be.
    """
    validate_options(target, fp16, None, None)
    poses = np.asarray(train_poses, dtype=np.float64).reshape(-1, 3, 4)
    transform = np.eye(4)[:3] if dataparser_transform is None else np.asarray(dataparser_transform, np.float64)
    run = StudentRun(model.eval(), camera, poses, transform[:3, :4], float(dataparser_scale), {"model": "in-memory"})
    staging = StagingDir(Path(output_dir))
    try:
        result = write_export(run, camera, staging.path, target=target, fp16=fp16, verbose=verbose)
        files = staging.commit()
    except BaseException:
        staging.abort()
        raise
    result.output_dir, result.files = staging.output_dir, files
    return result


def validate_options(target: str, fp16: bool, height: Optional[int], width: Optional[int]) -> None:
    """One-line InputErrors for option values the exporter cannot honour."""
    if target not in ("standard", "snap"):
        raise InputError(f"--target must be 'standard' or 'snap', got {target!r}")
    if fp16 and target == "snap":
        raise InputError(
            "--fp16 applies to the standard target; Lens Studio chooses its own precision for --target snap"
        )
    for name, value in (("--height", height), ("--width", width)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"{name} must be a positive integer, got {value!r}")


# --------------------------------------------------------------------------- loading a run


def resolve_config_path(load_config: Path) -> Path:
    """``RUN/config.yml`` from a config path or a run directory; InputError when missing."""
    path = Path(load_config)
    if path.is_dir() and (path / "config.yml").is_file():
        path = path / "config.yml"
    if not path.exists():
        raise InputError(f"--load-config {load_config}: no such file (expected a run's config.yml)")
    if not path.is_file():
        raise InputError(f"--load-config {load_config}: not a file (expected a run's config.yml)")
    return path


def load_trainer_config(config_path: Path):
    """The TrainerConfig of a MobileR2L student run; one-line InputError for anything else."""
    import yaml
    from nerfstudio.engine.trainer import TrainerConfig

    from mobiler2l_ns.student.model import MobileR2LModelConfig

    path = resolve_config_path(config_path)
    try:
        config = yaml.load(path.read_text(), Loader=yaml.Loader)
    except (yaml.YAMLError, UnicodeDecodeError, ImportError, AttributeError, TypeError) as err:
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise InputError(f"{path}: not a readable nerfstudio run config ({first})") from None
    if not isinstance(config, TrainerConfig):
        raise InputError(f"{path}: not a nerfstudio run config (got {type(config).__name__})")
    model_config = getattr(config.pipeline, "model", None)
    if not isinstance(model_config, MobileR2LModelConfig):
        raise InputError(
            f"{path} is a '{config.method_name}' run ({type(model_config).__name__}), not a MobileR2L student: "
            "mobiler2l-onnx exports runs of ns-train mobiler2l / mobiler2l-small"
        )
    return config, path


def find_checkpoint(config, config_path: Path) -> Path:
    """Latest ``step-*.ckpt`` of the run: beside the config first, then the config's own output dir."""
    candidates = [config_path.parent / "nerfstudio_models"]
    if config.load_dir is not None:
        candidates.append(Path(config.load_dir))
    candidates.append(config.get_checkpoint_dir())
    for directory in candidates:
        checkpoints = checkpoint_steps(directory)
        if checkpoints:
            return checkpoints[max(checkpoints)]
    raise InputError(f"{config_path}: no checkpoint (step-*.ckpt) in {candidates[0]}; train the run first")


def load_student_run(config_path: Path, config=None) -> StudentRun:
    """Load a student run on the CPU (no images are read) with its training cameras.

    ``config``: the run's already loaded TrainerConfig (see :func:`load_trainer_config`), if any.
    """
    from nerfstudio.cameras.cameras import CameraType

    from mobiler2l_ns.student.model import MobileR2LModel

    if config is None:
        config, path = load_trainer_config(config_path)
    else:
        path = resolve_config_path(config_path)
    checkpoint = find_checkpoint(config, path)
    config.load_dir = checkpoint.parent
    config.machine.device_type = "cpu"
    try:
        pipeline = config.pipeline.setup(device="cpu", test_mode="inference")
    except (FileNotFoundError, NotADirectoryError) as err:
        raise InputError(
            f"{path}: cannot load the run's dataset ({err}); run ns-export from the training directory"
        ) from None
    pipeline.eval()
    try:
        loaded = torch.load(checkpoint, map_location="cpu")
    except Exception as err:  # corrupt / truncated file: a user problem, not a bug
        raise InputError(
            f"{checkpoint}: cannot read checkpoint ({type(err).__name__}: {err})".splitlines()[0]
        ) from None
    pipeline.load_pipeline(loaded["pipeline"], loaded["step"])
    model = pipeline.model.eval()
    assert isinstance(model, MobileR2LModel)

    outputs = pipeline.datamanager.train_dataparser_outputs
    cameras = outputs.cameras
    if bool((cameras.camera_type.reshape(-1) != CameraType.PERSPECTIVE.value).any()):
        raise InputError(f"{path}: MobileR2L exports pinhole (perspective) cameras only")
    camera = ExportCamera(
        height=int(cameras.height.reshape(-1)[0]),
        width=int(cameras.width.reshape(-1)[0]),
        fx=float(cameras.fx.reshape(-1)[0]),
        fy=float(cameras.fy.reshape(-1)[0]),
        cx=float(cameras.cx.reshape(-1)[0]),
        cy=float(cameras.cy.reshape(-1)[0]),
    )
    transform, scale, transform_source = read_dataparser_transform(path.parent, outputs)
    return StudentRun(
        model=model,
        camera=camera,
        train_poses=cameras.camera_to_worlds.reshape(-1, 3, 4).double().numpy(),
        dataparser_transform=transform,
        dataparser_scale=scale,
        source={
            "config": str(path.resolve()),
            "checkpoint": str(checkpoint.resolve()),
            "step": int(loaded["step"]),
            "method_name": config.method_name,
            "dataparser_transform": transform_source,
        },
    )


def read_dataparser_transform(run_dir: Path, outputs) -> Tuple[np.ndarray, float, str]:
    """The run's ``dataparser_transforms.json`` (else the dataparser's own transform / scale)."""
    path = run_dir / "dataparser_transforms.json"
    if path.is_file():
        try:
            data = json.loads(path.read_text())
            transform = np.asarray(data["transform"], dtype=np.float64)
            scale = float(data["scale"])
        except (ValueError, KeyError, TypeError) as err:
            raise InputError(f"{path}: not a dataparser transform ({err})") from None
        if transform.shape != (3, 4) or not math.isfinite(scale) or scale <= 0:
            raise InputError(f"{path}: expected a 3x4 'transform' and a positive 'scale'")
        return transform, scale, str(path.resolve())
    transform = outputs.dataparser_transform.double().numpy()
    return transform, float(outputs.dataparser_scale), "dataparser (no dataparser_transforms.json in the run)"


# --------------------------------------------------------------------------- building graphs


def sampling_settings(model, camera: ExportCamera) -> Dict[str, Any]:
    """Sampling mode and its constants, exactly as :meth:`MobileR2LModel.render` uses them."""
    cfg = model.config
    if cfg.use_ndc:
        # the model fixes its NDC frustum from the first camera it renders when the checkpoint has none
        fx, fy = torch.tensor(camera.fx), torch.tensor(camera.fy)
        ax, ay = model._ndc_scale(fx, fy, camera.width, camera.height)
        return {"mode": "ndc", "ndc_scale": [ax, ay], "ndc_near_plane": float(cfg.ndc_near_plane)}
    if cfg.ray_box:
        box = {"aabb": model.sample_aabb.detach().float().cpu().tolist(), "min_near": float(cfg.min_near)}
        if model.uses_occupancy():
            return {"mode": "occupancy", **box, "occupancy_shape": list(model.occupancy.shape),
                    "occupancy_aabb": model.occupancy_aabb.detach().float().cpu().tolist(),
                    "occupancy_steps": int(cfg.occupancy_steps)}  # fmt: skip
        return {"mode": "ray_box", **box}
    fixed = model.fixed_near_far()  # config values, or derived from the data (near_far_from_data)
    if fixed is not None:
        return {"mode": "fixed", "near": float(fixed[0]), "far": float(fixed[1])}
    aabb = model.scene_box.aabb.detach().float().cpu()
    return {"mode": "scene_box", "aabb": aabb.tolist(), "min_near": float(cfg.min_near)}


def build_graphs(model, camera: ExportCamera, sampling: Dict[str, Any]) -> Tuple[SamplerGraph, EmbedderGraph]:
    """Sampler and embedder modules of ``model`` for ``camera``."""
    cfg = model.config
    mode: SamplingMode = sampling["mode"]
    sampler = SamplerGraph(
        camera,
        cfg.sr_factor,
        cfg.num_points,
        mode,
        near=sampling.get("near"),
        far=sampling.get("far"),
        aabb=torch.tensor(sampling["aabb"]) if "aabb" in sampling else None,
        min_near=sampling.get("min_near", cfg.min_near),
        ndc_scale=tuple(sampling["ndc_scale"]) if "ndc_scale" in sampling else None,
        ndc_near_plane=sampling.get("ndc_near_plane", 1.0),
        occupancy=model.occupancy if sampling["mode"] == "occupancy" else None,
        occupancy_aabb=model.occupancy_aabb if sampling["mode"] == "occupancy" else None,
        occupancy_steps=sampling.get("occupancy_steps", 64),
    ).eval()
    return sampler, EmbedderGraph(model.embedder).eval()


def to_onnx(
    module: torch.nn.Module,
    args: Tuple[torch.Tensor, ...],
    input_names: Sequence[str],
    output_names: Sequence[str],
    opset: int,
    doc: str,
):
    """ONNX ModelProto of ``module(*args)`` (legacy TorchScript exporter, then onnxscript's optimizer).

    The optimizer turns the exporter's scalar ``Constant`` nodes into shared initializers and
    removes dead code; it keeps input / output names and the opset.
    """
    import onnx
    import onnxscript.optimizer

    buffer = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the legacy exporter's deprecation notices
        torch.onnx.export(
            module,
            args,
            buffer,
            dynamo=False,
            opset_version=opset,
            input_names=list(input_names),
            output_names=list(output_names),
            do_constant_folding=True,
        )
    proto = onnx.load_from_string(buffer.getvalue())
    proto = onnxscript.optimizer.optimize(proto)
    proto.doc_string = doc
    proto.producer_name = "mobiler2l_ns"
    from mobiler2l_ns import __version__

    proto.producer_version = __version__
    return proto


def graph_io(camera: ExportCamera, h: int, w: int, num_points: int, channels: int) -> Dict[str, Dict[str, Any]]:
    """Names, shapes, dtypes and memory layouts of the three graphs' inputs and outputs."""
    H, W, K, C = camera.height, camera.width, num_points, channels
    points = {
        "name": "points",
        "shape": [h, w, K, 3],
        "dtype": "float32",
        "layout": "[h, w, K, 3] row-major: low-res row i, column j, sample k (near to far), x y z",
    }
    encoding = {
        "name": "encoding",
        "shape": [1, C, h, w],
        "dtype": "float32",
        "layout": "NCHW; channel order of mobiler2l_ns.student.embedder (see encoding.channel_order)",
    }
    return {
        "sampler": {
            "file": GRAPH_FILES["sampler"],
            "inputs": [
                {"name": "rotation", "shape": [3, 3], "dtype": "float32", "layout": "row-major c2w[:3, :3]"},
                {"name": "translation", "shape": [3], "dtype": "float32", "layout": "c2w[:3, 3] (camera centre)"},
            ],
            "outputs": [points],
        },
        "embedder": {"file": GRAPH_FILES["embedder"], "inputs": [points], "outputs": [encoding]},
        "model": {
            "file": GRAPH_FILES["model"],
            "inputs": [encoding],
            "outputs": [
                {
                    "name": "image",
                    "shape": [1, 3, H, W],
                    "dtype": "float32",
                    "layout": "NCHW, RGB in [0, 1], row 0 at the top (image row v = pixel row v)",
                }
            ],
        },
    }


def encoding_info(model) -> Dict[str, Any]:
    """The embedder's kind, constants and channel layout (its own ``describe()``)."""
    return model.embedder.describe()


def orbit_settings(run: StudentRun, sampling: Dict[str, Any], model) -> Dict[str, Any]:
    """How the reference runtime's ``--orbit`` moves the camera (normalised world)."""
    poses = run.train_poses
    if sampling["mode"] == "ndc":
        centres = poses[:, :, 3]
        spread = float(np.sqrt(((centres - centres.mean(axis=0)) ** 2).sum(axis=1).mean()))
        return {
            "kind": "circle",
            "description": "camera centre on a circle in the reference camera's image plane, rotation fixed",
            "radius": spread if spread > 0 else 0.05,
        }
    up = poses[:, :, 1].mean(axis=0)
    norm = float(np.linalg.norm(up))
    axis = (up / norm).tolist() if norm > 1e-6 else [0.0, 0.0, 1.0]
    centre = model.scene_box.aabb.detach().double().mean(dim=0).tolist()
    return {
        "kind": "turntable",
        "description": "reference pose rotated about the mean camera up axis through the scene-box centre",
        "axis": axis,
        "center": centre,
    }


# --------------------------------------------------------------------------- writing


def write_export(
    run: StudentRun,
    camera: ExportCamera,
    out: Path,
    *,
    target: Target = "standard",
    fp16: bool = False,
    verbose: bool = True,
) -> ExportResult:
    """Write the three graphs and ``metadata.json`` of ``run`` at ``camera`` into ``out`` (must exist)."""
    import onnx

    model = run.model.eval()
    cfg = model.config
    if target == "snap" and cfg.embedder != "pe":
        raise InputError(
            f"--target snap writes opset {SNAP_OPSET}, which has no GridSample: the '{cfg.embedder}' embedder's grid "
            "lookups need opset >= 16 (export it with the standard target, or train a 'pe' student for Lens Studio)"
        )
    opset = SNAP_OPSET if target == "snap" else STANDARD_OPSET
    sampling = sampling_settings(model, camera)
    sampler, embedder = build_graphs(model, camera, sampling)
    h, w = sampler.h, sampler.w
    K, C = cfg.num_points, model.embedder.out_channels
    rotation, translation = torch.eye(3), torch.tensor([0.0, 0.0, 4.0])
    with torch.no_grad():
        points = sampler(rotation, translation)
        encoding = embedder(points)
    assert tuple(points.shape) == (h, w, K, 3) and tuple(encoding.shape) == (1, C, h, w)

    network = model.network
    protos = {
        "sampler": to_onnx(
            sampler, (rotation, translation), ["rotation", "translation"], ["points"], opset,
            "MobileR2L sampler: camera-to-world rotation [3,3] + translation [3] -> points [h,w,K,3]",
        ),
        "embedder": to_onnx(
            embedder, (points,), ["points"], ["encoding"], opset,
            f"MobileR2L embedder ({cfg.embedder}): points [h,w,K,3] -> features NCHW [1,C,h,w]",
        ),
    }  # fmt: skip
    model_doc = "MobileR2L network (BatchNorm folded): encoding NCHW [1,C,h,w] -> image NCHW [1,3,H,W] in [0,1]"
    fp32_model = to_onnx(
        ModelGraph(network, camera.height, camera.width), (encoding,), ["encoding"], ["image"], opset, model_doc
    )
    if target == "snap":
        gelus = count_gelu(network)
        snap = to_onnx(
            ModelGraph(network, camera.height, camera.width, relu_for_gelu=True),
            (encoding,), ["encoding"], ["image"], opset, model_doc + "; GELU as the GeluSnap op (Lens Studio only)",
        )  # fmt: skip
        protos["model"] = to_snap_gelu(snap, expected=gelus)
    elif fp16:
        protos["model"] = to_onnx(
            ModelGraph(network, camera.height, camera.width, half=True),
            (encoding,), ["encoding"], ["image"], opset, model_doc + "; float16 weights and arithmetic, float32 I/O",
        )  # fmt: skip
    else:
        protos["model"] = fp32_model

    io_spec = graph_io(camera, h, w, K, C)
    checks = check_graphs(protos, io_spec, target)

    metadata: Dict[str, Any] = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "target": target,
        "opset": opset,
        "precision": "fp16" if fp16 else "fp32",
        "runtime": (
            "Lens Studio (SnapML) only: model.onnx uses the GeluSnap custom op"
            if target == "snap"
            else "any ONNX runtime (checked with onnxruntime)"
        ),
        "height": camera.height,
        "width": camera.width,
        "lowres_height": h,
        "lowres_width": w,
        "sr_factor": cfg.sr_factor,
        "num_points": K,
        "intrinsics": {"fx": camera.fx, "fy": camera.fy, "cx": camera.cx, "cy": camera.cy},
        "lowres_intrinsics": {
            "fx": camera.fx / cfg.sr_factor,
            "fy": camera.fy / cfg.sr_factor,
            "cx": camera.cx / cfg.sr_factor,
            "cy": camera.cy / cfg.sr_factor,
        },
        "train_camera": {
            "height": run.camera.height,
            "width": run.camera.width,
            "fx": run.camera.fx,
            "fy": run.camera.fy,
            "cx": run.camera.cx,
            "cy": run.camera.cy,
        },
        "camera_model": (
            "pinhole; pixel (u, v) centre at (u + 0.5, v + 0.5); low-res ray (i, j) has direction "
            "((j + 0.5 - cx') / fx', -(i + 0.5 - cy') / fy', -1) with the low-res intrinsics (z-depth parameter)"
        ),
        "sampling": {
            **sampling,
            "fractions": sampler.fractions.tolist(),
            "description": sampling_description(sampling),
        },
        "near": sampling.get("near"),
        "far": sampling.get("far"),
        "encoding": encoding_info(model),
        "network": {
            "depth": cfg.depth,
            "width": cfg.width,
            "sr_widths": list(network.sr_widths),
            "sr_blocks": cfg.sr_blocks,
            "parameters": count_parameters(network),
            "embedder_parameters": embedder_parameters(model.embedder),
            "fp16_megabytes": 2e-6 * (count_parameters(network) + embedder_parameters(model.embedder)),
            "flops_per_frame": frame_flops(network, h, w),
            "embedder_flops_per_frame": embedder_flops(model.embedder, h, w),
            "batchnorm_folded": True,
            "gelu": f"{SNAP_GELU_OP} custom op" if target == "snap" else "exact, 0.5 x (1 + erf(x / sqrt 2))",
        },
        "graphs": io_spec,
        "pose": {
            "convention": POSE_CONVENTION,
            "frame": "dataparser-normalised world (the frame the student was trained in)",
        },
        "dataparser_transform": {
            "transform": run.dataparser_transform.tolist(),
            "scale": run.dataparser_scale,
            "source": run.source.get("dataparser_transform", ""),
            "apply": (
                "pose in the capture's original coordinates (OpenGL c2w [R | t]) -> normalised: "
                "R' = T[:, :3] @ R, t' = scale * (T[:, :3] @ t + T[:, 3])"
            ),
        },
        "reference_pose": run.train_poses[0].tolist(),
        "orbit": orbit_settings(run, sampling, model),
        "source": run.source,
        "checks": checks,
    }

    # onnxruntime: the fp32 chain against the PyTorch student (standard target)
    fp16_psnr = None
    if target == "standard":
        graphs = {"sampler": protos["sampler"], "embedder": protos["embedder"], "model": fp32_model}
        from mobiler2l_ns.export.runtime import OrtChain

        chain32 = OrtChain.from_protos(graphs, threads=torch.get_num_threads())
        reference = run.train_poses[0]
        ort_image = chain32.render(reference)
        torch_image = render_torch(model, camera, reference)
        diff = float(np.abs(ort_image - torch_image).max())
        checks["onnxruntime_vs_pytorch_max_abs_diff"] = diff
        if diff > 1e-3:
            warnings.warn(f"MobileR2L ONNX export: onnxruntime and PyTorch differ by {diff:.2e} (max abs)")
        if fp16:
            chain16 = OrtChain.from_protos({**graphs, "model": protos["model"]}, threads=torch.get_num_threads())
            emulated = Fp16ActivationEmulation(network, camera.height, camera.width)
            stats = compare_fp16(chain32, chain16, emulated, run.train_poses)
            fp16_psnr = stats["psnr_vs_fp32_db"]
            metadata["fp16"] = {
                **stats,
                "measured_with": (
                    f"onnxruntime {ort_version()} CPUExecutionProvider, model.onnx fp16 vs the same graph in fp32, "
                    "on evenly spaced training poses. The CPU provider upcasts fp16 ops without fp16 kernels, so this "
                    "mostly measures fp16 weights; psnr_fp16_activations_db also rounds every layer's output to fp16 "
                    "(PyTorch emulation of runtimes that compute in fp16, e.g. mobile GPUs / WebGPU)"
                ),
            }
            if verbose:
                from nerfstudio.utils.rich_utils import CONSOLE

                CONSOLE.print(
                    f"fp16 model.onnx vs fp32: PSNR {fp16_psnr:.2f} dB (onnxruntime CPU), "
                    f"{stats['psnr_fp16_activations_db']:.2f} dB with fp16 activations (emulated); "
                    f"max abs diff {stats['max_abs_diff_vs_fp32']:.2e} ({stats['poses']} training poses)"
                )

    files = []
    for name, proto in protos.items():
        path = out / GRAPH_FILES[name]
        onnx.save(proto, str(path))
        files.append(path)
    metadata["files"] = [p.name for p in files] + [METADATA_NAME]
    meta_path = out / METADATA_NAME
    meta_path.write_text(json.dumps(metadata, indent=2, allow_nan=False) + "\n")
    files.append(meta_path)
    return ExportResult(out, files, metadata, fp16_psnr)


def sampling_description(sampling: Dict[str, Any]) -> str:
    """How the sampler graph places the K points (for humans reading metadata.json)."""
    mode = sampling["mode"]
    if mode == "fixed":
        return "points t + (R d) z_k with z-depths z_k = near + (far - near) * fractions[k]"
    if mode == "ray_box":
        return "points t + (R d) z_k, z_k = near + (far - near) * fractions[k] with per-ray near / far where the ray crosses aabb"
    if mode == "occupancy":
        return (
            "points t + (R d) z_k, z_k = near + (far - near) * fractions[k]: the ray's chord through aabb is cut into "
            "occupancy_steps steps whose midpoints are looked up in the baked occupancy grid (over occupancy_aabb); "
            "near / far = start of the first / end of the last occupied step (student/sampler.py occupied_near_far)"
        )
    if mode == "scene_box":
        return (
            "points t + (R d) z_k, z_k = near + (far - near) * fractions[k] with per-camera near / far: "
            "distance from t to the aabb centre -/+ half the aabb diagonal (near >= min_near, far >= near + min_near)"
        )
    return (
        "NeRF/LLFF NDC points o' + fractions[k] d' of the world ray (t, R d) "
        "(student/sampler.py ndc_rays with ndc_scale and ndc_near_plane)"
    )


def to_snap_gelu(proto, expected: int):
    """Rename the ReLU placeholders of ``proto`` to ``GeluSnap`` (default domain, as Snap's template)."""
    relus = [node for node in proto.graph.node if node.op_type == "Relu"]
    if len(relus) != expected:
        raise RuntimeError(f"expected {expected} GELU placeholders in the snap graph, found {len(relus)} Relu nodes")
    for node in relus:
        node.op_type = SNAP_GELU_OP
        node.name = node.name.replace("Relu", SNAP_GELU_OP) if node.name else ""
    return proto


def check_graphs(protos: Dict[str, Any], io_spec: Dict[str, Dict[str, Any]], target: Target) -> Dict[str, Any]:
    """``onnx.checker`` (full) and strict shape inference; output shapes must match ``io_spec``."""
    import onnx

    checked: Dict[str, Any] = {}
    for name, proto in protos.items():
        if target == "snap" and name == "model":
            if any(node.op_type in ("Erf", "Gelu") for node in proto.graph.node):
                raise RuntimeError("the snap model graph must express GELU only as GeluSnap")
            checked[name] = "structural only (GeluSnap is unknown outside Lens Studio)"
            continue
        onnx.checker.check_model(proto, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
        for value, spec in zip(inferred.graph.output, io_spec[name]["outputs"]):
            dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
            if value.name != spec["name"] or dims != spec["shape"]:
                raise RuntimeError(f"{name}.onnx output {value.name} {dims} != {spec['name']} {spec['shape']}")
        checked[name] = "onnx.checker full_check + strict shape inference"
    return checked


def render_torch(model, camera: ExportCamera, c2w: np.ndarray) -> np.ndarray:
    """``model.get_outputs_for_camera`` of one pose at ``camera``: [H, W, 3] float32."""
    from nerfstudio.cameras.cameras import Cameras

    cam = Cameras(
        camera_to_worlds=torch.as_tensor(np.asarray(c2w)[:3, :4], dtype=torch.float32)[None],
        fx=camera.fx,
        fy=camera.fy,
        cx=camera.cx,
        cy=camera.cy,
        width=camera.width,
        height=camera.height,
    )
    return model.get_outputs_for_camera(cam)["rgb"].detach().cpu().numpy()


class Fp16ActivationEmulation(torch.nn.Module):
    """The BN-folded network with fp16-rounded weights whose every layer output is rounded to fp16.

    Computes in fp32 (fast on any CPU) but stores activations as a runtime that computes in fp16
    would (accumulation inside a conv stays fp32, as on GPUs); cropped to ``H x W``.
    """

    def __init__(self, network, height: int, width: int):
        super().__init__()
        from mobiler2l_ns.student.network import ResBlock, fold_batchnorm

        self.network = fold_batchnorm(network).half().float()
        self.height, self.width = height, width
        for module in self.network.modules():
            if isinstance(module, ResBlock) or not list(module.children()):
                module.register_forward_hook(lambda _m, _args, out: out.half().float())

    @torch.no_grad()
    def forward(self, encoding: torch.Tensor) -> torch.Tensor:
        return self.network(encoding.half().float())[:, :, : self.height, : self.width]


def compare_fp16(chain32, chain16, emulated, poses: np.ndarray, max_poses: int = FP16_EVAL_POSES) -> Dict[str, Any]:
    """PSNR / max abs difference of the fp16 graph (and of the fp16-activation emulation) vs fp32.

    PSNR is over all pixels of up to ``max_poses`` evenly spaced poses.
    """
    index = np.unique(np.linspace(0, len(poses) - 1, min(max_poses, len(poses))).round().astype(int))
    sq16 = sqem = 0.0
    count, max_diff = 0, 0.0
    for i in index:
        stages = chain32.stages(poses[i])
        ref = stages["image"].astype(np.float64)
        ort16 = chain16.stages(poses[i])["image"].astype(np.float64)
        emu = emulated(torch.from_numpy(stages["encoding"])).numpy().astype(np.float64)
        sq16 += float(((ort16 - ref) ** 2).sum())
        sqem += float(((emu - ref) ** 2).sum())
        count += ref.size
        max_diff = max(max_diff, float(np.abs(ort16 - ref).max()))

    def to_psnr(sq: float) -> float:
        mse = max(sq / max(count, 1), 1e-30)  # identical images: 300 dB (JSON has no infinity)
        return float(-10.0 * math.log10(mse))

    return {
        "psnr_vs_fp32_db": to_psnr(sq16),
        "psnr_fp16_activations_db": to_psnr(sqem),
        "max_abs_diff_vs_fp32": max_diff,
        "poses": len(index),
    }


def ort_version() -> str:
    import onnxruntime

    return onnxruntime.__version__


# --------------------------------------------------------------------------- atomic output


class StagingDir:
    """A temporary directory next to ``output_dir``; :meth:`commit` moves its files into place.

    Created at construction, so an unwritable destination fails before any work (InputError).
    ``commit`` renames the whole directory when ``output_dir`` does not exist yet (atomic), else
    moves file by file, backing up files it replaces and restoring them if a move fails.
    ``abort`` removes the staging directory and any parent directories this object created.
    """

    def __init__(self, output_dir: Path):
        self.output_dir = Path(os.path.abspath(output_dir))
        self.created: List[Path] = []
        out = self.output_dir
        if out.exists() and not out.is_dir():
            raise InputError(f"--output-dir {output_dir}: exists and is not a directory")
        if out.exists() and not os.access(out, os.W_OK | os.X_OK):
            raise InputError(f"--output-dir {output_dir}: directory is not writable")
        try:
            self._make_parents(out.parent)
            base = out.parent if os.access(out.parent, os.W_OK | os.X_OK) or not out.exists() else out
            self.path = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=base))
        except OSError as err:
            self._remove_created()
            raise InputError(f"--output-dir {output_dir}: cannot write there ({err.strerror or err})") from None

    def _make_parents(self, directory: Path) -> None:
        missing = []
        for parent in [directory, *directory.parents]:
            if parent.exists():
                break
            missing.append(parent)
        for parent in reversed(missing):
            parent.mkdir()
            self.created.append(parent)

    def _remove_created(self) -> None:
        for directory in reversed(self.created):
            try:
                directory.rmdir()
            except OSError:
                pass
        self.created = []

    def commit(self) -> List[Path]:
        """Move the staged files into ``output_dir``; returns their final paths (sorted)."""
        names = sorted(p.name for p in self.path.iterdir())
        out = self.output_dir
        if not out.exists():
            try:
                umask = os.umask(0)
                os.umask(umask)
                os.chmod(self.path, 0o777 & ~umask)  # mkdtemp's 0700 would make the export private
                os.rename(self.path, out)
                return [out / n for n in names]
            except OSError:
                if not out.is_dir():
                    raise
        backups: List[Tuple[Path, Path]] = []
        moved: List[Path] = []
        try:
            for name in names:
                target = out / name
                if target.exists():
                    backup = self.path / f"{name}.previous"
                    os.replace(target, backup)
                    backups.append((backup, target))
                os.replace(self.path / name, target)
                moved.append(target)
        except OSError as err:
            for path in moved:
                path.unlink(missing_ok=True)
            for backup, target in backups:
                os.replace(backup, target)
            raise InputError(f"--output-dir {out}: cannot write there ({err.strerror or err})") from None
        shutil.rmtree(self.path, ignore_errors=True)
        return [out / n for n in names]

    def abort(self) -> None:
        """Remove everything this object created."""
        shutil.rmtree(self.path, ignore_errors=True)
        self._remove_created()
