"""Teacher training speed on a shared CPU: OpenMP thread policies next to a busy neighbour.

Each cell continues training a trained mobiler2l teacher (its occupancy grid pruned, as for almost
all of a run) on lego-400 in a fresh process (OpenMP reads its environment when torch loads it, so a
policy cannot be switched inside one process) and reports seconds per 2048-ray step after a few
warm-up steps (the hash-grid kernel's compile), optionally next to a neighbour: a second process doing
the same training (another run, the test suite) or a one-core pure-Python busy loop (COLMAP, a
data job). The neighbour gets the same policy as the measured process. Policies:

- ``default``: libgomp's defaults (threads spin-wait ~300k iterations at the end of every
  parallel region);
- ``passive``: ``OMP_WAIT_POLICY=PASSIVE`` (threads sleep at once);
- ``one-thread``: ``OMP_NUM_THREADS=1``.

Figures are ratios against the idle machine with the default policy, measured in the same run.

    python benchmarks/shared_cpu.py --teacher-config RUN/config.yml [--data ../shared/data/blender-lego-400]
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Literal, Tuple

from common import LEGO, machine_description, require_lego
from mobiler2l_ns.utils.cli import run_cli

POLICIES: Dict[str, Dict[str, str]] = {
    "default": {},
    "passive": {"OMP_WAIT_POLICY": "PASSIVE"},
    "one-thread": {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
}
NEIGHBOURS = ("none", "python-loop", "teacher")
BUSY_LOOP = "while True:\n    pass\n"


def teacher_seconds_per_step(data: Path, teacher: Path, warmup: int, steps: int, forever: bool) -> float:
    """Load ``teacher``'s checkpoint into a training pipeline, train ``warmup`` steps, then time ``steps``
    more (or train until killed)."""
    import torch

    from mobiler2l_ns.utils.runs import pick_checkpoint, read_run_config
    from teacher_throughput import build, train_steps

    state = build("mobiler2l-teacher", data, 2048)
    checkpoint, step = pick_checkpoint(teacher, read_run_config(teacher))
    state[0].load_pipeline(torch.load(checkpoint, map_location="cpu", weights_only=False)["pipeline"], step)
    train_steps(state, step, warmup)
    step += warmup
    while forever:
        train_steps(state, step, 10)
        step += 10
    return train_steps(state, step, steps) / steps


def child_env(policy: str) -> Dict[str, str]:
    """This process's environment with ``policy``'s variables (and no inherited OpenMP settings)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OMP_", "GOMP_", "MKL_NUM"))}
    env.update(POLICIES[policy])
    env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).parent), env.get("PYTHONPATH", "")])
    return env


@dataclass
class SharedCpu:
    """Teacher seconds per step under OpenMP thread policies, alone and next to a busy neighbour."""

    teacher_config: Path
    """A trained ``mobiler2l-teacher`` run on ``data`` (its config.yml), default CPU settings."""
    data: Path = LEGO
    """Blender scene (default ../shared/data/blender-lego-400)."""
    warmup: int = 5
    """Steps before timing."""
    steps: int = 20
    """Timed steps per cell."""
    role: Literal["report", "measure", "neighbour"] = "report"
    """Internal: the report spawns 'measure' and 'neighbour' processes of this script."""

    def main(self) -> None:
        """Print the table of seconds per step and ratios."""
        data = require_lego(self.data)
        if self.role != "report":
            seconds = teacher_seconds_per_step(
                data, self.teacher_config, self.warmup, self.steps, self.role == "neighbour"
            )
            print(json.dumps({"seconds_per_step": seconds}), flush=True)
            return
        print(machine_description())
        results: Dict[Tuple[str, str], float] = {}
        for neighbour in NEIGHBOURS:
            for policy in POLICIES:
                results[policy, neighbour] = self.cell(data, policy, neighbour)
                print(f"  {policy:>10} next to {neighbour:<11}: {results[policy, neighbour]:.3f} s/step", flush=True)
        base = results["default", "none"]
        print(f"\nteacher s/step (2048 rays), ratio to the idle machine with default OpenMP ({base:.3f} s):")
        print(f"| neighbour | {' | '.join(POLICIES)} |")
        print(f"| --- | {' | '.join('---' for _ in POLICIES)} |")
        for neighbour in NEIGHBOURS:
            row = [f"{results[p, neighbour]:.3f} s ({results[p, neighbour] / base:.2f}x)" for p in POLICIES]
            print(f"| {neighbour} | {' | '.join(row)} |")

    def cell(self, data: Path, policy: str, neighbour: str) -> float:
        """Seconds per step of one measured process under ``policy`` next to ``neighbour``."""
        env = child_env(policy)
        script = [sys.executable, __file__, "--teacher-config", str(self.teacher_config), "--data", str(data)]
        script += ["--warmup", str(self.warmup)]
        busy = None
        if neighbour == "python-loop":
            busy = subprocess.Popen([sys.executable, "-c", BUSY_LOOP], env=env)
        elif neighbour == "teacher":
            busy = subprocess.Popen([*script, "--role", "neighbour"], env=env, stdout=subprocess.DEVNULL)
            time.sleep(40)  # let it load its data, compile and train
        try:
            out = subprocess.run(
                [*script, "--steps", str(self.steps), "--role", "measure"],
                env=env,
                capture_output=True,
                text=True,
                check=True,
            ).stdout
        finally:
            if busy is not None:
                busy.kill()
                busy.wait()
        return float(json.loads(out.strip().splitlines()[-1])["seconds_per_step"])


if __name__ == "__main__":
    raise SystemExit(run_cli(SharedCpu, prog="shared_cpu.py", description=__doc__))
