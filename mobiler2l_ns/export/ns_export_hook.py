"""Adds ``mobiler2l-onnx`` to nerfstudio's own ``ns-export`` command.

nerfstudio 1.1.5 has no exporter registry: ``nerfstudio/scripts/exporter.py`` builds, at module
level, ``Commands = tyro.conf.FlagConversionOff[Union[Annotated[ExportPointCloud, subcommand(...)],
...]]`` and ``entrypoint()`` runs ``tyro.cli(Commands).main()``. Our plugin is imported (by
nerfstudio's entry-point discovery in ``nerfstudio.configs.method_configs``, which exporter.py
imports through ``eval_utils``) while exporter.py is still half-executed: ``Commands`` does not
exist yet, and anything assigned to it now would be overwritten. What does stick is a change that
``entrypoint()`` only looks up when it is *called*:

* exporter.py half-imported (the real ``ns-export``, or ``python -m nerfstudio.scripts.exporter``):
  exporter.py's module-global name ``tyro`` (already bound: ``import tyro`` precedes the import
  that loads the plugin) is rebound to a thin proxy of the tyro module. Every attribute is
  delegated to the real tyro, except that ``cli(f, ...)`` called with exactly exporter.py's own
  ``Commands`` object receives that union extended by
  ``Annotated[ExportMobileR2LOnnx, tyro.conf.subcommand(name="mobiler2l-onnx")]``.
* exporter.py already fully imported: its ``Commands`` global is replaced by the extended union
  (``entrypoint()`` reads the global at call time).
* exporter.py not imported yet: a one-shot import hook (``sys.meta_path`` finder matching only
  ``nerfstudio.scripts.exporter``; it removes itself when it fires) extends ``Commands`` right
  after the module has executed.

Blast radius: only the name ``tyro`` inside exporter.py's namespace (or its ``Commands``) changes.
The ``tyro`` module itself, ``tyro.cli`` for every other caller (``ns-train``, ``ns-render``,
...), the other ns-export subcommands and their options are untouched; the hook is idempotent.
If a future nerfstudio renames ``Commands`` or stops binding ``tyro`` first, the subcommand
silently disappears and ``tests/test_export.py`` (``ns-export --help``) fails.
"""

from __future__ import annotations

import importlib.abc
import importlib.util
import sys
import types
from typing import Any, Iterator, Union, get_args, get_origin

from typing_extensions import Annotated

EXPORTER_MODULE = "nerfstudio.scripts.exporter"
_MARK = "_mobiler2l_onnx_hook"


def _is_ours(member: Any) -> bool:
    from mobiler2l_ns.export.command import ExportMobileR2LOnnx

    if get_origin(member) is Annotated:
        member = member.__origin__
    return member is ExportMobileR2LOnnx


def extend_commands(commands: Any) -> Any:
    """``commands`` (a tyro subcommand union, possibly wrapped in ``Annotated`` markers) plus ours.

    Markers such as ``FlagConversionOff`` are kept; already-extended unions are returned as is.
    """
    import tyro

    from mobiler2l_ns.export.command import SUBCOMMAND_NAME, ExportMobileR2LOnnx

    metadata: tuple = ()
    base = commands
    if get_origin(commands) is Annotated:
        base, metadata = commands.__origin__, tuple(commands.__metadata__)
    members = get_args(base) if get_origin(base) is Union else (base,)
    if any(_is_ours(m) for m in members):
        return commands
    ours = Annotated[ExportMobileR2LOnnx, tyro.conf.subcommand(name=SUBCOMMAND_NAME)]
    union = Union[(*members, ours)]  # type: ignore[valid-type]
    return Annotated[(union, *metadata)] if metadata else union  # type: ignore[valid-type]


class _ExporterTyro(types.ModuleType):
    """Stands in for ``tyro`` inside exporter.py's namespace only; see the module docstring."""

    def __init__(self, real: types.ModuleType, exporter: types.ModuleType):
        super().__init__(real.__name__, real.__doc__)
        self._real = real
        self._exporter = exporter

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)

    def __dir__(self):
        return dir(self._real)

    def cli(self, f: Any, *args: Any, **kwargs: Any) -> Any:
        """``tyro.cli``; exporter.py's own ``Commands`` gains the ``mobiler2l-onnx`` subcommand."""
        if f is not None and f is self._exporter.__dict__.get("Commands"):
            f = extend_commands(f)
        return self._real.cli(f, *args, **kwargs)


def _attach(module: types.ModuleType) -> bool:
    """Hook one exporter module object (half- or fully-imported); False if its layout is unexpected."""
    namespace = module.__dict__
    if namespace.get(_MARK):
        return True
    if "Commands" in namespace:
        module.Commands = extend_commands(namespace["Commands"])  # type: ignore[attr-defined]
    else:
        real = namespace.get("tyro")
        if not isinstance(real, types.ModuleType):
            return False
        if not isinstance(real, _ExporterTyro):
            module.tyro = _ExporterTyro(real, module)  # type: ignore[attr-defined]
    namespace[_MARK] = True
    return True


def _exporter_modules() -> Iterator[types.ModuleType]:
    module = sys.modules.get(EXPORTER_MODULE)
    if module is not None:
        yield module
    main = sys.modules.get("__main__")
    spec = getattr(main, "__spec__", None)
    if main is not None and main is not module and getattr(spec, "name", None) == EXPORTER_MODULE:
        yield main


class _ExporterImportHook(importlib.abc.MetaPathFinder):
    """One-shot finder: when exporter.py is imported later, hook it right after it has executed."""

    def find_spec(self, fullname, path, target=None):  # noqa: D102
        if fullname != EXPORTER_MODULE:
            return None
        if self in sys.meta_path:
            sys.meta_path.remove(self)
        spec = importlib.util.find_spec(fullname)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_hook(module: types.ModuleType) -> None:
            exec_module(module)
            _attach(module)

        spec.loader.exec_module = exec_and_hook  # type: ignore[method-assign]
        return spec


def install_ns_export_hook() -> None:
    """Make ``ns-export mobiler2l-onnx`` available (idempotent; see the module docstring)."""
    for module in _exporter_modules():
        _attach(module)
    if EXPORTER_MODULE not in sys.modules and not any(isinstance(f, _ExporterImportHook) for f in sys.meta_path):
        sys.meta_path.insert(0, _ExporterImportHook())
