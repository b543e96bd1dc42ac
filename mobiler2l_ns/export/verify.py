"""Checks of an export before it is written: ONNX validity, shapes, onnxruntime vs PyTorch, fp16 PSNR.

* :func:`check_graphs`: ``onnx.checker`` (full) and strict shape inference of each graph; output
  names / shapes must be those the metadata's sizes imply (the snap model graph, whose
  ``GeluSnap`` op only Lens Studio knows, is checked structurally).
* :func:`onnxruntime_checks`: the fp32 chain in onnxruntime against the PyTorch student
  (:func:`render_torch`) at the reference pose; with fp16, the fp16 ``model.onnx`` against the
  fp32 one (:func:`compare_fp16`) and an emulation of fp16 activations
  (:class:`Fp16ActivationEmulation`).
"""

from __future__ import annotations

import warnings
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch
from torchmetrics.functional.image import peak_signal_noise_ratio

from mobiler2l_ns.export.graphs import ExportCamera
from mobiler2l_ns.export.metadata import Shapes
from mobiler2l_ns.export.onnx_graphs import Target
from mobiler2l_ns.export.runtime import OrtChain
from mobiler2l_ns.export.student_run import StudentRun

FP16_EVAL_POSES = 4
MAX_ORT_DIFF = 1e-3  # onnxruntime vs PyTorch, max abs over the image: a warning above it
PSNR_CAP_DB = 300.0  # identical images (JSON has no infinity)


def check_graphs(protos: Dict[str, Any], shapes: Shapes, target: Target) -> Dict[str, str]:
    """``onnx.checker`` (full) and strict shape inference; outputs must match ``shapes`` (name, shape).

    Returns, per graph, what was checked (metadata.json ``checks``); RuntimeError on a mismatch.
    """
    import onnx

    checked: Dict[str, str] = {}
    for name, proto in protos.items():
        if target == "snap" and name == "model":
            if any(node.op_type in ("Erf", "Gelu") for node in proto.graph.node):
                raise RuntimeError("the snap model graph must express GELU only as GeluSnap")
            checked[name] = "structural only (GeluSnap is unknown outside Lens Studio)"
            continue
        onnx.checker.check_model(proto, full_check=True)
        inferred = onnx.shape_inference.infer_shapes(proto, check_type=True, strict_mode=True)
        for value, (wanted_name, wanted_shape) in zip(inferred.graph.output, shapes[name]["outputs"]):
            dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
            if value.name != wanted_name or dims != wanted_shape:
                raise RuntimeError(f"{name}.onnx output {value.name} {dims} != {wanted_name} {wanted_shape}")
        checked[name] = "onnx.checker full_check + strict shape inference"
    return checked


def render_torch(model: Any, camera: ExportCamera, c2w: np.ndarray) -> np.ndarray:
    """``model.get_outputs_for_camera`` of one ``[3, 4]`` c2w at ``camera``: ``[H, W, 3]`` float32."""
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

    def __init__(self, network: torch.nn.Module, height: int, width: int):
        super().__init__()
        from mobiler2l_ns.student.network import ResBlock, fold_batchnorm

        self.network = fold_batchnorm(network).half().float()
        self.height, self.width = height, width
        for module in self.network.modules():
            if isinstance(module, ResBlock) or not list(module.children()):
                module.register_forward_hook(lambda _m, _args, out: out.half().float())

    @torch.no_grad()
    def forward(self, encoding: torch.Tensor) -> torch.Tensor:
        """``encoding [1, C, h, w]`` -> ``image [1, 3, H, W]``."""
        return self.network(encoding.half().float())[:, :, : self.height, : self.width]


def pooled_psnr(images: List[np.ndarray], references: List[np.ndarray]) -> float:
    """PSNR (data range 1) over all pixels of several images, at most :data:`PSNR_CAP_DB`."""
    value = peak_signal_noise_ratio(
        torch.from_numpy(np.stack(images)).double(), torch.from_numpy(np.stack(references)).double(), data_range=1.0
    )
    return min(float(value), PSNR_CAP_DB)


def compare_fp16(
    chain32: OrtChain, chain16: OrtChain, emulated: Fp16ActivationEmulation, poses: np.ndarray,
    max_poses: int = FP16_EVAL_POSES,
) -> Dict[str, Any]:  # fmt: skip
    """PSNR / max abs difference of the fp16 graph (and of the fp16-activation emulation) vs fp32.

    ``poses`` ``[N, 3, 4]``; PSNR is over all pixels of up to ``max_poses`` evenly spaced ones.
    """
    index = np.unique(np.linspace(0, len(poses) - 1, min(max_poses, len(poses))).round().astype(int))
    references, half, emulation = [], [], []
    for i in index:
        stages = chain32.stages(poses[i])
        references.append(stages["image"].astype(np.float64))
        half.append(chain16.stages(poses[i])["image"].astype(np.float64))
        emulation.append(emulated(torch.from_numpy(stages["encoding"])).numpy().astype(np.float64))
    return {
        "psnr_vs_fp32_db": pooled_psnr(half, references),
        "psnr_fp16_activations_db": pooled_psnr(emulation, references),
        "max_abs_diff_vs_fp32": max(float(np.abs(a - b).max()) for a, b in zip(half, references)),
        "poses": len(index),
    }


def ort_version() -> str:
    """The installed onnxruntime's version."""
    import onnxruntime

    return onnxruntime.__version__


def onnxruntime_checks(
    run: StudentRun, camera: ExportCamera, protos: Dict[str, Any], fp32_model: Any, fp16: bool
) -> Tuple[float, Optional[Dict[str, Any]]]:
    """``(max abs diff onnxruntime vs PyTorch at the reference pose, fp16 stats or None)`` (standard target).

    ``protos``: the graphs being exported; ``fp32_model``: the fp32 model graph (the chain
    compared with PyTorch). The fp16 stats are metadata.json's ``fp16`` entry.
    """
    graphs = {"sampler": protos["sampler"], "embedder": protos["embedder"], "model": fp32_model}
    chain32 = OrtChain.from_protos(graphs, threads=torch.get_num_threads())
    reference = run.train_poses[0]
    diff = float(np.abs(chain32.render(reference) - render_torch(run.model, camera, reference)).max())
    if diff > MAX_ORT_DIFF:
        warnings.warn(f"MobileR2L ONNX export: onnxruntime and PyTorch differ by {diff:.2e} (max abs)")
    if not fp16:
        return diff, None
    chain16 = OrtChain.from_protos({**graphs, "model": protos["model"]}, threads=torch.get_num_threads())
    emulated = Fp16ActivationEmulation(run.model.network, camera.height, camera.width)
    stats = compare_fp16(chain32, chain16, emulated, run.train_poses)
    stats["measured_with"] = (
        f"onnxruntime {ort_version()} CPUExecutionProvider, model.onnx fp16 vs the same graph in fp32, "
        "on evenly spaced training poses. The CPU provider upcasts fp16 ops without fp16 kernels, so this "
        "mostly measures fp16 weights; psnr_fp16_activations_db also rounds every layer's output to fp16 "
        "(PyTorch emulation of runtimes that compute in fp16, e.g. mobile GPUs / WebGPU)"
    )
    return diff, stats
