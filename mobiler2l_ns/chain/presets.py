"""What the chain runs: :class:`ChainPreset`, steps and sizes per stage.

The named presets (``mobiler2l run DATA --preset NAME``) are wired in :mod:`mobiler2l_ns.methods.presets`.
The ``ns-train`` methods follow the data: Blender scenes train ``mobiler2l-teacher`` and the
preset's student; ``ns-process-data`` captures (``transforms.json``) train
``mobiler2l-teacher-real`` and the student's ``-real`` variant (near/far from the data).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Optional, Tuple

from mobiler2l_ns.capture.photos import MAX_PHOTO_SIZE


@dataclass(frozen=True)
class ChainPreset:
    """What each stage of the chain runs."""

    description: str
    teacher_steps: int
    student_method: str
    """``mobiler2l`` (paper size) or ``mobiler2l-small`` (CPU size)."""
    student_steps: int
    pseudo_count: int
    """Teacher-rendered pseudo views for the student (paper: 10k whole views; the small student's are
    64x64 patches, see ``mobiler2l-small``)."""
    real_share: float = 0.25
    """Share of real images in the student's batches."""
    finetune_steps: int = 0
    """Final student steps on real images only."""
    teacher_args: Tuple[str, ...] = ()
    """Extra ``ns-train`` flags for the teacher (e.g. ``--pipeline.model.log2-hashmap-size 17``)."""
    student_args: Tuple[str, ...] = ()
    """Extra ``ns-train`` flags for the student."""
    eval_views: Optional[int] = None
    """Test views evaluated (evenly spaced; None: all)."""
    orbit_frames: int = 24
    """Frames of the preview orbit GIF rendered with onnxruntime."""
    max_photo_size: int = MAX_PHOTO_SIZE
    """Raw photos (a folder of them) are shrunk to this longer side (px) before COLMAP, and so trained on at
    most this size (``mobiler2l-process --max-photo-size``; 0: their own size)."""

    def with_steps(self, teacher: Optional[int] = None, student: Optional[int] = None) -> "ChainPreset":
        """A copy with other step counts (``None`` keeps the preset's)."""
        return replace(
            self,
            teacher_steps=self.teacher_steps if teacher is None else teacher,
            student_steps=self.student_steps if student is None else student,
        )
