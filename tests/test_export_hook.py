"""Tests of the hook that adds ``mobiler2l-onnx`` to nerfstudio's ``ns-export`` (stand-in exporter modules).

The real ``ns-export`` is run in ``tests/test_export.py`` (``test_cli_commands``).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from mobiler2l_ns.export import ExportMobileR2LOnnx, ns_export_hook


def test_hook_extends_only_the_exporter_namespace(monkeypatch: pytest.MonkeyPatch) -> None:
    """The three import orders, on stand-in exporter modules; the tyro module itself is untouched."""
    import types

    import tyro
    from typing_extensions import Annotated, Union

    @dataclass
    class Other:
        x: int = 0

    commands = tyro.conf.FlagConversionOff[Union[Annotated[Other, tyro.conf.subcommand(name="other")]]]
    argv = ["mobiler2l-onnx", "--load-config", "a.yml", "--output-dir", "b", "--fp16", "--height", "64"]
    real_cli = tyro.cli

    # half-imported (the real ns-export): `tyro` bound, `Commands` not yet
    half = types.ModuleType(ns_export_hook.EXPORTER_MODULE)
    half.tyro = tyro
    monkeypatch.setitem(sys.modules, ns_export_hook.EXPORTER_MODULE, half)
    ns_export_hook.install_ns_export_hook()
    ns_export_hook.install_ns_export_hook()  # idempotent
    assert half.tyro is not tyro and tyro.cli is real_cli and half.tyro.conf is tyro.conf
    half.Commands = commands
    parsed = half.tyro.cli(half.Commands, args=argv)
    assert parsed == ExportMobileR2LOnnx(Path("a.yml"), Path("b"), "standard", True, 64, None)
    assert half.tyro.cli(half.Commands, args=["other", "--x", "3"]) == Other(3)  # FlagConversionOff kept
    assert half.tyro.cli(int, args=["5"]) == 5  # anything else passes through

    # fully imported: `Commands` is replaced, entrypoint() reads it at call time
    full = types.ModuleType(ns_export_hook.EXPORTER_MODULE)
    full.tyro, full.Commands = tyro, commands
    monkeypatch.setitem(sys.modules, ns_export_hook.EXPORTER_MODULE, full)
    ns_export_hook.install_ns_export_hook()
    assert full.tyro is tyro and tyro.cli(full.Commands, args=argv).fp16 is True
    assert ns_export_hook.extend_commands(full.Commands) is full.Commands  # already extended


def test_hook_when_exporter_is_imported_later(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plugin imported first (exporter not imported yet): the one-shot import hook extends Commands."""
    import tyro

    name = "fake_ns_exporter_for_mobiler2l"
    (tmp_path / f"{name}.py").write_text(
        "from dataclasses import dataclass\n"
        "from typing import Union\n"
        "import tyro\n"
        "from typing_extensions import Annotated\n"
        "@dataclass\n"
        "class Other:\n"
        "    x: int = 0\n"
        "Commands = tyro.conf.FlagConversionOff[Union[Annotated[Other, tyro.conf.subcommand(name='other')]]]\n"
        "def entrypoint(args):\n"
        "    return tyro.cli(Commands, args=args)\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(ns_export_hook, "EXPORTER_MODULE", name)
    monkeypatch.setattr(sys, "meta_path", list(sys.meta_path))
    monkeypatch.delitem(sys.modules, name, raising=False)
    ns_export_hook.install_ns_export_hook()
    assert sum(isinstance(f, ns_export_hook._ExporterImportHook) for f in sys.meta_path) == 1
    module = __import__(name)
    assert not any(isinstance(f, ns_export_hook._ExporterImportHook) for f in sys.meta_path)  # one-shot
    assert module.tyro is tyro
    parsed = module.entrypoint(["mobiler2l-onnx", "--load-config", "c.yml", "--output-dir", "o", "--target", "snap"])
    assert isinstance(parsed, ExportMobileR2LOnnx) and parsed.target == "snap" and parsed.fp16 is False
    assert module.entrypoint(["other", "--x", "2"]).x == 2
    monkeypatch.delitem(sys.modules, name)
