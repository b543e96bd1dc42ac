"""nerfstudio checkpoints (``nerfstudio_models/step-NNNNNNNNN.ckpt``): listing, integrity, atomic saves.

nerfstudio 1.1.5 writes a checkpoint in place (``torch.save`` to its final name), so a kill during a
save leaves a truncated file that ``--load-dir`` then picks as the latest and fails on, every rerun.
:class:`SafeTrainer` (the ``_target`` of this project's methods) writes each checkpoint to a
temporary folder and renames it into place, and saves one on Ctrl-C; :func:`usable_checkpoints`
tells a truncated or corrupt file from a good one (zip structure and member checksums, without
unpickling) so callers can name it and move it aside.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path
from typing import Dict, List, Literal, Optional, Tuple

from nerfstudio.engine.trainer import Trainer
from nerfstudio.utils import comms
from nerfstudio.utils.rich_utils import CONSOLE
from nerfstudio.utils.writer import GLOBAL_BUFFER

CHECKPOINT_GLOB = "step-*.ckpt"
CORRUPT_FOLDER = "corrupt-checkpoints"
"""Beside ``nerfstudio_models/``: where unreadable checkpoints are moved (nerfstudio lists every file
in its load folder, so they cannot stay there under another name)."""


def checkpoint_steps(folder: Path) -> Dict[int, Path]:
    """``{step: path}`` of the ``step-NNNNNNNNN.ckpt`` files in ``folder`` (empty when it does not exist)."""
    steps = {}
    for path in Path(folder).glob(CHECKPOINT_GLOB):
        number = path.name[len("step-") : -len(".ckpt")]
        if number.isdigit():
            steps[int(number)] = path
    return steps


def checkpoint_problem(path: Path) -> Optional[str]:
    """Why ``path`` cannot be a loadable ``torch.save`` checkpoint (truncated, corrupt, empty), or None."""
    try:
        if path.stat().st_size == 0:
            return "empty file"
        with zipfile.ZipFile(path) as archive:
            bad = archive.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as err:
        return f"truncated or not a checkpoint ({err.__class__.__name__}: {err})"
    return None if bad is None else f"corrupt member {bad}"


def usable_checkpoints(folder: Path) -> Tuple[Optional[int], List[Tuple[Path, str]]]:
    """The newest step whose checkpoint passes :func:`checkpoint_problem`, and the newer ones that fail it
    (path, reason), newest first. Older checkpoints than the usable one are not opened."""
    bad: List[Tuple[Path, str]] = []
    for step, path in sorted(checkpoint_steps(folder).items(), reverse=True):
        problem = checkpoint_problem(path)
        if problem is None:
            return step, bad
        bad.append((path, problem))
    return None, bad


def move_aside(path: Path) -> Path:
    """Move an unreadable checkpoint into ``corrupt-checkpoints/`` beside its folder; returns the new path."""
    target_dir = path.parent.parent / CORRUPT_FOLDER
    target_dir.mkdir(parents=True, exist_ok=True)
    target = target_dir / path.name
    n = 1
    while target.exists():
        target = target_dir / f"{path.stem}.{n}{path.suffix}"
        n += 1
    shutil.move(str(path), str(target))
    return target


def set_aside_unusable(folder: Path, what: str) -> Optional[int]:
    """Move checkpoints newer than the newest usable one aside, one line each; returns that step (None:
    no usable checkpoint, training starts again)."""
    step, bad = usable_checkpoints(folder)
    for path, reason in bad:
        moved = move_aside(path)
        fallback = f"using step {step}" if step is not None else "no earlier checkpoint: training starts again"
        CONSOLE.print(f"[bold yellow]{what}: checkpoint {path} is unusable ({reason}); moved to {moved}, {fallback}")
    return step


class SafeTrainer(Trainer):
    """nerfstudio's ``Trainer`` with atomic checkpoint writes, a checkpoint on Ctrl-C and a resumed run's
    progress counted to its real end."""

    def save_checkpoint(self, step: int) -> None:
        if not comms.is_main_process():
            return
        final_dir = Path(self.checkpoint_dir)
        staging = final_dir.parent / f".saving-{final_dir.name}"
        shutil.rmtree(staging, ignore_errors=True)
        self.checkpoint_dir = staging
        try:
            super().save_checkpoint(step)  # torch.save into the staging folder
        finally:
            self.checkpoint_dir = final_dir
        final_dir.mkdir(parents=True, exist_ok=True)
        name = f"step-{step:09d}.ckpt"
        os.replace(staging / name, final_dir / name)
        shutil.rmtree(staging, ignore_errors=True)
        if self.config.save_only_latest_checkpoint:
            for old in final_dir.glob("*.ckpt"):
                if old.name != name:
                    old.unlink()

    def setup(self, test_mode: Literal["test", "val", "inference"] = "val") -> None:
        super().setup(test_mode=test_mode)
        # nerfstudio's progress line counts steps from 0 to max_num_iterations; a resumed run's steps go
        # from the checkpoint's on (it showed "233 %" and a day's ETA): count to where this run ends
        GLOBAL_BUFFER["max_iter"] = self._start_step + self.config.max_num_iterations

    def train(self) -> None:
        try:
            super().train()
        except KeyboardInterrupt:
            if self.step > self._start_step:
                CONSOLE.print(f"[bold yellow]interrupted: saving step {self.step} to {self.checkpoint_dir}")
                self.save_checkpoint(self.step)
            raise
