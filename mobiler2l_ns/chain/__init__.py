"""The whole chain, capture -> teacher -> student -> ONNX -> previews, as resumable stages."""

from mobiler2l_ns.chain.presets import PRESETS, ChainPreset
from mobiler2l_ns.chain.stages import Chain, Decision, StageError, StageRecord

__all__ = ["PRESETS", "Chain", "ChainPreset", "Decision", "StageError", "StageRecord"]
