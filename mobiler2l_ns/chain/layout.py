"""Where the chain keeps one scene's files, and which ``ns-train`` methods the data calls for.

One folder per scene::

    OUT/NAME/data/                       processed capture (only for raw photos / a video)
    OUT/NAME/outputs/NAME/METHOD/chain/  nerfstudio runs (config.yml, nerfstudio_models/)
    OUT/NAME/eval/{teacher,student}.json test-view metrics (chain/evaluate.py)
    OUT/NAME/export/                     three ONNX graphs + metadata.json
    OUT/NAME/renders/                    test renders, onnx-view.png, onnx-orbit.gif, strip.png
    OUT/NAME/chain.json                  what each stage did and how long it took
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from mobiler2l_ns.chain.data import DataKind, data_kind
from mobiler2l_ns.chain.presets import ChainPreset

TIMESTAMP = "chain"
"""The ``ns-train --timestamp`` of every chain run (one run folder per method, resumed in place)."""


@dataclass
class ChainLayout:
    """One scene's folder and what runs in it (no state beyond the paths; :class:`~mobiler2l_ns.chain.Chain`
    adds the stages).

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

    def __post_init__(self) -> None:
        self.data = self.data.expanduser().resolve()
        self.root = (self.out / self.name).resolve()
        self.kind: DataKind = data_kind(self.data)

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
        """The ``config.yml`` of ``method``'s run in this scene's folder."""
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

    def eval_path(self, who: str) -> Path:
        """Test-view metrics of the ``teacher`` or the ``student``."""
        return self.root / "eval" / f"{who}.json"

    @property
    def record_path(self) -> Path:
        return self.root / "chain.json"

    def relative(self, value: str) -> str:
        """``value`` relative to the scene's folder when it is a path inside it, else unchanged."""
        if not os.path.isabs(value):
            return value
        try:
            return Path(value).relative_to(self.root).as_posix()
        except ValueError:
            return value
