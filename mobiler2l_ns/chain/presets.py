"""Presets of the whole chain (``mobiler2l run DATA --preset NAME``): steps and sizes per stage.

The ``ns-train`` methods follow the data: Blender scenes train ``mobiler2l-teacher`` and the
preset's student; ``ns-process-data`` captures (``transforms.json``) train
``mobiler2l-teacher-real`` and the student's ``-real`` variant (near/far from the data).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Dict, Optional, Tuple


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

    def with_steps(self, teacher: Optional[int] = None, student: Optional[int] = None) -> "ChainPreset":
        """A copy with other step counts (``None`` keeps the preset's)."""
        return replace(
            self,
            teacher_steps=self.teacher_steps if teacher is None else teacher,
            student_steps=self.student_steps if student is None else student,
        )


X2_SMALL_CROPS = ("--pipeline.model.sr-factor", "2", "--pipeline.datamanager.crop-size", "32", "32")
"""The CPU presets' student: ``mobiler2l-small`` at x2 super-resolution (not x4) on four 32x32 crops per step
(not 64x64): more rays per image, cheaper steps (see the presets' notes for the measurements)."""

PRESETS: Dict[str, ChainPreset] = {
    "cpu-toy": ChainPreset(
        description="minutes on a 2-core CPU for a ~100x100 scene (the README's main job on scenes/toy-360)",
        teacher_steps=800,
        student_method="mobiler2l-small",
        student_steps=4000,
        pseudo_count=400,
        real_share=0.5,
        finetune_steps=200,
        # 100x100 images: x2 super-resolution (a 50x50 ray grid, not 25x25) and 32x32 crops; measured on
        # toy-360 against x4 / 64x64 crops for the same 5 min: 28.81 vs 26.00 dB (teacher 30.17), and
        # 9.6 vs 7.5 steps/s (benchmarks/student_convergence.py, README "Student")
        student_args=X2_SMALL_CROPS,
    ),
    "cpu": ChainPreset(
        description="under an hour on a 2-core CPU for a 400x400 scene (CPU teacher, small student)",
        teacher_steps=2000,
        student_method="mobiler2l-small",
        student_steps=14_000,
        pseudo_count=500,
        real_share=0.5,
        finetune_steps=500,
        eval_views=20,
        # x2 super-resolution on 32x32 crops: lego-400, 4 min each (benchmarks/student_convergence.py), 24.00 dB
        # at 10.7 steps/s vs x4 on 64x64 crops 23.80 dB at 7.0 steps/s, and still climbing faster
        student_args=X2_SMALL_CROPS,
    ),
    "gpu": ChainPreset(
        description="paper scale on one GPU: Instant-NGP teacher, 10k pseudo views, paper-size student",
        teacher_steps=20_000,
        student_method="mobiler2l",
        student_steps=200_000,
        pseudo_count=10_000,
        real_share=0.1,
        finetune_steps=5_000,
    ),
}
