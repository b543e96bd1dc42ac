"""``mobiler2l``: the whole chain in one command.

    mobiler2l run DATA [--preset auto|cpu-toy|cpu|gpu] [--out runs] [--name NAME] [--until STAGE] [--plan]
    mobiler2l presets

DATA is a Blender scene, an ``ns-process-data`` folder, a folder of photos or a video. Each stage
is skipped when its outputs exist and are newer than its inputs, so rerunning the same command
after a crash or Ctrl-C resumes, and a training run made with other settings (another preset) is
redone; ``--plan`` prints what each stage would do and why (see :mod:`mobiler2l_ns.chain`).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Optional, Sequence

import torch
import tyro
from nerfstudio.utils.rich_utils import CONSOLE

from mobiler2l_ns.chain import Chain, StageError
from mobiler2l_ns.methods.presets import PRESETS
from mobiler2l_ns.utils.errors import InputError

PresetName = Literal["auto", "cpu-toy", "cpu", "gpu"]


@dataclass
class Run:
    """Run (or resume) teacher -> pseudo views + student -> ONNX export -> previews on DATA."""

    data: tyro.conf.Positional[Path]
    """A Blender scene, an ns-process-data folder, a folder of photos or a video."""
    preset: PresetName = "auto"
    """Steps and sizes per stage (`mobiler2l presets`); auto: gpu with CUDA, else cpu."""
    out: Path = Path("runs")
    """Parent folder of the scene's folder."""
    name: Optional[str] = None
    """The scene's folder name (default: DATA's name)."""
    teacher_steps: Optional[int] = None
    """Override the preset's teacher steps."""
    student_steps: Optional[int] = None
    """Override the preset's student steps."""
    until: Optional[str] = None
    """Stop after this stage (process, teacher, teacher-eval, student, student-eval, export, preview)."""
    regenerate_corrupt: bool = False
    """Re-render pseudo-view cache shards found truncated or corrupt (a killed disk write) instead of stopping."""
    plan: bool = False
    """Only print what each stage would do (skip, resume, train, retrain, run) and why; run nothing."""

    def main(self) -> None:
        name = self.preset if self.preset != "auto" else ("gpu" if torch.cuda.is_available() else "cpu")
        for flag, value in (("--teacher-steps", self.teacher_steps), ("--student-steps", self.student_steps)):
            if value is not None and value < 1:
                raise InputError(f"{flag} {value}: expected a positive number of steps")
        preset = PRESETS[name].with_steps(self.teacher_steps, self.student_steps)
        if preset.student_steps <= preset.finetune_steps and preset.real_share < 1.0:
            raise InputError(
                f"--student-steps {preset.student_steps}: not more than preset {name}'s {preset.finetune_steps} "
                "real-only fine-tune steps, so the student would never see a teacher view (no distillation); "
                f"use more than {preset.finetune_steps}"
            )
        chain = Chain(self.data, self.out, self.name or self.data.stem, preset, self.regenerate_corrupt)
        if self.plan:
            for stage, decision in chain.plan(self.until).items():
                CONSOLE.print(f"{stage}: {decision.action} ({decision.reason})")
            return
        CONSOLE.print(f"[bold]mobiler2l run[/bold] {chain.data} ({chain.kind}) -> {chain.root}, preset {name}")
        chain.run(self.until)
        if self.until in (None, "preview"):
            CONSOLE.print(f"[bold green]done[/bold green]: {chain.record_path}, {chain.export_dir}, {chain.renders}")
        else:  # name only what the stages up to --until made
            CONSOLE.print(f"[bold green]done up to {self.until}[/bold green]: {chain.record_path}")


@dataclass
class Presets:
    """List the chain presets."""

    def main(self) -> None:
        for name, preset in PRESETS.items():
            CONSOLE.print(
                f"[bold]{name}[/bold]: {preset.description}\n  teacher {preset.teacher_steps} steps, "
                f"{preset.student_method} {preset.student_steps} steps on {preset.pseudo_count} pseudo views "
                f"(real share {preset.real_share}, {preset.finetune_steps} real-only fine-tune steps); "
                f"photos shrunk to {preset.max_photo_size} px"
            )


def entrypoint(args: Optional[Sequence[str]] = None) -> None:
    """Console script ``mobiler2l`` (``args``: the command line after the program name; default ``sys.argv``)."""
    command = tyro.extras.subcommand_cli_from_dict({"run": Run, "presets": Presets}, prog="mobiler2l", args=args)
    try:
        command.main()
    except StageError as err:
        CONSOLE.print(f"[bold red]mobiler2l:[/bold red] {err}")
        sys.exit(1)
    except KeyboardInterrupt:
        CONSOLE.print("[bold yellow]mobiler2l: interrupted[/bold yellow]; rerun the same command to resume")
        sys.exit(130)


if __name__ == "__main__":
    entrypoint()
