"""What ``metadata.json`` says about an export: sizes, intrinsics, sampling, graph I/O, network, orbit.

:func:`build_metadata` fills an :class:`~mobiler2l_ns.export.metadata.ExportMetadata` for a
student run exported at a camera; the onnx checks (``checks``, ``fp16``) and ``files`` are
added by the writer (:func:`mobiler2l_ns.export.onnx_export.write_export`).
"""

from __future__ import annotations

from typing import Any, Dict

import numpy as np

from mobiler2l_ns.export.graphs import ExportCamera, SamplerGraph
from mobiler2l_ns.export.metadata import GRAPH_FILES, POSE_CONVENTION, ExportMetadata
from mobiler2l_ns.export.onnx_graphs import SNAP_GELU_OP, Target, opset_of
from mobiler2l_ns.export.student_run import StudentRun
from mobiler2l_ns.student.embedders import embedder_flops, embedder_parameters
from mobiler2l_ns.student.network import count_parameters, frame_flops

CAMERA_MODEL = (
    "pinhole; pixel (u, v) centre at (u + 0.5, v + 0.5); low-res ray (i, j) has direction "
    "((j + 0.5 - cx') / fx', -(i + 0.5 - cy') / fy', -1) with the low-res intrinsics (z-depth parameter)"
)
TRANSFORM_APPLY = (
    "pose in the capture's original coordinates (OpenGL c2w [R | t]) -> normalised: "
    "R' = T[:, :3] @ R, t' = scale * (T[:, :3] @ t + T[:, 3])"
)


def build_metadata(
    run: StudentRun,
    camera: ExportCamera,
    sampling: Dict[str, Any],
    sampler: SamplerGraph,
    target: Target,
    fp16: bool,
) -> ExportMetadata:
    """Metadata of ``run`` exported at ``camera`` with ``sampler`` built from ``sampling``
    (:func:`~mobiler2l_ns.export.graphs.sampling_settings`); ``checks`` is left empty."""
    model = run.model
    cfg, network, embedder = model.config, model.network, model.embedder
    s, h, w = cfg.sr_factor, sampler.h, sampler.w
    parameters, embedder_params = count_parameters(network), embedder_parameters(embedder)
    train = run.camera
    return ExportMetadata(
        target=target,
        opset=opset_of(target),
        precision="fp16" if fp16 else "fp32",
        runtime=(
            "Lens Studio (SnapML) only: model.onnx uses the GeluSnap custom op"
            if target == "snap"
            else "any ONNX runtime (checked with onnxruntime)"
        ),
        height=camera.height,
        width=camera.width,
        lowres_height=h,
        lowres_width=w,
        sr_factor=s,
        num_points=cfg.num_points,
        intrinsics={"fx": camera.fx, "fy": camera.fy, "cx": camera.cx, "cy": camera.cy},
        lowres_intrinsics={"fx": camera.fx / s, "fy": camera.fy / s, "cx": camera.cx / s, "cy": camera.cy / s},
        train_camera={k: getattr(train, k) for k in ("height", "width", "fx", "fy", "cx", "cy")},
        camera_model=CAMERA_MODEL,
        sampling={**sampling, "fractions": sampler.fractions.tolist(), "description": sampling_description(sampling)},
        near=sampling.get("near"),
        far=sampling.get("far"),
        encoding=embedder.describe(),
        network={
            "depth": cfg.depth,
            "width": cfg.width,
            "sr_widths": list(network.sr_widths),
            "sr_blocks": cfg.sr_blocks,
            "parameters": parameters,
            "embedder_parameters": embedder_params,
            "fp16_megabytes": 2e-6 * (parameters + embedder_params),
            "flops_per_frame": frame_flops(network, h, w),
            "embedder_flops_per_frame": embedder_flops(embedder, h, w),
            "batchnorm_folded": True,
            "gelu": f"{SNAP_GELU_OP} custom op" if target == "snap" else "exact, 0.5 x (1 + erf(x / sqrt 2))",
        },
        graphs=graph_io(camera, h, w, cfg.num_points, embedder.out_channels),
        pose={
            "convention": POSE_CONVENTION,
            "frame": "dataparser-normalised world (the frame the student was trained in)",
        },
        dataparser_transform={
            "transform": run.dataparser_transform.tolist(),
            "scale": run.dataparser_scale,
            "source": run.source.get("dataparser_transform", ""),
            "apply": TRANSFORM_APPLY,
        },
        reference_pose=run.train_poses[0].tolist(),
        orbit=orbit_settings(run, sampling),
        source=run.source,
        checks={},
    )


def graph_io(camera: ExportCamera, h: int, w: int, num_points: int, channels: int) -> Dict[str, Dict[str, Any]]:
    """Files, and names, shapes, dtypes and memory layouts of the inputs / outputs, of the three graphs."""
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
    image = {
        "name": "image",
        "shape": [1, 3, H, W],
        "dtype": "float32",
        "layout": "NCHW, RGB in [0, 1], row 0 at the top (image row v = pixel row v)",
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
        "model": {"file": GRAPH_FILES["model"], "inputs": [encoding], "outputs": [image]},
    }


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


def orbit_settings(run: StudentRun, sampling: Dict[str, Any]) -> Dict[str, Any]:
    """How the reference runtime's ``--orbit`` moves the camera (normalised world).

    NDC (forward-facing) scenes: a circle of the training cameras' RMS spread in the reference
    camera's image plane; others: a turntable about the mean camera up through the scene-box centre.
    """
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
    centre = run.model.scene_box.aabb.detach().double().mean(dim=0).tolist()
    return {
        "kind": "turntable",
        "description": "reference pose rotated about the mean camera up axis through the scene-box centre",
        "axis": axis,
        "center": centre,
    }
