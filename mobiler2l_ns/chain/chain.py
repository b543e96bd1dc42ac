"""The whole chain of one scene: capture -> teacher -> student (pseudo views) -> ONNX -> previews.

Every stage runs the project's real command line tools (``ns-process-data``, ``ns-train``,
``ns-export mobiler2l-onnx``, ``mobiler2l-render``; evaluation loads each run like ``ns-eval``) into one
folder per scene (:mod:`mobiler2l_ns.chain.layout`). A stage is skipped when its outputs exist and are
newer than its inputs; a training stage whose run was interrupted resumes from its latest checkpoint,
and the pseudo view cache keeps every finished shard, so rerunning the same command after a crash or
Ctrl-C goes on where it stopped; a training run made with other settings (another preset, other flags)
is trained again (:mod:`mobiler2l_ns.chain.training`). :meth:`Chain.plan` says what a run would do, and
why, without doing it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Dict, List, Optional, Tuple

from nerfstudio.utils.rich_utils import CONSOLE

from mobiler2l_ns.chain.layout import ChainLayout
from mobiler2l_ns.chain.stage_base import Decision, Stage, StageRecord, read_json
from mobiler2l_ns.chain.steps import ExportStage, PreviewStage, ProcessStage, StudentEvalStage, TeacherEvalStage
from mobiler2l_ns.chain.training import StudentStage, TeacherStage
from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.utils.io import write_json_atomic

STAGES: Tuple[Stage, ...] = (
    ProcessStage(),
    TeacherStage(),
    TeacherEvalStage(),
    StudentStage(),
    StudentEvalStage(),
    ExportStage(),
    PreviewStage(),
)
"""Every stage, in the order they run (each after the stages it depends on)."""


@dataclass
class Chain(ChainLayout):
    """The stages of one scene, planned (:meth:`plan`) or run (:meth:`run`) in order; see
    :class:`~mobiler2l_ns.chain.layout.ChainLayout` for the arguments and the folder."""

    records: Dict[str, StageRecord] = field(default_factory=dict)

    def __post_init__(self) -> None:
        super().__post_init__()
        stages = read_json(self.record_path).get("stages")
        self.previous: Dict[str, dict] = stages if isinstance(stages, dict) else {}

    def stages(self) -> List[Stage]:
        """The stages of this scene's data, in order."""
        return [stage for stage in STAGES if stage.needed(self)]

    def stages_until(self, until: Optional[str]) -> List[Stage]:
        """The stages up to and including ``until`` (all when None); InputError naming ``--until`` if unknown."""
        stages = self.stages()
        names = [stage.name for stage in stages]
        if until is None:
            return stages
        if until not in names:
            raise InputError(f"--until {until}: expected one of {', '.join(names)}")
        return stages[: names.index(until) + 1]

    def plan(self, until: Optional[str] = None) -> Dict[str, Decision]:
        """What :meth:`run` would do at each stage, and why, without doing it (``mobiler2l run --plan``).

        A stage whose upstream stage (``depends``) will run is planned to run after it, since that
        makes its inputs newer than its outputs.
        """
        plan: Dict[str, Decision] = {}
        for stage in self.stages_until(until):
            own = stage.decide(self)
            upstream = [d for d in stage.depends if d in plan and plan[d].action != "skip"]
            if upstream and own.action != "train":  # a run without a checkpoint trains either way
                own = Decision(stage.redo, f"after {', '.join(upstream)}")
            plan[stage.name] = own
        return plan

    def run(self, until: Optional[str] = None) -> Dict[str, StageRecord]:
        """Run (or skip) every stage in order, up to and including ``until``; returns their records."""
        stages = self.stages_until(until)
        self.root.mkdir(parents=True, exist_ok=True)
        for index, stage in enumerate(stages):
            name = stage.name
            CONSOLE.rule(f"[bold]{index + 1}/{len(stages)} {name}")
            started = time.perf_counter()
            record = stage.run(self)
            record.seconds = round(time.perf_counter() - started, 1)
            if record.status == "skipped" and name in self.previous:  # keep what making the outputs took
                record.seconds = float(self.previous[name].get("seconds", record.seconds))
            self.records[name] = record
            CONSOLE.print(f"{name}: {record.status} in {record.seconds:.1f} s")
            self.save_record()
        return self.records

    def save_record(self) -> None:
        """Write ``chain.json``: the data, preset and runs, and every stage's record (earlier runs' kept)."""
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
