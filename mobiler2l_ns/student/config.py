"""Names that run configs saved before the ``methods`` package refer to (``config.yml`` pickles them).

The student presets moved to :mod:`mobiler2l_ns.methods.students`, their optimizer configs to
:mod:`mobiler2l_ns.utils.optimizers`; a saved ``!!python/object:mobiler2l_ns.student.config.AdamWOptimizerConfig``
still loads through this module.
"""

from mobiler2l_ns.utils.optimizers import AdamWOptimizerConfig, FusedAdamOptimizerConfig

__all__ = ["AdamWOptimizerConfig", "FusedAdamOptimizerConfig"]
