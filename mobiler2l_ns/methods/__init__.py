"""The one place that wires the stages together: nerfstudio methods and the chain's presets.

* :mod:`.teachers`: ``ns-train mobiler2l-teacher`` / ``mobiler2l-teacher-real`` (Instant-NGP).
* :mod:`.students`: ``ns-train mobiler2l``, ``mobiler2l-small``, ``mobiler2l-small-pe``, ``mobiler2l-real``,
  ``mobiler2l-small-real`` (student model + pseudo-view datamanager + optimizers), and the named
  student recipes the benchmarks compare.
* :mod:`.presets`: the chain presets of ``mobiler2l run --preset NAME``.

Nothing in the stage packages imports this package: nerfstudio does, through the
``nerfstudio.method_configs`` entry points (``pyproject.toml``), and so do ``mobiler2l``
(``mobiler2l_ns.cli``), the tests and the benchmarks. Importing it has one side effect, on purpose:
nerfstudio 1.1.5 has no exporter plugin hook, so it installs the one that adds ``ns-export
mobiler2l-onnx`` (:mod:`mobiler2l_ns.export.ns_export_hook`; nerfstudio imports the entry points
while ``ns-export`` starts, which is the only moment our code runs there).
"""

from mobiler2l_ns.export.ns_export_hook import install_ns_export_hook
from mobiler2l_ns.methods.students import (
    mobiler2l_method,
    mobiler2l_real_method,
    mobiler2l_small_method,
    mobiler2l_small_pe_method,
    mobiler2l_small_real_method,
)
from mobiler2l_ns.methods.teachers import teacher_method, teacher_real_method

__all__ = [
    "teacher_method",
    "teacher_real_method",
    "mobiler2l_method",
    "mobiler2l_small_method",
    "mobiler2l_small_pe_method",
    "mobiler2l_real_method",
    "mobiler2l_small_real_method",
]

install_ns_export_hook()
