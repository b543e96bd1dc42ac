"""The ``ns-train`` stages, teacher and student: skip a finished run, resume a shorter one, retrain one
made from other inputs or settings.

A run resumes from its latest usable checkpoint (``ns-train --load-dir``); a checkpoint a kill left
truncated is moved aside first (:func:`~mobiler2l_ns.utils.checkpoints.set_aside_unusable`). Each run
records its method, data and flags beside its config.yml (:mod:`mobiler2l_ns.chain.settings`); paths
inside the scene's folder are recorded relative to it, so a moved runs folder resumes instead of retraining.
"""

from __future__ import annotations

import shutil
from abc import abstractmethod
from pathlib import Path
from typing import Dict, List, Optional

from nerfstudio.utils.rich_utils import CONSOLE

from mobiler2l_ns.chain.layout import TIMESTAMP, ChainLayout
from mobiler2l_ns.chain.settings import REGENERATE_FLAG, SETTINGS_FILE, STEP_FLAGS, changed_settings, flag_values
from mobiler2l_ns.chain.stage_base import Decision, Stage, StageRecord, read_json, tool, up_to_date
from mobiler2l_ns.utils.checkpoints import checkpoint_steps, set_aside_unusable, usable_checkpoints
from mobiler2l_ns.utils.io import write_json_atomic

NEVER = 1_000_000_000  # a step count no run reaches: disables nerfstudio's periodic evaluations


class TrainingStage(Stage):
    """An ``ns-train`` run of ``method(chain)`` for ``steps(chain)`` steps in total."""

    redo = "retrain"

    @abstractmethod
    def method(self, chain: ChainLayout) -> str:
        """The nerfstudio method trained."""

    @abstractmethod
    def steps(self, chain: ChainLayout) -> int:
        """Steps of the whole run."""

    @abstractmethod
    def flags(self, chain: ChainLayout) -> List[str]:
        """Extra ``ns-train`` flags (before the dataparser)."""

    def outputs(self, chain: ChainLayout) -> List[Path]:
        return [chain.run_config(self.method(chain))]

    def checkpoints(self, chain: ChainLayout) -> Path:
        """The run's ``nerfstudio_models`` folder."""
        return chain.run_config(self.method(chain)).parent / "nerfstudio_models"

    def settings(self, chain: ChainLayout) -> Dict[str, object]:
        """What the run is, apart from its length: recorded beside its config.yml."""
        flags = flag_values(self.flags(chain), ignore=STEP_FLAGS + (REGENERATE_FLAG,))
        return {
            "method": self.method(chain),
            "data": chain.relative(str(chain.dataset)),
            "flags": {flag: chain.relative(value) for flag, value in flags.items()},
        }

    def recorded_settings(self, chain: ChainLayout, run_dir: Path) -> Optional[Dict[str, object]]:
        """The settings recorded beside a run (None: a run made before they were recorded), with paths
        inside the scene's folder made relative (runs recorded with absolute paths compare equal)."""
        old = read_json(run_dir / SETTINGS_FILE)
        if not old:
            return None
        flags = old.get("flags") if isinstance(old.get("flags"), dict) else {}
        relative_flags = {k: chain.relative(v) if isinstance(v, str) else v for k, v in flags.items()}
        return {**old, "data": chain.relative(str(old.get("data"))), "flags": relative_flags}

    def decide(self, chain: ChainLayout) -> Decision:
        """Skip, resume, train or retrain; names a checkpoint that running the stage will move aside."""
        latest, unusable = usable_checkpoints(self.checkpoints(chain))
        decision = self.decide_from(chain, latest)
        if not unusable:
            return decision
        # a save killed half-way (nerfstudio's own saves; SafeTrainer's are atomic)
        path, reason = unusable[0]
        note = f"{path.name} is unusable ({reason.split(' (')[0]}) and is moved aside when this stage runs; "
        if latest is None:
            return Decision("train", f"{note}no earlier checkpoint, so training starts again")
        return Decision(decision.action, note + decision.reason)

    def decide_from(self, chain: ChainLayout, latest: Optional[int]) -> Decision:
        """The decision given the step of the newest usable checkpoint (None: none)."""
        checkpoints = self.checkpoints(chain)
        if latest is None:
            return Decision("train", "no checkpoint yet")
        if not up_to_date([checkpoints], self.inputs(chain)):
            return Decision("retrain", f"inputs changed since {checkpoints} was written")
        run_dir = checkpoints.parent
        changed = changed_settings(self.recorded_settings(chain, run_dir), self.settings(chain))
        if changed:
            return Decision("retrain", f"settings changed: {changed}")
        steps = self.steps(chain)
        if latest >= steps - 1:
            return Decision("skip", f"finished ({latest + 1} steps)")
        return Decision("resume", f"from step {latest} ({steps - 1 - latest} steps to go)")

    def run(self, chain: ChainLayout) -> StageRecord:
        """``ns-train`` for the stage's steps in total, resuming from the latest usable checkpoint."""
        method, steps = self.method(chain), self.steps(chain)
        config = chain.run_config(method)
        checkpoints = config.parent / "nerfstudio_models"
        detail: Dict[str, object] = {"method": method, "steps": steps}
        usable = set_aside_unusable(checkpoints, self.name)
        decision = self.decide(chain)
        if decision.action == "skip":
            return StageRecord("skipped", 0.0, [str(config)], detail)
        if decision.action == "retrain":
            CONSOLE.print(f"{self.name}: {decision.reason}: training again")
            shutil.rmtree(checkpoints)
        latest = usable if decision.action == "resume" else None
        remaining = steps if latest is None else steps - 1 - latest
        args = [tool("ns-train"), method, "--output-dir", str(chain.root / "outputs"), "--experiment-name", chain.name]
        args += ["--timestamp", TIMESTAMP, "--vis", "tensorboard", "--max-num-iterations", str(remaining)]
        args += ["--steps-per-save", str(max(100, steps // 10))]
        args += ["--steps-per-eval-image", str(NEVER), "--steps-per-eval-all-images", str(NEVER)]
        if latest is not None:
            CONSOLE.print(f"{self.name}: resuming from step {latest} ({remaining} steps to go)")
            args += ["--load-dir", str(checkpoints)]
            detail["resumed_from"] = latest
        args += [*self.flags(chain), chain.dataparser, "--data", str(chain.dataset)]
        write_json_atomic(config.parent / SETTINGS_FILE, self.settings(chain))
        try:
            self.command(args)
        finally:
            if not checkpoint_steps(checkpoints):  # failed (or stopped) before its first checkpoint:
                remove_run_folder(config.parent, chain.root)  # no stub run folder with a config.yml
        return StageRecord("done", 0.0, [str(config)], detail)


def remove_run_folder(run_dir: Path, root: Path) -> None:
    """Remove ``run_dir`` and the folders above it that it leaves empty, up to (not including) ``root``."""
    shutil.rmtree(run_dir, ignore_errors=True)
    for parent in run_dir.parents:
        if parent == root or not parent.is_dir() or any(parent.iterdir()):
            break
        parent.rmdir()


class TeacherStage(TrainingStage):
    """The Instant-NGP teacher on the dataset."""

    name = "teacher"
    depends = ("process",)

    def method(self, chain: ChainLayout) -> str:
        return chain.teacher_method

    def steps(self, chain: ChainLayout) -> int:
        return chain.preset.teacher_steps

    def flags(self, chain: ChainLayout) -> List[str]:
        return list(chain.preset.teacher_args)

    def inputs(self, chain: ChainLayout) -> List[Path]:
        return [chain.dataset]


class StudentStage(TrainingStage):
    """The light-field student on the teacher's pseudo views and the real images.

    Its learning-rate schedules (``--optimizers.{student,grids}.scheduler.max-steps``) follow its steps;
    they are left out of the recorded settings (``STEP_FLAGS``) so that more steps resume instead of retraining.
    """

    name = "student"
    depends = ("teacher",)

    def method(self, chain: ChainLayout) -> str:
        return chain.student_method

    def steps(self, chain: ChainLayout) -> int:
        return chain.preset.student_steps

    def flags(self, chain: ChainLayout) -> List[str]:
        p = chain.preset
        flags: Dict[str, object] = {
            "--pipeline.datamanager.teacher-config": chain.teacher_config,
            "--pipeline.datamanager.pseudo-count": p.pseudo_count,
            "--pipeline.datamanager.real-share": p.real_share,
            "--pipeline.datamanager.finetune-steps": p.finetune_steps,
            "--optimizers.student.scheduler.max-steps": p.student_steps,
            "--optimizers.grids.scheduler.max-steps": p.student_steps,
        }
        if chain.regenerate_corrupt:
            flags[REGENERATE_FLAG] = True
        return [str(v) for pair in flags.items() for v in pair] + list(p.student_args)

    def inputs(self, chain: ChainLayout) -> List[Path]:
        return [chain.teacher_config.parent / "nerfstudio_models"]
