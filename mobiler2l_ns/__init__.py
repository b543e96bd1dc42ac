"""mobiler2l-ns: MobileR2L neural light fields as a nerfstudio method plugin.

Stages (each reads only the previous stage's files):
teacher (Instant-NGP) -> pseudo views -> student (light field) -> ONNX export.
"""

__version__ = "0.1.0"

# Importing the plugin (nerfstudio does so for every ns-* command through the entry points, and
# yaml does so when it reads a run's config.yml) makes nerfstudio checkpoints loadable under
# torch >= 2.6.
from mobiler2l_ns.utils.compat import register_checkpoint_safe_globals

register_checkpoint_safe_globals()
