"""export stage of mobiler2l-ns: the MobileR2L student as ONNX graphs for mobile / web runtimes.

* ``ns-export mobiler2l-onnx --load-config RUN/config.yml --output-dir DIR`` (nerfstudio's own
  command; :mod:`.ns_export_hook` explains how the subcommand gets there, :mod:`.command` is
  its options) or :func:`export_mobiler2l_onnx` in Python: :mod:`.onnx_export` (the API), with
  :mod:`.student_run` (loading the run), :mod:`.graphs` and :mod:`.onnx_graphs` (the graphs),
  :mod:`.describe` (what the metadata says) and :mod:`.verify` (checks before writing).
* ``metadata.json``: :class:`ExportMetadata` (:mod:`.metadata`), written by the exporter, read by
  the runtime and the browser viewer.
* Reference runtime (onnxruntime, pose -> image): :class:`OnnxLightField`, CLI ``mobiler2l-render``:
  :mod:`.runtime`.

Attributes are imported lazily: nerfstudio imports this package (through the plugin's entry
point) for every ``ns-*`` command, which must not pay for onnx / onnxruntime.
"""

from typing import Any

__all__ = [
    "export_mobiler2l_onnx",
    "export_model",
    "ExportResult",
    "ExportMetadata",
    "OnnxLightField",
    "ExportMobileR2LOnnx",
]

_LAZY = {
    "export_mobiler2l_onnx": "mobiler2l_ns.export.onnx_export",
    "export_model": "mobiler2l_ns.export.onnx_export",
    "ExportResult": "mobiler2l_ns.export.onnx_export",
    "ExportMetadata": "mobiler2l_ns.export.metadata",
    "OnnxLightField": "mobiler2l_ns.export.runtime",
    "ExportMobileR2LOnnx": "mobiler2l_ns.export.command",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
