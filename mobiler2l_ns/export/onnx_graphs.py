"""The three graph modules (:mod:`.graphs`) as ONNX ModelProtos, per export target.

Graphs are produced by torch's TorchScript-based exporter (``dynamo=False``): it is the one that
emits opset 11 (the dynamo exporter starts at opset 18 and cannot convert down that far), it is
several times faster, and after BatchNorm folding and onnxscript's optimizer its graphs are the
same ops (Conv, ConvTranspose, Erf-GELU, Add, Sigmoid, Slice) as the dynamo exporter's.

* ``standard``: opset 17, exact (erf) GELU; ``fp16``: ``model.onnx`` with float16 weights and
  arithmetic (float32 I/O).
* ``snap``: opset 11, every GELU as Snap's ``GeluSnap`` custom op (Lens Studio only).
"""

from __future__ import annotations

import io
import warnings
from typing import Any, Dict, Literal, Sequence, Tuple

import torch

from mobiler2l_ns.export.graphs import EmbedderGraph, ExportCamera, ModelGraph, SamplerGraph, count_gelu
from mobiler2l_ns.utils.errors import InputError

Target = Literal["standard", "snap"]

STANDARD_OPSET = 17
SNAP_OPSET = 11
SNAP_GELU_OP = "GeluSnap"
MODEL_DOC = "MobileR2L network (BatchNorm folded): encoding NCHW [1,C,h,w] -> image NCHW [1,3,H,W] in [0,1]"


def opset_of(target: Target) -> int:
    """ONNX opset of a target."""
    return SNAP_OPSET if target == "snap" else STANDARD_OPSET


def check_target(model: Any, target: Target) -> None:
    """InputError when ``model`` cannot be exported for ``target`` (snap: only the 'pe' embedder)."""
    embedder = model.config.embedder
    if target == "snap" and embedder != "pe":
        raise InputError(
            f"--target snap writes opset {SNAP_OPSET}, which has no GridSample: the '{embedder}' embedder's grid "
            "lookups need opset >= 16 (export it with the standard target, or train a 'pe' student for Lens Studio)"
        )


def to_onnx(
    module: torch.nn.Module,
    args: Tuple[torch.Tensor, ...],
    input_names: Sequence[str],
    output_names: Sequence[str],
    opset: int,
    doc: str,
) -> Any:
    """ONNX ModelProto of ``module(*args)`` (legacy TorchScript exporter, then onnxscript's optimizer).

    The optimizer turns the exporter's scalar ``Constant`` nodes into shared initializers and
    removes dead code; it keeps input / output names and the opset.
    """
    import onnx
    import onnxscript.optimizer

    from mobiler2l_ns import __version__

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
    proto.producer_version = __version__
    return proto


def to_snap_gelu(proto: Any, expected: int) -> Any:
    """Rename the ReLU placeholders of ``proto`` to ``GeluSnap`` (default domain, as Snap's template)."""
    relus = [node for node in proto.graph.node if node.op_type == "Relu"]
    if len(relus) != expected:
        raise RuntimeError(f"expected {expected} GELU placeholders in the snap graph, found {len(relus)} Relu nodes")
    for node in relus:
        node.op_type = SNAP_GELU_OP
        node.name = node.name.replace("Relu", SNAP_GELU_OP) if node.name else ""
    return proto


def export_protos(
    model: Any,
    sampler: SamplerGraph,
    embedder: EmbedderGraph,
    camera: ExportCamera,
    target: Target,
    fp16: bool,
) -> Tuple[Dict[str, Any], Any]:
    """``({"sampler", "embedder", "model": ModelProto}, fp32 model proto)`` for ``target``.

    The fp32 model graph is returned too (the same object as ``protos["model"]`` for a plain
    standard export): onnxruntime checks run on it. Traced at the identity pose 4 units up +Z.
    """
    cfg = model.config
    opset = opset_of(target)
    h, w, K, C = sampler.h, sampler.w, cfg.num_points, model.embedder.out_channels
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
    H, W = camera.height, camera.width
    fp32_model = to_onnx(ModelGraph(network, H, W), (encoding,), ["encoding"], ["image"], opset, MODEL_DOC)
    if target == "snap":
        snap = to_onnx(
            ModelGraph(network, H, W, relu_for_gelu=True),
            (encoding,), ["encoding"], ["image"], opset, MODEL_DOC + "; GELU as the GeluSnap op (Lens Studio only)",
        )  # fmt: skip
        protos["model"] = to_snap_gelu(snap, expected=count_gelu(network))
    elif fp16:
        protos["model"] = to_onnx(
            ModelGraph(network, H, W, half=True),
            (encoding,), ["encoding"], ["image"], opset, MODEL_DOC + "; float16 weights and arithmetic, float32 I/O",
        )  # fmt: skip
    else:
        protos["model"] = fp32_model
    return protos, fp32_model
