"""What ``mobiler2l-view`` checks in an export folder before serving it, and the preview graph.

:func:`load_viewer_export` reads ``metadata.json`` (validated by
:class:`~mobiler2l_ns.export.metadata.ExportMetadata`) and the three graphs with ``onnx`` and
refuses (one-line :class:`InputError`) anything the page could not render: a missing or
unreadable graph, a Lens Studio (``--target snap``) export, or metadata whose sizes disagree with
the graphs' own input / output shapes (image ``H x W``, ray grid ``h x w``, K points, C encoding
channels).

Reduced resolution: the exported ``model.onnx`` has fixed shapes (``encoding [1, C, h, w] ->
image [1, 3, H, W]``), so it renders only the exported size. The network itself is fully
convolutional; :func:`preview_model` is the same graph (same weights and nodes) with symbolic
``h, w`` and ``H, W``. The page feeds it every f-th ray of the exported ray grid (the encoding
subsampled by f in both directions): the image of a pinhole camera with ``fx / f, fy / f`` whose
rays are a subset of the exported camera's, ``ceil(h / f) s x ceil(w / f) s`` pixels.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

from mobiler2l_ns.export.metadata import GRAPH_NAMES, METADATA_NAME, ExportMetadata
from mobiler2l_ns.utils.errors import InputError

# ops whose output size follows their input's: a graph made only of these renders any grid size
SPATIAL_OPS = {
    "Add", "Cast", "Clip", "Constant", "Conv", "ConvTranspose", "Div", "Erf", "Gelu", "Identity",
    "Mul", "Relu", "Sigmoid", "Slice", "Sub", "Tanh",
}  # fmt: skip


@dataclass
class ViewerExport:
    """An export folder checked for the browser viewer."""

    directory: Path
    metadata: ExportMetadata
    graph_files: Dict[str, str]  # graph name -> file name inside ``directory``
    preview_model: Optional[bytes]  # model.onnx with symbolic spatial dims; None: full size only
    preview_note: str  # why there is no preview graph (empty when there is one)

    @property
    def served_files(self) -> List[str]:
        """File names the server may send from the export folder."""
        return [METADATA_NAME, *self.graph_files.values()]


def graph_shapes(proto) -> Dict[str, List[Tuple[str, List[Any]]]]:
    """(name, shape) of a graph's inputs (initializers excluded) and outputs; symbolic dims as strings."""
    initializers = {t.name for t in proto.graph.initializer}

    def dims(value) -> List[Any]:
        return [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]

    inputs = [(v.name, dims(v)) for v in proto.graph.input if v.name not in initializers]
    return {"inputs": inputs, "outputs": [(v.name, dims(v)) for v in proto.graph.output]}


def check_graph(path: Path, proto, expected: Dict[str, List[Tuple[str, List[int]]]]) -> None:
    """InputError naming the file when a graph's inputs / outputs differ from the metadata's."""
    actual = graph_shapes(proto)
    for kind in ("inputs", "outputs"):
        want, got = expected[kind], actual[kind]
        if [n for n, _ in got] != [n for n, _ in want]:
            raise InputError(
                f"{path}: {kind} {[n for n, _ in got]} but {METADATA_NAME} describes {[n for n, _ in want]}"
            )
        for (tensor, shape), (_, wanted) in zip(got, want):
            if shape != wanted:
                raise InputError(
                    f"{path}: {kind[:-1]} '{tensor}' has shape {shape} but {METADATA_NAME} sizes give {wanted}"
                )


def load_graph(path: Path):
    """The ONNX ModelProto of ``path`` (InputError when missing or not ONNX)."""
    import onnx

    if not path.is_file():
        raise InputError(f"{path.parent}: missing {path.name}")
    try:
        proto = onnx.load(str(path))
    except Exception as err:  # protobuf DecodeError and friends: a user problem
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise InputError(f"{path}: not a readable ONNX graph ({first})") from None
    if not proto.graph.node:
        raise InputError(f"{path}: not a readable ONNX graph (no nodes)")
    return proto


def non_spatial_reason(proto) -> str:
    """Why ``proto`` would not run on another grid size ('' when it would)."""
    constants = {t.name: t for t in proto.graph.initializer}
    for node in proto.graph.node:
        if node.op_type not in SPATIAL_OPS:
            return f"model.onnx has a {node.op_type} node"
        if node.op_type == "ConvTranspose" and any(a.name == "output_shape" for a in node.attribute):
            return "a ConvTranspose of model.onnx fixes its output shape"
        if node.op_type == "Slice":
            import onnx.numpy_helper

            starts = constants.get(node.input[1]) if len(node.input) > 1 else None
            if starts is None or onnx.numpy_helper.to_array(starts).any():
                return "model.onnx crops with a Slice that does not start at 0"
    return ""


def preview_model(proto) -> Tuple[Optional[bytes], str]:
    """``(bytes of model.onnx with symbolic spatial dims, '')`` or ``(None, reason)``.

    Input ``encoding [1, C, h, w]`` and output ``image [1, 3, H, W]`` get ``h, w`` / ``H, W`` as
    named dims; every node and weight is unchanged (the crop to ``H x W`` clamps on smaller grids).
    """
    reason = non_spatial_reason(proto)
    if reason:
        return None, reason
    dynamic = copy.deepcopy(proto)
    for value, names in ((dynamic.graph.input[0], ("h", "w")), (dynamic.graph.output[0], ("H", "W"))):
        dims = value.type.tensor_type.shape.dim
        for dim, symbol in zip(dims[2:], names):
            dim.Clear()
            dim.dim_param = symbol
    del dynamic.graph.value_info[:]
    return dynamic.SerializeToString(), ""


def load_viewer_export(directory: Path) -> ViewerExport:
    """Check an export folder for the viewer (see the module docstring); InputError on bad input."""
    directory = Path(directory)
    metadata = ExportMetadata.read(directory)
    metadata.refuse_snap(directory, "the browser")
    files = {name: metadata.graph_file(name) for name in GRAPH_NAMES}
    missing = [file for file in files.values() if not (directory / file).is_file()]
    if missing:
        raise InputError(f"{directory}: missing {', '.join(missing)}")
    protos = {name: load_graph(directory / file) for name, file in files.items()}
    expected = metadata.io_shapes()
    for name in GRAPH_NAMES:
        check_graph(directory / files[name], protos[name], expected[name])
    preview, note = preview_model(protos["model"])
    return ViewerExport(directory, metadata, files, preview, note)
