"""A full-resolution photo capture through ``mobiler2l run``: seconds per stage and the whole wall clock.

    python benchmarks/large_capture.py --photos ../shared/data/ethiopian-head-photos/images --size 4000 \
        [--preset cpu] [--out runs/large] [--name large]

Writes copies of ``--photos`` enlarged to ``--size`` px on their longer side (Pillow Lanczos, JPEG quality 95)
into ``OUT/photos-SIZE`` (kept and reused), then runs ``mobiler2l run`` on them with ``--preset`` into
``OUT`` from an empty scene folder, as a user would, and prints each stage's seconds (``chain.json``), the
held-out PSNR / SSIM of teacher and student and the wall clock; writes ``OUT/NAME-report.json``.

The enlarged photos stand in for a camera's full-resolution files: they cost what those cost to decode and
shrink, and train at the preset's photo size, but hold no more detail than the originals, so COLMAP may find
fewer features in them than in real 12 MP photos; its time also depends on the capture (a turntable's
inconsistent matches slow its mapper), so it is this capture's figure, not a bound.
"""

from __future__ import annotations

import io
import json
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Dict

import tyro
from PIL import Image
from rich.console import Console
from rich.table import Table

from common import machine_description

from mobiler2l_ns.utils.data_checks import list_photos
from mobiler2l_ns.utils.io import write_atomic, write_json_atomic

CONSOLE = Console(width=120)


@dataclass
class Args:
    photos: Path
    """A folder of photos."""
    size: int = 4000
    """Longer side (px) of the enlarged copies."""
    preset: str = "cpu"
    out: Path = Path("runs/large")
    name: str = "large"


def enlarge(photos: Path, folder: Path, size: int) -> int:
    """Copies of the photos in ``photos`` with their longer side ``size`` px (skipped when already there)."""
    files = list_photos(photos)
    if not files:
        raise SystemExit(f"--photos {photos}: no photos")
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        target = folder / f"{path.stem}.jpg"
        if target.is_file():
            continue
        with Image.open(path) as image:
            scale = size / max(image.size)
            large = image.convert("RGB").resize(
                (round(image.width * scale), round(image.height * scale)), Image.Resampling.LANCZOS
            )
        encoded = io.BytesIO()
        large.save(encoded, format="JPEG", quality=95)
        write_atomic(target, encoded.getvalue())  # hidden temporary name: a killed run leaves no half photo
    return len(files)


def main(args: Args) -> None:
    source = args.out / f"photos-{args.size}"
    count = enlarge(args.photos, source, args.size)
    scene = args.out / args.name
    shutil.rmtree(scene, ignore_errors=True)  # from scratch, COLMAP included
    command = ["mobiler2l", "run", str(source), "--preset", args.preset, "--out", str(args.out), "--name", args.name]
    CONSOLE.print(" ".join(command))
    start = time.perf_counter()
    subprocess.run([str(Path(sys.executable).parent / command[0]), *command[1:]], check=True)
    wall = time.perf_counter() - start
    record = json.loads((scene / "chain.json").read_text())
    stages: Dict[str, float] = {name: stage["seconds"] for name, stage in record["stages"].items()}
    results = {
        who: {k: json.loads((scene / "eval" / f"{who}.json").read_text())[k] for k in ("psnr", "ssim", "views")}
        for who in ("teacher", "student")
    }
    table = Table(title=f"{count} photos at {args.size} px, preset {args.preset} ({machine_description()})")
    for column in (*stages, "all"):
        table.add_column(column)
    table.add_row(*(f"{s / 60:.1f} min" for s in stages.values()), f"{wall / 60:.1f} min")
    CONSOLE.print(table)
    for who, r in results.items():
        CONSOLE.print(f"{who}: held-out {r['psnr']:.2f} dB / SSIM {r['ssim']:.3f} over {r['views']} views")
    report = {
        "command": " ".join(command),
        "photos": count,
        "size": args.size,
        "machine": machine_description(),
        "wall_clock_s": wall,
        "stages_s": stages,
        "held_out": results,
    }
    write_json_atomic(args.out / f"{args.name}-report.json", report)
    CONSOLE.print(f"wrote {args.out / args.name}-report.json")


if __name__ == "__main__":
    main(tyro.cli(Args))
