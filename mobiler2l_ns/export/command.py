"""``ns-export mobiler2l-onnx``: the tyro subcommand (a dataclass with ``main()``, like nerfstudio's exporters).

Kept light (no torch / onnx imports): nerfstudio imports it, through the plugin's entry point,
for every ``ns-*`` command. The work happens in :mod:`mobiler2l_ns.export.onnx_export`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Literal, Optional

from tyro.constructors import PrimitiveConstructorSpec
from typing_extensions import Annotated

SUBCOMMAND_NAME = "mobiler2l-onnx"


def _parse_flag(args: List[str]) -> bool:
    if not args:
        return True
    value = args[0].strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise ValueError(f"expected True or False, got {args[0]!r}")


# ns-export wraps its commands in tyro.conf.FlagConversionOff, which would make a bool need an
# explicit value (``--fp16 True``). This spec accepts both ``--fp16`` and ``--fp16 True|False``.
Flag = Annotated[
    bool,
    PrimitiveConstructorSpec(
        nargs=(0, 1),
        metavar="[{True,False}]",
        instance_from_str=_parse_flag,
        is_instance=lambda x: isinstance(x, bool),
        str_from_instance=lambda x: [str(x)],
    ),
]


@dataclass
class ExportMobileR2LOnnx:
    """Export a MobileR2L student as ONNX graphs (sampler, embedder, model) + metadata.json."""

    load_config: Path
    """Path to the run's config.yml (a mobiler2l / mobiler2l-small run)."""
    output_dir: Path
    """Directory to write sampler.onnx, embedder.onnx, model.onnx and metadata.json into."""
    target: Literal["standard", "snap"] = "standard"
    """standard: opset 17, exact GELU (any ONNX runtime); snap: opset 11 with GeluSnap (Lens Studio only)."""
    fp16: Flag = False
    """Store and run model.onnx in float16 (I/O stays float32); prints and records its PSNR vs fp32."""
    height: Optional[int] = None
    """Image height of the export (default: the training camera's; alone keeps the aspect ratio)."""
    width: Optional[int] = None
    """Image width of the export (default: the training camera's; alone keeps the aspect ratio)."""

    def main(self) -> None:
        """Run the export (one-line ``mobiler2l: ...`` errors for bad input)."""
        from mobiler2l_ns.export.onnx_export import export_mobiler2l_onnx

        export_mobiler2l_onnx(
            self.load_config,
            self.output_dir,
            target=self.target,
            fp16=self.fp16,
            height=self.height,
            width=self.width,
        )
