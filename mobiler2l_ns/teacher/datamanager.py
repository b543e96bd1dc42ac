"""The teacher's ray datamanager: nerfstudio's, after checking the dataset folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Type

from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig

from mobiler2l_ns.capture.quality import warn_at_training_start
from mobiler2l_ns.utils.data_checks import check_datamanager_data


@dataclass
class TeacherDataManagerConfig(VanillaDataManagerConfig):
    """nerfstudio's VanillaDataManager with a one-line error for an unusable dataset."""

    _target: Type = field(default_factory=lambda: TeacherDataManager)
    capture_check: bool = True
    """At the start of training, print a one-line summary of ``mobiler2l-check-capture`` on the
    training frames (lighting, blur, radius, missing views, overlap). Never stops training."""


class TeacherDataManager(VanillaDataManager):
    """Checks ``--data`` before the dataparser reads it, then behaves as VanillaDataManager."""

    config: TeacherDataManagerConfig

    def __init__(self, config: TeacherDataManagerConfig, *args, **kwargs) -> None:
        check_datamanager_data(config)
        super().__init__(config, *args, **kwargs)
        if config.capture_check and self.test_mode == "val":  # training, not ns-eval / ns-viewer
            self.check_capture()

    def check_capture(self) -> None:
        """One-line capture-quality summary of the training frames (:func:`~mobiler2l_ns.capture.quality.warn_at_training_start`;
        never raises)."""
        outputs = self.train_dataparser_outputs
        data = Path(self.config.data if self.config.data is not None else self.config.dataparser.data)
        warn_at_training_start(outputs.image_filenames, outputs.cameras, data)
