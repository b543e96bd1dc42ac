"""What a stage of the chain is: :class:`Stage` (its files, its decision, running it) and what it reports.

A stage reads the outputs of the stages in its ``depends`` and is skipped when its own outputs exist
and are newer than its inputs (:func:`up_to_date`); its commands are the project's console scripts,
run as subprocesses whose one-line bad-input messages become the stage's :class:`StageError`.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import ClassVar, Dict, List, Literal, Optional, Sequence, Tuple

from nerfstudio.utils.rich_utils import CONSOLE

from mobiler2l_ns.chain.layout import ChainLayout
from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.utils.processes import stop_group

Action = Literal["skip", "resume", "train", "retrain", "run"]
ONE_LINE_PREFIX = "mobiler2l: "
"""How this project's tools start a one-line bad-input message (:class:`~mobiler2l_ns.utils.errors.InputError`)."""


class StageError(RuntimeError):
    """A stage's command failed; the message says which and how to go on."""


@dataclass(frozen=True)
class Decision:
    """What a stage will do: ``skip``, ``resume``, ``train``, ``retrain`` or ``run``, and why."""

    action: Action
    reason: str


@dataclass
class StageRecord:
    """What one stage did; a skipped stage keeps the ``seconds`` its outputs took to make."""

    status: Literal["done", "skipped"]
    seconds: float
    outputs: List[str] = field(default_factory=list)
    detail: Dict[str, object] = field(default_factory=dict)


def newest_mtime(paths: Sequence[Path]) -> float:
    """Latest modification time among ``paths`` (files, or folders' files); 0 when none exist."""
    times = [0.0]
    for path in paths:
        if path.is_dir():
            times += [p.stat().st_mtime for p in path.rglob("*") if p.is_file()]
        elif path.exists():
            times.append(path.stat().st_mtime)
    return max(times)


def up_to_date(outputs: Sequence[Path], inputs: Sequence[Path]) -> bool:
    """All ``outputs`` exist and none is older than the newest of ``inputs``."""
    if not all(p.exists() for p in outputs):
        return False
    oldest = min(p.stat().st_mtime for p in outputs)
    return oldest >= newest_mtime(inputs)


def read_json(path: Path) -> Dict[str, object]:
    """A JSON object from ``path``; empty when the file is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def tool(name: str) -> str:
    """The console script ``name`` of this environment (beside the running Python first)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise InputError(f"{name}: command not found (install mobiler2l-ns into this environment)")
    return found


CHILD_THREAD_ENV = {"OMP_WAIT_POLICY": "PASSIVE"}
"""OpenMP settings of the chain's tools unless the user set a wait policy: idle threads sleep instead of
spinning, so a training run sharing the cores with another process does not stall
(``benchmarks/shared_cpu.py``; README "Benchmarks")."""
SAVE_GRACE_S = 300.0
"""How long an interrupted chain waits for its training child to save a checkpoint and exit."""


def child_env() -> Dict[str, str]:
    """This process's environment for a chain tool, with :data:`CHILD_THREAD_ENV` unless the user set
    ``OMP_WAIT_POLICY`` or ``GOMP_SPINCOUNT``."""
    env = dict(os.environ)
    if "OMP_WAIT_POLICY" not in env and "GOMP_SPINCOUNT" not in env:
        env.update(CHILD_THREAD_ENV)
    return env


def run_showing_stderr(args: Sequence[str], env: Optional[Dict[str, str]] = None) -> Tuple[int, Optional[str]]:
    """Run ``args`` with stdout as is and stderr passed through line by line; returns the exit code and
    the last one-line bad-input message (``mobiler2l: ...``) the tool printed, if any.

    The child leads its own process group, so a Ctrl-C reaches it once: this process forwards its
    KeyboardInterrupt as SIGINT and waits for the child to save and exit (:func:`interrupt_and_wait`)
    before it raises, so the chain never returns while a checkpoint is half-written.
    """
    cause: Optional[str] = None
    proc = subprocess.Popen(
        list(args), stderr=subprocess.PIPE, text=True, errors="replace", bufsize=1, start_new_session=True, env=env
    )
    assert proc.stderr is not None
    try:
        for line in proc.stderr:
            sys.stderr.write(line)
            if line.startswith(ONE_LINE_PREFIX):
                cause = line.strip()[len(ONE_LINE_PREFIX) :]
        return proc.wait(), cause
    except BaseException:
        interrupt_and_wait(proc)
        raise
    finally:
        proc.stderr.close()


def interrupt_and_wait(proc: subprocess.Popen, grace_s: float = SAVE_GRACE_S) -> None:
    """SIGINT to ``proc``'s process group, then wait for it (its stderr still passed through) for up to
    ``grace_s`` seconds; killed at once on a second Ctrl-C or when the time is up."""
    if proc.poll() is not None:
        return
    timer = threading.Timer(grace_s, kill_group, (proc,))
    timer.daemon = True
    try:
        os.killpg(proc.pid, signal.SIGINT)
        timer.start()
        CONSOLE.print(
            f"[yellow]waiting up to {grace_s:.0f} s for {Path(proc.args[0]).name} to save and stop "
            "(Ctrl-C again to kill it)"
        )
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
        proc.wait()
    except BaseException:
        kill_group(proc)
        raise
    finally:
        timer.cancel()


def kill_group(proc: subprocess.Popen) -> None:
    """SIGKILL ``proc``'s process group at once and reap it."""
    stop_group(proc, term_wait_s=None)


class Stage(ABC):
    """One step of the chain. Subclasses name it, list the files it reads and makes, and run it."""

    name: ClassVar[str]
    depends: ClassVar[Tuple[str, ...]] = ()
    """The stages whose outputs this stage reads (in the order ``--plan`` names them)."""
    redo: ClassVar[Action] = "run"
    """What this stage does when a stage it depends on runs again (its inputs become newer)."""

    def needed(self, chain: ChainLayout) -> bool:
        """Whether this stage is part of ``chain`` at all (only raw captures are processed)."""
        return True

    @abstractmethod
    def inputs(self, chain: ChainLayout) -> List[Path]:
        """Files or folders this stage reads (a newer one makes its outputs stale)."""

    @abstractmethod
    def outputs(self, chain: ChainLayout) -> List[Path]:
        """Files this stage makes."""

    def decide(self, chain: ChainLayout) -> Decision:
        """Skip when every output exists and is newer than the inputs, else run (saying what is missing)."""
        outputs = self.outputs(chain)
        if up_to_date(outputs, self.inputs(chain)):
            return Decision("skip", "outputs newer than their inputs")
        missing = [p.name for p in outputs if not p.exists()]
        return Decision("run", f"missing {', '.join(missing)}" if missing else "inputs changed since")

    @abstractmethod
    def run(self, chain: ChainLayout) -> StageRecord:
        """Do the stage, or skip it when :meth:`decide` says so (``seconds`` is filled in by the caller)."""

    def command(self, args: List[str]) -> None:
        """Run ``args`` (output shown as it comes); StageError naming the stage when it fails: the tool's
        own one-line message when it gave one (bad input: rerunning cannot help), else a resume hint."""
        CONSOLE.print(f"[dim]$ {' '.join(args)}")
        returncode, cause = run_showing_stderr(args, env=child_env())
        if returncode != 0:
            tool_name = f"`{Path(args[0]).name} {' '.join(args[1:3])} ...`"
            if cause is not None:
                raise StageError(f"stage {self.name}: {cause} ({tool_name} exited with code {returncode})")
            raise StageError(
                f"stage {self.name}: {tool_name} exited with code "
                f"{returncode} (see its output above); rerun the same command to resume"
            )
