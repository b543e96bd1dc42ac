"""The whole chain, capture -> teacher -> student -> ONNX -> previews, as resumable stages.

:mod:`~mobiler2l_ns.chain.chain` plans and runs the stages of one scene; each stage is a
:class:`~mobiler2l_ns.chain.stage_base.Stage` (:mod:`~mobiler2l_ns.chain.training` for the ``ns-train``
stages, :mod:`~mobiler2l_ns.chain.steps` for the others) in the folder of :mod:`~mobiler2l_ns.chain.layout`.
The named presets live with the rest of the wiring, in :mod:`mobiler2l_ns.methods.presets`.
"""

from mobiler2l_ns.chain.chain import Chain
from mobiler2l_ns.chain.presets import ChainPreset
from mobiler2l_ns.chain.stage_base import Decision, Stage, StageError, StageRecord

__all__ = ["Chain", "ChainPreset", "Decision", "Stage", "StageError", "StageRecord"]
