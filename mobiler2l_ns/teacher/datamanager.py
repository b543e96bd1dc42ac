"""The teacher's ray datamanager: nerfstudio's, after checking the dataset folder."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Type

from nerfstudio.data.datamanagers.base_datamanager import VanillaDataManager, VanillaDataManagerConfig
from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig

from mobiler2l_ns.utils.data_checks import check_dataset


def parser_kind(dataparser_config) -> str:
    """'blender', 'nerfstudio' or 'other': which layout check applies to a dataparser config."""
    if isinstance(dataparser_config, BlenderDataParserConfig):
        return "blender"
    if isinstance(dataparser_config, NerfstudioDataParserConfig):
        return "nerfstudio"
    return "other"


@dataclass
class TeacherDataManagerConfig(VanillaDataManagerConfig):
    """nerfstudio's VanillaDataManager with a one-line error for an unusable dataset."""

    _target: Type = field(default_factory=lambda: TeacherDataManager)


class TeacherDataManager(VanillaDataManager):
    """Checks ``--data`` before the dataparser reads it, then behaves as VanillaDataManager."""

    def __init__(self, config: TeacherDataManagerConfig, *args, **kwargs) -> None:
        data = config.data if config.data is not None else config.dataparser.data
        check_dataset(data, parser_kind(config.dataparser))
        super().__init__(config, *args, **kwargs)
