"""What a training run was made with (``chain-settings.json`` beside its config.yml), and what changed.

A rerun whose settings differ (another preset, other flags) trains again instead of resuming a run
it cannot load. The step count is not a setting: more steps resume a run.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

SETTINGS_FILE = "chain-settings.json"
"""Beside a training run's config.yml: the method, data and flags it was trained with."""
STEP_FLAGS = ("--optimizers.student.scheduler.max-steps", "--optimizers.grids.scheduler.max-steps")
"""Flags that follow the step count: a change of them resumes a run instead of retraining it."""
REGENERATE_FLAG = "--pipeline.datamanager.pseudo-regenerate-corrupt"
"""The student's flag behind ``mobiler2l run --regenerate-corrupt`` (not a setting: it never retrains)."""


def flag_values(args: Sequence[str], ignore: Sequence[str] = ()) -> Dict[str, str]:
    """``["--a", "1", "--b", "x", "y"]`` -> ``{"--a": "1", "--b": "x y"}`` (values of a flag joined by spaces)."""
    values: Dict[str, List[str]] = {}
    flag = ""
    for arg in args:
        if arg.startswith("--"):
            flag = arg
            values[flag] = []
        else:
            values.setdefault(flag, []).append(arg)
    return {k: " ".join(v) for k, v in values.items() if k not in ignore}


def changed_settings(old: Optional[Dict[str, object]], new: Dict[str, object]) -> str:
    """What differs between two runs' settings, one phrase (``""`` when nothing or nothing is known)."""
    if old is None:
        return ""
    changes = [f"{key} {old.get(key)} -> {new[key]}" for key in ("method", "data") if old.get(key) != new[key]]
    old_flags = old.get("flags") if isinstance(old.get("flags"), dict) else {}
    new_flags = new["flags"]
    assert isinstance(old_flags, dict) and isinstance(new_flags, dict)
    for flag in sorted(set(old_flags) | set(new_flags)):
        if old_flags.get(flag) != new_flags.get(flag):
            changes.append(f"{flag} {old_flags.get(flag, '(unset)')} -> {new_flags.get(flag, '(unset)')}")
    return "; ".join(changes)
