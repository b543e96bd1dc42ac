"""The whole chain as resumable stages: capture -> teacher -> student (pseudo views) -> ONNX -> previews.

Every stage runs the project's real command line tools (``ns-process-data``, ``ns-train``,
``ns-export mobiler2l-onnx``, ``mobiler2l-render``; evaluation loads each run like ``ns-eval``) into one folder
per scene::

    OUT/NAME/data/                       processed capture (only for raw photos / a video)
    OUT/NAME/outputs/NAME/METHOD/chain/  nerfstudio runs (config.yml, nerfstudio_models/)
    OUT/NAME/eval/{teacher,student}.json test-view metrics (chain/evaluate.py)
    OUT/NAME/export/                     three ONNX graphs + metadata.json
    OUT/NAME/renders/                    test renders, onnx-view.png, onnx-orbit.gif, strip.png
    OUT/NAME/chain.json                  what each stage did and how long it took

A stage is skipped when its outputs exist and are newer than its inputs; a training stage whose
run was interrupted resumes from its latest checkpoint (``ns-train --load-dir``), and the pseudo
view cache keeps every finished shard, so rerunning the same command after a crash or Ctrl-C
goes on where it stopped. Each training run records its method, data and flags beside its
config.yml (``chain-settings.json``); a rerun with other settings (another preset, other flags)
trains it again instead of resuming a run it cannot load. :meth:`Chain.plan` says what a run would
do, and why, without doing it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Sequence, Tuple

from nerfstudio.utils.rich_utils import CONSOLE

from mobiler2l_ns.chain.presets import ChainPreset
from mobiler2l_ns.utils.checkpoints import checkpoint_steps, set_aside_unusable, usable_checkpoints
from mobiler2l_ns.utils.data_checks import list_photos
from mobiler2l_ns.utils.errors import InputError

DataKind = Literal["blender", "nerfstudio", "images", "video"]
VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v", ".avi", ".mkv", ".webm")
TIMESTAMP = "chain"
NEVER = 1_000_000_000  # a step count no run reaches: disables nerfstudio's periodic evaluations


class StageError(RuntimeError):
    """A stage's command failed; the message says which and how to go on."""


def data_kind(data: Path) -> DataKind:
    """What ``data`` is; InputError (one line) when it is none of the four accepted kinds."""
    if not data.exists():
        raise InputError(f"DATA {data}: no such file or folder")
    if data.is_file():
        if data.suffix.lower() in VIDEO_SUFFIXES:
            return "video"
        raise InputError(f"DATA {data}: a file, but not a video ({', '.join(VIDEO_SUFFIXES)})")
    if (data / "transforms_train.json").is_file():
        return "blender"
    if (data / "transforms.json").is_file():
        return "nerfstudio"
    if list_photos(data):
        return "images"
    raise InputError(
        f"DATA {data}: expected a Blender scene (transforms_train.json), an ns-process-data folder "
        "(transforms.json), a folder of photos or a video"
    )


def tool(name: str) -> str:
    """The console script ``name`` of this environment (beside the running Python first)."""
    beside = Path(sys.executable).parent / name
    if beside.is_file():
        return str(beside)
    found = shutil.which(name)
    if found is None:
        raise InputError(f"{name}: command not found (install mobiler2l-ns into this environment)")
    return found


def latest_step(checkpoints: Path) -> Optional[int]:
    """Step of the newest usable ``step-NNNNNNNNN.ckpt`` in ``checkpoints`` (not truncated), or None."""
    return usable_checkpoints(checkpoints)[0]


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


def summary(result: Dict[str, object]) -> Dict[str, float]:
    """The headline numbers of an evaluation result (metrics available, views, seconds per view)."""
    keys = ("psnr", "ssim", "lpips", "views", "seconds_per_view")
    return {k: result[k] for k in keys if isinstance(result.get(k), (int, float))}  # type: ignore[misc]


def write_json_atomic(path: Path, value: object) -> None:
    """Write ``value`` as JSON to a temporary name beside ``path``, then rename it into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(value, indent=2) + "\n", encoding="utf-8")
    os.replace(tmp, path)


SETTINGS_FILE = "chain-settings.json"
"""Beside a training run's config.yml: the method, data and flags it was trained with."""
STEP_FLAGS = ("--optimizers.student.scheduler.max-steps", "--optimizers.grids.scheduler.max-steps")
"""Flags that follow the step count: a change of them resumes a run instead of retraining it."""
REGENERATE_FLAG = "--pipeline.datamanager.pseudo-regenerate-corrupt"
"""The student's flag behind ``mobiler2l run --regenerate-corrupt`` (not a setting: it never retrains)."""
DEPENDS: Dict[str, Tuple[str, ...]] = {
    "process": (),
    "teacher": ("process",),
    "teacher-eval": ("teacher",),
    "student": ("teacher",),
    "student-eval": ("student",),
    "export": ("student",),
    "preview": ("export", "teacher-eval", "student-eval"),
}
"""The stages whose outputs each stage reads."""


ONE_LINE_PREFIX = "mobiler2l: "
"""How this project's tools start a one-line bad-input message (:class:`~mobiler2l_ns.utils.errors.InputError`)."""


def run_showing_stderr(args: Sequence[str]) -> Tuple[int, Optional[str]]:
    """Run ``args`` with stdout as is and stderr passed through line by line; returns the exit code and
    the last one-line bad-input message (``mobiler2l: ...``) the tool printed, if any."""
    cause: Optional[str] = None
    with subprocess.Popen(list(args), stderr=subprocess.PIPE, text=True, errors="replace", bufsize=1) as proc:
        assert proc.stderr is not None
        for line in proc.stderr:
            sys.stderr.write(line)
            if line.startswith(ONE_LINE_PREFIX):
                cause = line.strip()[len(ONE_LINE_PREFIX) :]
        returncode = proc.wait()
    return returncode, cause


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


def read_json(path: Path) -> Dict[str, object]:
    """A JSON object from ``path``; empty when the file is missing, unreadable or not an object."""
    try:
        value = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def read_settings(run_dir: Path) -> Optional[Dict[str, object]]:
    """The settings recorded beside a run's config.yml, or None (runs made before they were recorded)."""
    return read_json(run_dir / SETTINGS_FILE) or None


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


@dataclass(frozen=True)
class Decision:
    """What a stage will do: ``skip``, ``resume``, ``train``, ``retrain`` or ``run``, and why."""

    action: Literal["skip", "resume", "train", "retrain", "run"]
    reason: str


@dataclass
class StageRecord:
    """What one stage did; a skipped stage keeps the ``seconds`` its outputs took to make."""

    status: Literal["done", "skipped"]
    seconds: float
    outputs: List[str] = field(default_factory=list)
    detail: Dict[str, object] = field(default_factory=dict)


@dataclass
class Chain:
    """The stages of one scene (see the module docstring for the layout).

    Args:
        data: a Blender scene, an ``ns-process-data`` folder, a folder of photos or a video.
        out: parent folder of the scene's folder.
        name: the scene's folder name (and nerfstudio experiment name).
        preset: what each stage runs.
    """

    data: Path
    out: Path
    name: str
    preset: ChainPreset
    regenerate_corrupt: bool = False
    """Let the student re-render corrupt pseudo-cache shards (``--regenerate-corrupt``) instead of stopping."""
    records: Dict[str, StageRecord] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.data = self.data.expanduser().resolve()
        self.root = (self.out / self.name).resolve()
        self.kind: DataKind = data_kind(self.data)
        stages = read_json(self.record_path).get("stages")
        self.previous: Dict[str, dict] = stages if isinstance(stages, dict) else {}

    # ------------------------------------------------------------------ paths
    @property
    def dataset(self) -> Path:
        """The folder nerfstudio trains on (the processed capture for raw photos / a video)."""
        return self.root / "data" if self.kind in ("images", "video") else self.data

    @property
    def dataparser(self) -> str:
        return "blender-data" if self.kind == "blender" else "nerfstudio-data"

    @property
    def teacher_method(self) -> str:
        return "mobiler2l-teacher" if self.kind == "blender" else "mobiler2l-teacher-real"

    @property
    def student_method(self) -> str:
        return self.preset.student_method if self.kind == "blender" else f"{self.preset.student_method}-real"

    def run_config(self, method: str) -> Path:
        return self.root / "outputs" / self.name / method / TIMESTAMP / "config.yml"

    @property
    def teacher_config(self) -> Path:
        return self.run_config(self.teacher_method)

    @property
    def student_config(self) -> Path:
        return self.run_config(self.student_method)

    @property
    def export_dir(self) -> Path:
        return self.root / "export"

    @property
    def renders(self) -> Path:
        return self.root / "renders"

    @property
    def record_path(self) -> Path:
        return self.root / "chain.json"

    # ------------------------------------------------------------------ running
    def stages(self) -> List[str]:
        names = ["process"] if self.kind in ("images", "video") else []
        return names + ["teacher", "teacher-eval", "student", "student-eval", "export", "preview"]

    def run(self, until: Optional[str] = None) -> Dict[str, StageRecord]:
        """Run (or skip) every stage in order, up to and including ``until``; returns their records."""
        stages = self.stages_until(until)
        self.root.mkdir(parents=True, exist_ok=True)
        for index, name in enumerate(stages):
            CONSOLE.rule(f"[bold]{index + 1}/{len(stages)} {name}")
            started = time.perf_counter()
            record = getattr(self, f"stage_{name.replace('-', '_')}")()
            record.seconds = round(time.perf_counter() - started, 1)
            if record.status == "skipped" and name in self.previous:  # keep what making the outputs took
                record.seconds = float(self.previous[name].get("seconds", record.seconds))
            self.records[name] = record
            CONSOLE.print(f"{name}: {record.status} in {record.seconds:.1f} s")
            self.save_record()
        return self.records

    def stages_until(self, until: Optional[str]) -> List[str]:
        """The stages up to and including ``until`` (all when None); InputError naming ``--until`` if unknown."""
        stages = self.stages()
        if until is None:
            return stages
        if until not in stages:
            raise InputError(f"--until {until}: expected one of {', '.join(stages)}")
        return stages[: stages.index(until) + 1]

    def plan(self, until: Optional[str] = None) -> Dict[str, Decision]:
        """What :meth:`run` would do at each stage, and why, without doing it (``mobiler2l run --plan``).

        A stage whose upstream stage (``DEPENDS``) will run is planned to run after it, since that
        makes its inputs newer than its outputs.
        """
        plan: Dict[str, Decision] = {}
        for name in self.stages_until(until):
            own = self.decide(name)
            upstream = [d for d in DEPENDS[name] if d in plan and plan[d].action != "skip"]
            if upstream and own.action != "train":  # a run without a checkpoint trains either way
                action = "retrain" if name in ("teacher", "student") else "run"
                own = Decision(action, f"after {', '.join(upstream)}")
            plan[name] = own
        return plan

    def decide(self, stage: str) -> Decision:
        """Whether ``stage`` is skipped, resumed or (re)done, given the files on disk now."""
        if stage == "process":
            if (self.dataset / "transforms.json").is_file():
                return Decision("skip", f"{self.dataset / 'transforms.json'} exists")
            return Decision("run", "no processed capture yet")
        if stage in ("teacher", "student"):
            method, steps, extra, inputs = self.training(stage)
            return self.training_decision(method, steps, extra, inputs)
        outputs, inputs = self.files(stage)
        if stage.endswith("-eval") and outputs[0].is_file():
            requested = read_json(outputs[0]).get("requested_views", self.preset.eval_views)
            if requested != self.preset.eval_views:
                return Decision("run", f"evaluated views changed: {requested} -> {self.preset.eval_views}")
        if up_to_date(outputs, inputs):
            return Decision("skip", "outputs newer than their inputs")
        missing = [p.name for p in outputs if not p.exists()]
        return Decision("run", f"missing {', '.join(missing)}" if missing else "inputs changed since")

    def files(self, stage: str) -> Tuple[List[Path], List[Path]]:
        """``(outputs, inputs)`` of a stage that is not a training stage."""
        if stage in ("teacher-eval", "student-eval"):
            who = stage.split("-")[0]
            config = self.teacher_config if who == "teacher" else self.student_config
            return [self.root / "eval" / f"{who}.json"], [config.parent / "nerfstudio_models"]
        if stage == "export":
            graphs = [self.export_dir / f"{g}.onnx" for g in ("sampler", "embedder", "model")]
            return [*graphs, self.export_dir / "metadata.json"], [self.student_config.parent / "nerfstudio_models"]
        if stage == "preview":
            outputs = [self.renders / "strip.png", self.renders / "onnx-view.png", self.renders / "onnx-orbit.gif"]
            return outputs, [self.export_dir, self.root / "eval"]
        raise ValueError(f"no files for stage {stage}")

    def save_record(self) -> None:
        write_json_atomic(
            self.record_path,
            {
                "data": str(self.data),
                "kind": self.kind,
                "preset": asdict(self.preset),
                "teacher_config": str(self.teacher_config),
                "student_config": str(self.student_config),
                "export": str(self.export_dir),
                "stages": {**self.previous, **{name: asdict(record) for name, record in self.records.items()}},
            },
        )

    def command(self, stage: str, args: List[str]) -> None:
        """Run ``args`` (output shown as it comes); StageError naming the stage when it fails: the tool's
        own one-line message when it gave one (bad input: rerunning cannot help), else a resume hint."""
        CONSOLE.print(f"[dim]$ {' '.join(args)}")
        returncode, cause = run_showing_stderr(args)
        if returncode != 0:
            tool_name = f"`{Path(args[0]).name} {' '.join(args[1:3])} ...`"
            if cause is not None:
                raise StageError(f"stage {stage}: {cause} ({tool_name} exited with code {returncode})")
            raise StageError(
                f"stage {stage}: {tool_name} exited with code "
                f"{returncode} (see its output above); rerun the same command to resume"
            )

    # ------------------------------------------------------------------ training
    def training(self, stage: str) -> Tuple[str, int, List[str], List[Path]]:
        """``(method, steps, extra ns-train flags, inputs)`` of the teacher or student stage.

        The student's learning-rate schedules (``--optimizers.{student,grids}.scheduler.max-steps``)
        follow its steps; they are left out of the recorded settings (``STEP_FLAGS``) so that more steps resume instead of retraining.
        """
        p = self.preset
        if stage == "teacher":
            return self.teacher_method, p.teacher_steps, list(p.teacher_args), [self.dataset]
        flags = {
            "--pipeline.datamanager.teacher-config": self.teacher_config,
            "--pipeline.datamanager.pseudo-count": p.pseudo_count,
            "--pipeline.datamanager.real-share": p.real_share,
            "--pipeline.datamanager.finetune-steps": p.finetune_steps,
            "--optimizers.student.scheduler.max-steps": p.student_steps,
            "--optimizers.grids.scheduler.max-steps": p.student_steps,
        }
        if self.regenerate_corrupt:
            flags[REGENERATE_FLAG] = True
        extra = [str(v) for pair in flags.items() for v in pair] + list(p.student_args)
        return self.student_method, p.student_steps, extra, [self.teacher_config.parent / "nerfstudio_models"]

    def settings(self, method: str, extra: Sequence[str]) -> Dict[str, object]:
        """What a training run is, apart from its length: recorded beside its config.yml. Paths inside
        the run folder are recorded relative to it, so a moved runs folder resumes instead of retraining."""
        flags = flag_values(extra, ignore=STEP_FLAGS + (REGENERATE_FLAG,))
        return {
            "method": method,
            "data": self.relative(str(self.dataset)),
            "flags": {flag: self.relative(value) for flag, value in flags.items()},
        }

    def recorded_settings(self, run_dir: Path) -> Optional[Dict[str, object]]:
        """The settings recorded beside a run, with paths inside the run folder made relative (runs
        recorded before paths were relative compare equal to today's)."""
        old = read_settings(run_dir)
        if old is None:
            return None
        flags = old.get("flags") if isinstance(old.get("flags"), dict) else {}
        relative_flags = {k: self.relative(v) if isinstance(v, str) else v for k, v in flags.items()}
        return {**old, "data": self.relative(str(old.get("data"))), "flags": relative_flags}

    def relative(self, value: str) -> str:
        """``value`` relative to the run folder when it is a path inside it, else unchanged."""
        if not os.path.isabs(value):
            return value
        try:
            return Path(value).relative_to(self.root).as_posix()
        except ValueError:
            return value

    def training_decision(self, method: str, steps: int, extra: Sequence[str], inputs: Sequence[Path]) -> Decision:
        """Skip a finished run, resume a shorter one, retrain one made from other inputs or settings."""
        config = self.run_config(method)
        checkpoints = config.parent / "nerfstudio_models"
        latest, unusable = usable_checkpoints(checkpoints)
        decision = self._training_decision(checkpoints, latest, steps, method, extra, inputs)
        if not unusable:
            return decision
        # a save killed half-way (nerfstudio's own saves; SafeTrainer's are atomic)
        path, reason = unusable[0]
        note = f"{path.name} is unusable ({reason.split(' (')[0]}) and is moved aside when this stage runs; "
        if latest is None:
            return Decision("train", f"{note}no earlier checkpoint, so training starts again")
        return Decision(decision.action, note + decision.reason)

    def _training_decision(
        self, checkpoints: Path, latest: Optional[int], steps: int, method: str, extra: Sequence[str], inputs
    ) -> Decision:
        config = self.run_config(method)
        if latest is None:
            return Decision("train", "no checkpoint yet")
        if not up_to_date([checkpoints], inputs):
            return Decision("retrain", f"inputs changed since {checkpoints} was written")
        changed = changed_settings(self.recorded_settings(config.parent), self.settings(method, extra))
        if changed:
            return Decision("retrain", f"settings changed: {changed}")
        if latest >= steps - 1:
            return Decision("skip", f"finished ({latest + 1} steps)")
        return Decision("resume", f"from step {latest} ({steps - 1 - latest} steps to go)")

    def train(self, stage: str) -> StageRecord:
        """``ns-train`` the teacher or the student for its steps in total, resuming from the latest checkpoint."""
        method, steps, extra, inputs = self.training(stage)
        config = self.run_config(method)
        checkpoints = config.parent / "nerfstudio_models"
        detail: Dict[str, object] = {"method": method, "steps": steps}
        usable = set_aside_unusable(checkpoints, stage)
        decision = self.training_decision(method, steps, extra, inputs)
        if decision.action == "skip":
            return StageRecord("skipped", 0.0, [str(config)], detail)
        if decision.action == "retrain":
            CONSOLE.print(f"{stage}: {decision.reason}: training again")
            shutil.rmtree(checkpoints)
        latest = usable if decision.action == "resume" else None
        remaining = steps if latest is None else steps - 1 - latest
        save_every = max(100, steps // 10)
        args = [tool("ns-train"), method, "--output-dir", str(self.root / "outputs"), "--experiment-name", self.name]
        args += ["--timestamp", TIMESTAMP, "--vis", "tensorboard", "--max-num-iterations", str(remaining)]
        args += ["--steps-per-save", str(save_every)]
        args += ["--steps-per-eval-image", str(NEVER), "--steps-per-eval-all-images", str(NEVER)]
        if latest is not None:
            CONSOLE.print(f"{stage}: resuming from step {latest} ({remaining} steps to go)")
            args += ["--load-dir", str(checkpoints)]
            detail["resumed_from"] = latest
        args += [*extra, self.dataparser, "--data", str(self.dataset)]
        write_json_atomic(config.parent / SETTINGS_FILE, self.settings(method, extra))
        try:
            self.command(stage, args)
        finally:
            if not checkpoint_steps(checkpoints):  # failed (or stopped) before its first checkpoint:
                shutil.rmtree(config.parent, ignore_errors=True)  # no stub run folder with a config.yml
                for parent in config.parent.parents:  # nor the empty folders above it
                    if parent == self.root or not parent.is_dir() or any(parent.iterdir()):
                        break
                    parent.rmdir()
        return StageRecord("done", 0.0, [str(config)], detail)

    # ------------------------------------------------------------------ stages
    def stage_process(self) -> StageRecord:
        if self.decide("process").action == "skip":
            return StageRecord("skipped", 0.0, [str(self.dataset)])
        from mobiler2l_ns.capture.process import process_capture  # pylint: disable=import-outside-toplevel

        process_capture(self.data, self.dataset)
        return StageRecord("done", 0.0, [str(self.dataset)])

    def stage_teacher(self) -> StageRecord:
        return self.train("teacher")

    def stage_student(self) -> StageRecord:
        return self.train("student")

    def evaluate(self, who: str, config: Path) -> StageRecord:
        """Test-view metrics and renders of a run: ``eval/WHO.json``, ``renders/WHO/test/``."""
        out = self.root / "eval" / f"{who}.json"
        if self.decide(f"{who}-eval").action == "skip":
            return StageRecord("skipped", 0.0, [str(out)], {"results": summary(json.loads(out.read_text()))})
        from mobiler2l_ns.chain.evaluate import evaluate_run  # pylint: disable=import-outside-toplevel

        shutil.rmtree(self.renders / who, ignore_errors=True)
        result = evaluate_run(config, self.renders / who, self.preset.eval_views, save_gt=who == "teacher")
        write_json_atomic(out, {**result, "requested_views": self.preset.eval_views})
        CONSOLE.print(f"{who}: " + ", ".join(f"{k} {v:.4g}" for k, v in summary(result).items()))
        return StageRecord("done", 0.0, [str(out)], {"results": summary(result)})

    def stage_teacher_eval(self) -> StageRecord:
        return self.evaluate("teacher", self.teacher_config)

    def stage_student_eval(self) -> StageRecord:
        return self.evaluate("student", self.student_config)

    def stage_export(self) -> StageRecord:
        if self.decide("export").action == "skip":
            return StageRecord("skipped", 0.0, [str(self.export_dir)])
        args = [tool("ns-export"), "mobiler2l-onnx", "--load-config", str(self.student_config)]
        self.command("export", [*args, "--output-dir", str(self.export_dir)])
        return StageRecord("done", 0.0, [str(self.export_dir)])

    def stage_preview(self) -> StageRecord:
        outputs, _ = self.files("preview")
        if self.decide("preview").action == "skip":
            return StageRecord("skipped", 0.0, [str(p) for p in outputs])
        onnx = [tool("mobiler2l-render"), str(self.export_dir)]
        self.command("preview", [*onnx, "--out", str(self.renders / "onnx-view.png")])
        orbit = ["--orbit", str(self.preset.orbit_frames), "--out", str(self.renders / "onnx-orbit.gif")]
        self.command("preview", [*onnx, *orbit])
        self.command(
            "preview", [sys.executable, "-m", "mobiler2l_ns.utils.strip", str(self.renders), "--out", str(outputs[0])]
        )
        return StageRecord("done", 0.0, [str(p) for p in outputs])
