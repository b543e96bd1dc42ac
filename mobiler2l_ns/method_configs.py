"""MethodSpecifications that nerfstudio discovers through the ``nerfstudio.method_configs`` entry points."""

from mobiler2l_ns.student.config import (
    mobiler2l_method,
    mobiler2l_real_method,
    mobiler2l_small_method,
    mobiler2l_small_pe_method,
    mobiler2l_small_real_method,
)
from mobiler2l_ns.teacher.config import teacher_method, teacher_real_method

__all__ = [
    "teacher_method",
    "teacher_real_method",
    "mobiler2l_method",
    "mobiler2l_small_method",
    "mobiler2l_small_pe_method",
    "mobiler2l_real_method",
    "mobiler2l_small_real_method",
]

from mobiler2l_ns.export.ns_export_hook import install_ns_export_hook  # noqa: E402

install_ns_export_hook()  # adds `ns-export mobiler2l-onnx` (see mobiler2l_ns/export/ns_export_hook.py)
