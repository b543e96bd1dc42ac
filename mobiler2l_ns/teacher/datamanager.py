"""The teacher's ray datamanager: nerfstudio's, after checking the dataset folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Type

from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig

from mobiler2l_ns.utils.data_checks import check_datamanager_data


@dataclass
class TeacherDataManagerConfig(VanillaDataManagerConfig):
    """nerfstudio's VanillaDataManager with a one-line error for an unusable dataset."""

    _target: Type = field(default_factory=lambda: TeacherDataManager)


class TeacherDataManager(VanillaDataManager):
    """Checks ``--data`` before the dataparser reads it, then behaves as VanillaDataManager."""

    def __init__(self, config: TeacherDataManagerConfig, *args, **kwargs) -> None:
        check_datamanager_data(config)
        super().__init__(config, *args, **kwargs)
