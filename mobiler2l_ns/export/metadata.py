"""``metadata.json`` of a ``mobiler2l-onnx`` export: one dataclass for the writer and every reader.

The exporter (:mod:`.onnx_export`) builds an :class:`ExportMetadata` and writes it with
:meth:`ExportMetadata.write`; the onnxruntime runtime (:mod:`.runtime`) and the browser viewer's
check (:mod:`mobiler2l_ns.web.export_check`) read it with :meth:`ExportMetadata.read`, which
validates the file once: a missing or ill-typed field is a one-line
:class:`~mobiler2l_ns.utils.errors.InputError` naming the file and the field (dotted path, e.g.
``graphs.model.file``). ``web/static/viewer.js`` reads the same JSON.

The file is a JSON object whose keys are the dataclass fields, in field order (``fp16`` only in
fp16 exports). An :class:`ExportMetadata` is also a read-only mapping of those keys
(``meta["orbit"]`` is ``meta.orbit``), so code written against the JSON reads it unchanged.
Light to import (no torch / onnx): ``mobiler2l-view`` imports it.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Dict, Iterator, List, NoReturn, Optional, Sequence, Tuple, Union

from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.utils.io import write_text_atomic

METADATA_NAME = "metadata.json"
FORMAT_NAME = "mobiler2l-onnx"
FORMAT_VERSION = 1
GRAPH_NAMES = ("sampler", "embedder", "model")
GRAPH_FILES = {name: f"{name}.onnx" for name in GRAPH_NAMES}
"""Default file of each graph (the metadata's ``graphs.NAME.file`` is what readers use)."""
TARGETS = ("standard", "snap")
PRECISIONS = ("fp32", "fp16")
ORBIT_KINDS = ("turntable", "circle")
POSE_CONVENTION = (
    "nerfstudio camera-to-world, OpenGL axes (camera looks down its -Z, +Y up, +X right); "
    "rotation = c2w[:3, :3], translation = c2w[:3, 3] (camera centre)"
)
# graph -> (number of inputs, number of outputs) in graphs.NAME.inputs / outputs
GRAPH_ARITY = {"sampler": (2, 1), "embedder": (1, 1), "model": (1, 1)}

Shapes = Dict[str, Dict[str, List[Tuple[str, List[int]]]]]


@dataclass(kw_only=True, eq=True)
class ExportMetadata(Mapping):
    """Contents of ``metadata.json`` (see :func:`mobiler2l_ns.export.onnx_export.write_export`).

    Sizes are pixels; ``reference_pose`` is a 3x4 nerfstudio c2w (normalised world); nested
    dicts hold the JSON objects as written (``graphs[name]`` has ``file``, ``inputs``, ``outputs``;
    ``dataparser_transform`` has ``transform`` (3x4) and ``scale``; ``orbit`` has ``kind`` and
    ``axis`` + ``center`` (turntable) or ``radius`` (circle)).
    """

    format: str = FORMAT_NAME
    format_version: int = FORMAT_VERSION
    target: str
    opset: int
    precision: str
    runtime: str
    height: int
    width: int
    lowres_height: int
    lowres_width: int
    sr_factor: int
    num_points: int
    intrinsics: Dict[str, float]
    lowres_intrinsics: Dict[str, float]
    train_camera: Dict[str, float]
    camera_model: str
    sampling: Dict[str, Any]
    near: Optional[float]
    far: Optional[float]
    encoding: Dict[str, Any]
    network: Dict[str, Any]
    graphs: Dict[str, Dict[str, Any]]
    pose: Dict[str, Any]
    dataparser_transform: Dict[str, Any]
    reference_pose: List[List[float]]
    orbit: Dict[str, Any]
    source: Dict[str, Any]
    checks: Dict[str, Any]
    fp16: Optional[Dict[str, Any]] = None
    files: List[str] = field(default_factory=list)

    # ---------------------------------------------------------------- mapping of the JSON keys

    def __getitem__(self, key: str) -> Any:
        if key not in _FIELD_NAMES or (key == "fp16" and self.fp16 is None):
            raise KeyError(key)
        return getattr(self, key)

    def __iter__(self) -> Iterator[str]:
        return (name for name in _FIELD_NAMES if name != "fp16" or self.fp16 is not None)

    def __len__(self) -> int:
        return sum(1 for _ in self)

    # ---------------------------------------------------------------- JSON

    def to_dict(self) -> Dict[str, Any]:
        """The JSON object written to ``metadata.json`` (keys in field order)."""
        return {name: getattr(self, name) for name in self}

    def to_json(self) -> str:
        """``metadata.json``'s text (indented; NaN / infinity are refused, as JSON has none)."""
        return json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n"

    def write(self, directory: Union[str, Path], what: str = "") -> Path:
        """Write ``DIRECTORY/metadata.json`` atomically; returns its path.

        ``what``: see :func:`~mobiler2l_ns.utils.io.write_atomic` (empty: an OSError propagates).
        """
        path = Path(directory) / METADATA_NAME
        write_text_atomic(path, self.to_json(), what=what)
        return path

    @classmethod
    def read(cls, directory: Union[str, Path]) -> "ExportMetadata":
        """``DIRECTORY/metadata.json``, validated (InputError naming the folder / file otherwise)."""
        directory = Path(directory)
        if not directory.exists():
            raise InputError(f"{directory}: no such folder")
        if not directory.is_dir():
            raise InputError(f"{directory}: not a folder (expected an ns-export mobiler2l-onnx output folder)")
        path = directory / METADATA_NAME
        if not path.is_file():
            raise InputError(f"{directory}: not a mobiler2l-onnx export (no {METADATA_NAME})")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: invalid JSON ({err})") from None
        except OSError as err:
            raise InputError(f"{path}: cannot read it ({err.strerror or err})") from None
        return cls.from_json(data, str(path))

    @classmethod
    def from_json(cls, data: Any, source: str = METADATA_NAME) -> "ExportMetadata":
        """Validate a parsed ``metadata.json`` (``source`` names it in errors) and wrap it."""
        if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
            raise InputError(f"{source}: not a {FORMAT_NAME} metadata file")
        check = _Checker(source, data)
        version = check.integer("format_version")
        if version > FORMAT_VERSION:
            raise InputError(
                f"{source}: format_version {version} is newer than this mobiler2l-ns reads ({FORMAT_VERSION}); "
                "update mobiler2l-ns or export again"
            )
        values: Dict[str, Any] = {"format": FORMAT_NAME, "format_version": version}
        values["target"] = check.choice("target", TARGETS)
        values["precision"] = check.choice("precision", PRECISIONS)
        for name in ("opset", "height", "width", "lowres_height", "lowres_width", "sr_factor", "num_points"):
            values[name] = check.integer(name)
        for name in ("runtime", "camera_model"):
            values[name] = check.string(name)
        for name in ("intrinsics", "lowres_intrinsics"):
            values[name] = check.numbers(name, ("fx", "fy", "cx", "cy"))
        values["train_camera"] = check.numbers("train_camera", ("height", "width", "fx", "fy", "cx", "cy"))
        values["sampling"] = check.mapping("sampling")
        check.string("sampling.mode")
        for name in ("near", "far"):
            values[name] = check.optional_number(name)
        values["encoding"] = check.mapping("encoding")
        check.string("encoding.kind")
        check.integer("encoding.channels")
        values["network"] = check.mapping("network")
        check.integer("network.parameters", minimum=0)
        values["graphs"] = check.graphs()
        values["pose"] = check.mapping("pose")
        values["dataparser_transform"] = check.mapping("dataparser_transform")
        check.matrix("dataparser_transform.transform", ((3, 4),))
        check.number("dataparser_transform.scale", positive=True)
        values["reference_pose"] = check.matrix("reference_pose", ((3, 4), (4, 4)))[:3]
        values["orbit"] = check.orbit()
        for name in ("source", "checks"):
            values[name] = check.mapping(name)
        values["fp16"] = check.mapping("fp16") if data.get("fp16") is not None else None
        values["files"] = check.strings("files")
        meta = cls(**values)
        meta.check_sizes(source)
        return meta

    # ---------------------------------------------------------------- what readers need

    def check_sizes(self, source: str = METADATA_NAME) -> None:
        """InputError unless the low-res ray grid is ``ceil(height / sr_factor) x ceil(width / sr_factor)``."""
        H, W, s = self.height, self.width, self.sr_factor
        expected = (math.ceil(H / s), math.ceil(W / s))
        if (self.lowres_height, self.lowres_width) != expected:
            raise InputError(
                f"{source}: lowres_height x lowres_width {self.lowres_height} x {self.lowres_width} is not "
                f"ceil(height / sr_factor) x ceil(width / sr_factor) = {expected[0]} x {expected[1]}"
            )

    def refuse_snap(self, directory: Union[str, Path], runtime: str) -> None:
        """InputError for a ``--target snap`` export (Lens Studio only), naming the ``runtime`` refusing it."""
        if self.target == "snap":
            raise InputError(
                f"{directory}: a --target snap export runs only in Lens Studio (GeluSnap op); "
                f"export with the standard target for {runtime}"
            )

    def graph_file(self, name: str) -> str:
        """File name (inside the export folder) of graph ``name`` (sampler, embedder or model)."""
        return str(self.graphs[name]["file"])

    def io_shapes(self) -> Shapes:
        """Each graph's inputs / outputs as ``(name, shape)``, shapes as the sizes imply them.

        ``sampler``: rotation [3, 3], translation [3] -> points [h, w, K, 3]; ``embedder``:
        points -> encoding [1, C, h, w]; ``model``: encoding -> image [1, 3, H, W].
        """
        H, W, h, w = self.height, self.width, self.lowres_height, self.lowres_width
        K, C = self.num_points, int(self.encoding["channels"])
        sampler, embedder, model = (self.graphs[name] for name in GRAPH_NAMES)
        points = (sampler["outputs"][0]["name"], [h, w, K, 3])
        encoding = (embedder["outputs"][0]["name"], [1, C, h, w])
        rotation, translation = (value["name"] for value in sampler["inputs"])
        return {
            "sampler": {"inputs": [(rotation, [3, 3]), (translation, [3])], "outputs": [points]},
            "embedder": {"inputs": [points], "outputs": [encoding]},
            "model": {"inputs": [encoding], "outputs": [(model["outputs"][0]["name"], [1, 3, H, W])]},
        }


_FIELD_NAMES = tuple(f.name for f in fields(ExportMetadata))


class _Checker:
    """Typed look-ups in a parsed metadata.json; every failure is one line naming file and field."""

    def __init__(self, source: str, data: Dict[str, Any]):
        self.source = source
        self.data = data

    def fail(self, name: str, expected: str, value: Any) -> NoReturn:
        try:
            shown = json.dumps(value)
        except (TypeError, ValueError):  # from_json of Python objects that JSON cannot hold
            shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise InputError(f"{self.source}: field '{name}' must be {expected}, got {shown}")

    def get(self, name: str) -> Any:
        """The value at dotted path ``name`` (InputError when a level is missing or not an object)."""
        value: Any = self.data
        parts = name.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(value, dict):
                self.fail(".".join(parts[:depth]), "a JSON object", value)
            if part not in value:
                raise InputError(f"{self.source}: missing field '{name}'")
            value = value[part]
        return value

    def integer(self, name: str, minimum: int = 1) -> int:
        value = self.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
            self.fail(name, "a positive integer" if minimum == 1 else f"an integer >= {minimum}", value)
        return value

    def number(self, name: str, positive: bool = False) -> float:
        return self.is_number(name, self.get(name), positive)

    def is_number(self, name: str, value: Any, positive: bool = False) -> float:
        """``value`` (found at ``name``) if it is a finite (positive) number."""
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        if not ok or (positive and value <= 0):
            self.fail(name, "a positive number" if positive else "a finite number", value)
        return value

    def optional_number(self, name: str) -> Optional[float]:
        return None if self.get(name) is None else self.number(name)

    def string(self, name: str) -> str:
        value = self.get(name)
        if not isinstance(value, str):
            self.fail(name, "a string", value)
        return value

    def choice(self, name: str, choices: Sequence[str]) -> str:
        value = self.get(name)
        if value not in choices:
            self.fail(name, " or ".join(repr(c) for c in choices), value)
        return value

    def strings(self, name: str) -> List[str]:
        value = self.get(name)
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            self.fail(name, "a list of strings", value)
        return value

    def mapping(self, name: str) -> Dict[str, Any]:
        value = self.get(name)
        if not isinstance(value, dict):
            self.fail(name, "a JSON object", value)
        return value

    def numbers(self, name: str, keys: Sequence[str]) -> Dict[str, float]:
        """An object with (at least) finite numbers under ``keys``."""
        value = self.mapping(name)
        for key in keys:
            self.number(f"{name}.{key}")
        return value

    def matrix(self, name: str, shapes: Sequence[Tuple[int, int]]) -> List[List[float]]:
        """A matrix of finite numbers (nested lists) of one of ``shapes``."""
        value = self.get(name)
        wanted = " or ".join(f"{r}x{c}" for r, c in shapes)
        rows = value if isinstance(value, list) else []
        shape = (len(rows), len(rows[0]) if rows and isinstance(rows[0], list) else -1)
        if shape not in shapes or not all(isinstance(row, list) and len(row) == shape[1] for row in rows):
            self.fail(name, f"a {wanted} matrix", value)
        for i, row in enumerate(rows):
            for j, entry in enumerate(row):
                self.is_number(f"{name}[{i}][{j}]", entry)
        return value

    def graphs(self) -> Dict[str, Dict[str, Any]]:
        """``graphs``: per graph a plain ``file`` name and its inputs / outputs (name + shape)."""
        graphs = self.mapping("graphs")
        for name, (inputs, outputs) in GRAPH_ARITY.items():
            file = self.string(f"graphs.{name}.file")
            if Path(file).name != file or file in ("", ".", ".."):
                self.fail(f"graphs.{name}.file", "a file name in the export folder", file)
            for kind, count in (("inputs", inputs), ("outputs", outputs)):
                values = self.get(f"graphs.{name}.{kind}")
                if not isinstance(values, list) or len(values) != count:
                    self.fail(f"graphs.{name}.{kind}", f"a list of {count} tensor(s)", values)
                for index in range(count):
                    self._tensor(f"graphs.{name}.{kind}[{index}]", values[index])
        return graphs

    def _tensor(self, name: str, value: Any) -> None:
        if not isinstance(value, dict) or not isinstance(value.get("name"), str):
            self.fail(f"{name}.name", "a string", value.get("name") if isinstance(value, dict) else value)
        shape = value.get("shape")
        if not isinstance(shape, list) or not all(isinstance(d, int) and not isinstance(d, bool) for d in shape):
            self.fail(f"{name}.shape", "a list of integers", shape)

    def orbit(self) -> Dict[str, Any]:
        """``orbit``: ``kind`` turntable (``axis``, ``center``: 3 numbers) or circle (``radius``)."""
        orbit = self.mapping("orbit")
        if self.choice("orbit.kind", ORBIT_KINDS) == "turntable":
            for key in ("axis", "center"):
                vector = self.get(f"orbit.{key}")
                if not isinstance(vector, list) or len(vector) != 3:
                    self.fail(f"orbit.{key}", "3 numbers", vector)
                for i, entry in enumerate(vector):
                    self.is_number(f"orbit.{key}[{i}]", entry)
            if not any(orbit["axis"]):
                self.fail("orbit.axis", "a non-zero vector", orbit["axis"])
        else:
            radius = self.number("orbit.radius")
            if radius < 0:
                self.fail("orbit.radius", "a number >= 0", radius)
        return orbit
