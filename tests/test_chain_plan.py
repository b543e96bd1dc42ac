"""The chain's planner and stage decisions on hand-made run folders: no training, no subprocess.

Each test writes the files a chain run leaves (config.yml, checkpoints, chain-settings.json, eval
JSON, ONNX files, previews) into ``tmp_path``, dates them with ``os.utime`` and checks what
:meth:`Chain.plan` and :meth:`Chain.run` decide. The commands a stage would run are captured instead.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path
from typing import List

import pytest
from PIL import Image

from mobiler2l_ns.chain import Chain, ChainPreset, Decision, Stage, StageError
from mobiler2l_ns.chain.data import data_kind
from mobiler2l_ns.chain.settings import SETTINGS_FILE, STEP_FLAGS, changed_settings, flag_values
from mobiler2l_ns.chain.training import StudentStage, TeacherStage
from mobiler2l_ns.methods.presets import PRESETS
from mobiler2l_ns.utils.checkpoints import CORRUPT_FOLDER, checkpoint_steps
from mobiler2l_ns.utils.errors import InputError
from tests.helpers import save_checkpoint

PRESET = ChainPreset(
    description="planner test",
    teacher_steps=100,
    student_method="mobiler2l-small",
    student_steps=300,
    pseudo_count=16,
    finetune_steps=30,
    teacher_args=("--pipeline.model.log2-hashmap-size", "15"),
)
T0 = 1_700_000_000.0
"""The data's time; each stage's files are dated 10 s after the files they are made from."""
ALL_STAGES = ["teacher", "teacher-eval", "student", "student-eval", "export", "preview"]
TEACHER, STUDENT = TeacherStage(), StudentStage()


def date(path: Path, when: float) -> None:
    """Set the modification time of ``path`` and, for a folder, of everything in it."""
    for p in [path, *(path.rglob("*") if path.is_dir() else [])]:
        os.utime(p, (when, when))


@pytest.fixture
def scene(tmp_path: Path) -> Path:
    """A Blender scene as far as the chain looks at it (``transforms_train.json``), dated T0."""
    folder = tmp_path / "scene"
    folder.mkdir()
    (folder / "transforms_train.json").write_text("{}")
    date(folder, T0)
    return folder


def fake_run(chain: Chain, stage: TeacherStage | StudentStage, step: int, when: float, **kwargs) -> Path:
    """What ``ns-train`` leaves: config.yml, a checkpoint at ``step`` and the chain's recorded settings."""
    config = chain.run_config(stage.method(chain))
    config.parent.mkdir(parents=True, exist_ok=True)
    config.write_text("stub")
    (config.parent / SETTINGS_FILE).write_text(json.dumps(stage.settings(chain)))
    models = config.parent / "nerfstudio_models"
    save_checkpoint(models, step, **kwargs)
    date(config.parent, when)
    return models


def write_files(paths: List[Path], when: float, text: str = "x") -> None:
    for path in paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        date(path, when)


def finished(scene: Path, out: Path, preset: ChainPreset = PRESET) -> Chain:
    """A scene folder whose every stage is done, each stage's files newer than its inputs."""
    chain = Chain(scene, out, "tiny", preset)
    fake_run(chain, TEACHER, preset.teacher_steps - 1, T0 + 10)
    fake_run(chain, STUDENT, preset.student_steps - 1, T0 + 20)
    for who, when in (("teacher", T0 + 20), ("student", T0 + 30)):
        result = {"psnr": 25.0, "ssim": 0.9, "lpips": None, "views": 4, "requested_views": None}
        write_files([chain.eval_path(who)], when, json.dumps(result))
    write_files(
        [chain.export_dir / n for n in ("sampler.onnx", "embedder.onnx", "model.onnx", "metadata.json")], T0 + 30
    )
    write_files([chain.renders / n for n in ("strip.png", "onnx-view.png", "onnx-orbit.gif")], T0 + 40)
    return Chain(scene, out, "tiny", preset)


def actions(plan) -> dict:
    return {name: decision.action for name, decision in plan.items()}


@pytest.fixture
def commands(monkeypatch: pytest.MonkeyPatch) -> List[List[str]]:
    """The commands stages would run (none is run); a training command leaves a checkpoint at its last step."""
    ran: List[List[str]] = []

    def fake_command(self: Stage, args: List[str]) -> None:
        ran.append(list(args))
        if "--max-num-iterations" in args:
            load = args[args.index("--load-dir") + 1] if "--load-dir" in args else None
            start = max(checkpoint_steps(Path(load))) + 1 if load else 0
            output = Path(args[args.index("--output-dir") + 1]) / args[args.index("--experiment-name") + 1]
            models = output / args[1] / "chain" / "nerfstudio_models"
            save_checkpoint(models, start + int(args[args.index("--max-num-iterations") + 1]) - 1)

    monkeypatch.setattr(Stage, "command", fake_command)
    return ran


def test_data_kinds_and_bad_data(scene: Path, tmp_path: Path) -> None:
    assert data_kind(scene) == "blender"
    (tmp_path / "capture").mkdir()
    (tmp_path / "capture" / "transforms.json").write_text("{}")
    assert data_kind(tmp_path / "capture") == "nerfstudio"
    (tmp_path / "photos").mkdir()
    Image.new("RGB", (8, 8)).save(tmp_path / "photos" / "a.jpg")
    assert data_kind(tmp_path / "photos") == "images"
    (tmp_path / "clip.mp4").write_bytes(b"")
    assert data_kind(tmp_path / "clip.mp4") == "video"
    (tmp_path / "empty").mkdir()
    (tmp_path / "notes.txt").write_text("x")
    for bad, expected in (
        (tmp_path / "missing", "no such file or folder"),
        (tmp_path / "empty", "expected a Blender scene"),
        (tmp_path / "notes.txt", "not a video"),
    ):
        with pytest.raises(InputError, match=expected) as err:
            data_kind(bad)
        assert "\n" not in str(err.value) and str(bad) in str(err.value)


def test_plan_of_a_new_folder_trains_everything(scene: Path, tmp_path: Path) -> None:
    plan = Chain(scene, tmp_path, "new", PRESET).plan()
    assert plan == {
        "teacher": Decision("train", "no checkpoint yet"),
        "teacher-eval": Decision("run", "after teacher"),
        "student": Decision("train", "no checkpoint yet"),
        "student-eval": Decision("run", "after student"),
        "export": Decision("run", "after student"),
        "preview": Decision("run", "after export, teacher-eval, student-eval"),
    }
    assert not (tmp_path / "new").exists()  # planning writes nothing


def test_raw_photos_are_processed_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    photos = tmp_path / "photos"
    photos.mkdir()
    Image.new("RGB", (8, 8)).save(photos / "a.jpg")
    chain = Chain(photos, tmp_path / "runs", "photos", replace(PRESET, max_photo_size=640))
    assert chain.dataset == chain.root / "data" and chain.teacher_method == "mobiler2l-teacher-real"
    assert chain.student_method == "mobiler2l-small-real" and chain.dataparser == "nerfstudio-data"
    plan = chain.plan("teacher")
    assert plan == {
        "process": Decision("run", "no processed capture yet"),
        "teacher": Decision("train", "no checkpoint yet"),
    }
    calls = []

    def process_capture(src: Path, dst: Path, **options) -> Path:  # the preset's photo size reaches COLMAP
        calls.append((src, dst, options))
        write_files([dst / "transforms.json"], T0)
        return dst

    monkeypatch.setattr("mobiler2l_ns.capture.process.process_capture", process_capture)
    assert chain.run("process")["process"].status == "done"
    assert calls == [(photos, chain.dataset, {"max_photo_size": 640})]
    assert chain.plan("process") == {"process": Decision("skip", f"{chain.dataset / 'transforms.json'} exists")}
    assert chain.run("process")["process"].status == "skipped" and len(calls) == 1
    assert {PRESETS[name].max_photo_size for name in ("cpu-toy", "cpu")} == {800}  # CPU: ~600x600 pixel counts


def test_finished_chain_is_skipped_and_its_record_kept(scene: Path, tmp_path: Path, commands) -> None:
    chain = finished(scene, tmp_path)
    plan = chain.plan()
    assert plan["teacher"] == Decision("skip", "finished (100 steps)")
    assert plan["student"] == Decision("skip", "finished (300 steps)")
    assert all(plan[name] == Decision("skip", "outputs newer than their inputs") for name in ALL_STAGES[4:])
    assert plan["teacher-eval"] == plan["student-eval"] == Decision("skip", "outputs newer than their inputs")
    # an earlier run's record: a skipped stage keeps the seconds its outputs took to make
    chain.record_path.write_text(json.dumps({"stages": {"teacher": {"status": "done", "seconds": 12.5}}}))
    records = Chain(scene, tmp_path, "tiny", PRESET).run()
    assert commands == []
    assert {name: r.status for name, r in records.items()} == dict.fromkeys(ALL_STAGES, "skipped")
    assert records["teacher"].seconds == 12.5
    saved = json.loads(chain.record_path.read_text())
    assert list(saved) == ["data", "kind", "preset", "teacher_config", "student_config", "export", "stages"]
    assert saved["kind"] == "blender" and saved["preset"]["teacher_steps"] == 100
    assert saved["stages"]["teacher"] == {
        "status": "skipped",
        "seconds": 12.5,
        "outputs": [str(chain.teacher_config)],
        "detail": {"method": "mobiler2l-teacher", "steps": 100},
    }
    assert saved["stages"]["student-eval"]["detail"] == {"results": {"psnr": 25.0, "ssim": 0.9, "views": 4}}


def test_a_newer_input_reruns_what_reads_it(scene: Path, tmp_path: Path) -> None:
    chain = finished(scene, tmp_path)
    date(chain.student_config.parent / "nerfstudio_models", T0 + 100)  # student trained again
    plan = chain.plan()
    assert actions(plan) == {
        **dict.fromkeys(ALL_STAGES, "skip"),
        "student-eval": "run",
        "export": "run",
        "preview": "run",
    }
    assert plan["export"] == Decision("run", "inputs changed since")
    assert plan["preview"] == Decision("run", "after export, student-eval")
    date(scene / "transforms_train.json", T0 + 200)  # the data changed: everything is made again
    plan = chain.plan()
    models = chain.teacher_config.parent / "nerfstudio_models"
    assert plan["teacher"] == Decision("retrain", f"inputs changed since {models} was written")
    assert plan["student"] == Decision("retrain", "after teacher")
    assert actions(plan) == {**dict.fromkeys(ALL_STAGES, "run"), "teacher": "retrain", "student": "retrain"}


def test_missing_outputs_and_other_eval_views_rerun(scene: Path, tmp_path: Path) -> None:
    chain = finished(scene, tmp_path)
    for graph in chain.export_dir.iterdir():
        graph.unlink()
    plan = chain.plan()
    assert actions(plan) == {**dict.fromkeys(ALL_STAGES, "skip"), "export": "run", "preview": "run"}
    assert plan["export"].reason == "missing sampler.onnx, embedder.onnx, model.onnx, metadata.json"
    assert plan["preview"].reason == "after export"
    finished(scene, tmp_path / "other")
    plan = Chain(scene, tmp_path / "other", "tiny", replace(PRESET, eval_views=2)).plan()
    assert plan["teacher-eval"] == Decision("run", "evaluated views changed: None -> 2")
    assert plan["student"].action == "skip" and plan["preview"] == Decision("run", "after teacher-eval, student-eval")


def test_other_settings_retrain(scene: Path, tmp_path: Path, commands) -> None:
    """Another preset on the same folder: the teacher is trained again, not resumed with flags it was not
    trained with, and everything after it reruns."""
    finished(scene, tmp_path)
    chain = Chain(scene, tmp_path, "tiny", replace(PRESET, teacher_args=()))
    plan = chain.plan()
    assert plan["teacher"] == Decision("retrain", "settings changed: --pipeline.model.log2-hashmap-size 15 -> (unset)")
    assert plan["student"] == Decision("retrain", "after teacher") and plan["export"] == Decision(
        "run", "after student"
    )
    models = chain.teacher_config.parent / "nerfstudio_models"
    save_checkpoint(models, 50)  # an older checkpoint of the old run
    date(models, T0 + 10)
    chain.run("teacher")
    (args,) = commands
    assert "--load-dir" not in args and args[args.index("--max-num-iterations") + 1] == "100"
    assert sorted(checkpoint_steps(models)) == [99]  # the old run's checkpoints went first
    recorded = json.loads((models.parent / SETTINGS_FILE).read_text())
    assert recorded == {"method": "mobiler2l-teacher", "data": str(scene), "flags": {}}


def test_cli_plan_prints_each_stage_and_runs_nothing(scene: Path, tmp_path: Path, capsys, commands) -> None:
    from mobiler2l_ns.cli import entrypoint

    chain = finished(scene, tmp_path)
    before = {p: p.stat().st_mtime for p in chain.root.rglob("*")}
    args = ["run", str(scene), "--out", str(tmp_path), "--name", "tiny", "--preset", "cpu-toy", "--plan"]
    entrypoint([*args, "--teacher-steps", "100"])
    lines = dict(line.split(": ", 1) for line in capsys.readouterr().out.splitlines())
    assert list(lines) == ALL_STAGES
    assert lines["teacher"] == "retrain (settings changed: --pipeline.model.log2-hashmap-size 15 -> (unset))"
    assert lines["student"] == "retrain (after teacher)" and lines["export"] == "run (after student)"
    assert {p: p.stat().st_mtime for p in chain.root.rglob("*")} == before and commands == []
    with pytest.raises(InputError) as err:  # the console script prints this one line and exits with 1
        entrypoint(["run", str(tmp_path / "nope")])
    assert err.value.code == f"mobiler2l: DATA {tmp_path / 'nope'}: no such file or folder"


def test_resume_from_the_latest_usable_checkpoint(scene: Path, tmp_path: Path, commands, capsys) -> None:
    chain = finished(scene, tmp_path)
    more = Chain(scene, tmp_path, "tiny", PRESET.with_steps(student=340))
    assert more.plan()["student"] == Decision("resume", "from step 299 (40 steps to go)")
    models = chain.student_config.parent / "nerfstudio_models"
    save_checkpoint(models, 99)  # an older checkpoint stays; the newest is resumed from
    date(models, T0 + 20)
    records = more.run("student")
    assert records["teacher"].status == "skipped" and records["student"].status == "done"
    assert records["student"].detail == {"method": "mobiler2l-small", "steps": 340, "resumed_from": 299}
    args = commands[0]
    assert args[args.index("--load-dir") + 1] == str(models) and args[args.index("--max-num-iterations") + 1] == "40"
    assert args[-3:] == ["blender-data", "--data", str(scene)]
    assert "resuming from step 299 (40 steps to go)" in capsys.readouterr().out
    assert max(checkpoint_steps(models)) == 339
    assert Chain(scene, tmp_path, "tiny", PRESET.with_steps(student=340)).plan()["student"].action == "skip"


def test_until_stops_the_plan_and_the_run(scene: Path, tmp_path: Path, commands) -> None:
    chain = Chain(scene, tmp_path, "tiny", PRESET)
    assert list(chain.plan("teacher")) == ["teacher"]
    assert list(chain.plan("student-eval")) == ALL_STAGES[:4]
    with pytest.raises(InputError, match=f"--until bogus: expected one of {', '.join(ALL_STAGES)}$"):
        chain.plan("bogus")
    assert list(chain.run("teacher")) == ["teacher"] and len(commands) == 1
    assert list(json.loads(chain.record_path.read_text())["stages"]) == ["teacher"]


def test_cli_until_names_only_what_it_made(scene: Path, tmp_path: Path, capsys, commands) -> None:
    from mobiler2l_ns.cli import entrypoint

    entrypoint(
        ["run", str(scene), "--out", str(tmp_path), "--name", "tiny", "--preset", "cpu-toy", "--until", "teacher"]
    )
    out = capsys.readouterr().out.replace("\n", "")  # rich wraps long paths
    chain = Chain(scene, tmp_path, "tiny", PRESETS["cpu-toy"])
    assert len(commands) == 1 and commands[0][1] == "mobiler2l-teacher"
    assert f"done up to teacher: {chain.record_path}" in out
    assert str(chain.export_dir) not in out and str(chain.renders) not in out  # never made, never named
    assert list(json.loads(chain.record_path.read_text())["stages"]) == ["teacher"]


def test_stub_run_folder_trains_and_a_failed_run_leaves_none(scene: Path, tmp_path: Path, monkeypatch) -> None:
    """ns-train writes config.yml before its first step: a run that stopped there trains from scratch,
    and a failed first run leaves no such stub behind."""
    chain = Chain(scene, tmp_path, "tiny", PRESET)
    write_files([chain.teacher_config], T0 + 10, "stub")
    assert chain.plan("teacher") == {"teacher": Decision("train", "no checkpoint yet")}

    def failing(self: Stage, args: List[str]) -> None:  # ns-train saves its config.yml, then stops on bad data
        chain.teacher_config.write_text("stub")
        raise StageError(f"stage {self.name}: bad data")

    monkeypatch.setattr(Stage, "command", failing)
    with pytest.raises(StageError, match="stage teacher: bad data"):
        chain.run("teacher")
    assert list(chain.root.iterdir()) == []  # no stub run folder, nor the folders above it


def test_truncated_checkpoint_is_named_and_set_aside(scene: Path, tmp_path: Path, commands) -> None:
    chain = Chain(scene, tmp_path, "tiny", PRESETS["cpu-toy"].with_steps(teacher=400))
    models = fake_run(chain, TEACHER, 99, T0 + 10)
    bad = save_checkpoint(models, 199, truncate=True)
    date(models, T0 + 10)
    decision = chain.plan("teacher")["teacher"]
    assert decision == Decision(
        "resume",
        "step-000000199.ckpt is unusable (truncated or not a checkpoint) and is moved aside when this stage runs; "
        "from step 99 (300 steps to go)",
    )
    chain.run("teacher")
    assert (models.parent / CORRUPT_FOLDER / bad.name).is_file()
    args = commands[0]
    assert "--load-dir" in args and args[args.index("--max-num-iterations") + 1] == "300"
    assert sorted(checkpoint_steps(models)) == [99, 399]
    # nothing usable: training starts again
    (models / "step-000000099.ckpt").unlink()
    save_checkpoint(models, 399, truncate=True)
    decision = chain.plan("teacher")["teacher"]
    assert decision.action == "train" and decision.reason.endswith("no earlier checkpoint, so training starts again")


def test_settings_of_a_run_and_what_changed() -> None:
    args = ["--a", "1", "--pipeline.model.x", "2", "3", "--optimizers.student.scheduler.max-steps", "10"]
    args += ["--optimizers.grids.scheduler.max-steps", "10"]  # schedules follow the steps: not settings
    flags = flag_values(args, ignore=STEP_FLAGS)
    assert flags == {"--a": "1", "--pipeline.model.x": "2 3"}
    old = {"method": "m", "data": "d", "flags": flags}
    assert changed_settings(old, {"method": "m", "data": "d", "flags": dict(flags)}) == ""
    assert changed_settings(None, old) == ""
    new = {"method": "m", "data": "e", "flags": {"--a": "4", "--b": "5"}}
    assert changed_settings(old, new) == "data d -> e; --a 1 -> 4; --b (unset) -> 5; --pipeline.model.x 2 3 -> (unset)"


def test_moved_runs_folder_keeps_its_settings(scene: Path, tmp_path: Path) -> None:
    """Paths inside the run folder are recorded relative to it: moving runs/ resumes, not retrains."""
    preset = PRESETS["cpu-toy"]
    before, after = Chain(scene, tmp_path / "a", "scene", preset), Chain(scene, tmp_path / "b", "scene", preset)
    recorded = STUDENT.settings(before)
    assert (
        recorded["flags"]["--pipeline.datamanager.teacher-config"] == "outputs/scene/mobiler2l-teacher/chain/config.yml"
    )
    assert recorded["data"] == str(scene)  # outside the run folder: absolute
    assert changed_settings(recorded, STUDENT.settings(after)) == ""
    regenerate = Chain(scene, tmp_path / "b", "scene", preset, regenerate_corrupt=True)
    assert "--pipeline.datamanager.pseudo-regenerate-corrupt" in STUDENT.flags(regenerate)
    assert changed_settings(recorded, STUDENT.settings(regenerate)) == ""  # a repair flag, not a setting
    # a record written before paths were relative (absolute teacher path) compares equal too
    legacy = dict(recorded, flags=dict(recorded["flags"]))
    legacy["flags"]["--pipeline.datamanager.teacher-config"] = str(before.teacher_config)
    (tmp_path / SETTINGS_FILE).write_text(json.dumps(legacy))
    assert changed_settings(STUDENT.recorded_settings(before, tmp_path), STUDENT.settings(before)) == ""
