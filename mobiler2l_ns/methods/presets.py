"""The chain's named presets (``mobiler2l run DATA --preset NAME``, ``mobiler2l presets``).

Steps and sizes per stage for each machine class; :class:`~mobiler2l_ns.chain.presets.ChainPreset`
says what each field means. ``auto`` picks ``gpu`` with CUDA, else ``cpu`` (``mobiler2l_ns.cli``).
"""

from __future__ import annotations

from typing import Dict

from mobiler2l_ns.chain.presets import ChainPreset

X2_SMALL_CROPS = ("--pipeline.model.sr-factor", "2", "--pipeline.datamanager.crop-size", "32", "32")
"""The CPU presets' student: ``mobiler2l-small`` at x2 super-resolution (not x4) on four 32x32 crops per step
(not 64x64): more rays per image, cheaper steps (see the presets' notes for the measurements)."""

CPU_PHOTO_SIZE = 800
"""Longer side (px) of the photos the CPU presets process and train on (the GPU preset: nerfstudio's 1,600).
The CPU teacher renders ~7,800 rays/s: a held-out 600x600 view of the Ethiopian head took 46 s
(benchmarks/results/eth-head-cpu.md), so a 16:9 phone photo at 1,600x900 would take ~3 min per view and its
evaluation alone ~15 min; at 800x450 it has the pixels of that 600x600 view. COLMAP also grows with the
features of larger photos: the same 66 photos enlarged to 4,000 px and shrunk to 800 px gave 2,856 features
per photo against 1,292 at 600 px and took 730.6 s instead of 220.4 s (benchmarks/large_capture.py)."""

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
        max_photo_size=CPU_PHOTO_SIZE,
    ),
    "cpu": ChainPreset(
        description="under an hour on a 2-core CPU for a 400x400 scene (CPU teacher, small student)",
        teacher_steps=2000,
        student_method="mobiler2l-small",
        # 14,000 steps: 42.2 min in all and -2.02 dB from the teacher; the x2 student gains ~0.8 dB per
        # doubling of its steps on lego (benchmarks/results/student-pseudo-vs-real.json), so 18,000:
        # 59.2 min from scratch alone on the machine and -1.88 dB (README, lego-400 results)
        student_steps=18_000,
        pseudo_count=500,
        real_share=0.5,
        finetune_steps=500,
        eval_views=20,
        # x2 super-resolution on 32x32 crops: lego-400, 4 min each (benchmarks/student_convergence.py), 24.00 dB
        # at 10.7 steps/s vs x4 on 64x64 crops 23.80 dB at 7.0 steps/s, and still climbing faster
        student_args=X2_SMALL_CROPS,
        max_photo_size=CPU_PHOTO_SIZE,
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
