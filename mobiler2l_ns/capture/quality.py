"""Check a capture: load it with nerfstudio's dataparsers, run every check, summarise in one line.

:func:`check_capture` is the API behind ``mobiler2l-check-capture`` (:mod:`mobiler2l_ns.capture.check`);
:func:`warn_at_training_start` is the one-line summary the teacher's datamanager prints.
"""

from __future__ import annotations

from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from mobiler2l_ns.capture.cameras import azimuths_elevations, camera_layout, largest_azimuth_gap
from mobiler2l_ns.capture.checks import (
    check_azimuth_gap,
    check_brightness,
    check_elevation,
    check_intrinsics,
    check_overlap,
    check_radius,
    check_sharpness,
    check_static_background,
)
from mobiler2l_ns.capture.colmap_pairs import database_path, pair_configurations
from mobiler2l_ns.capture.findings import CaptureCheckConfig, CaptureReport, Finding
from mobiler2l_ns.capture.images import image_statistics
from mobiler2l_ns.utils.data_checks import check_dataset
from mobiler2l_ns.utils.errors import InputError


def load_capture(data: Path) -> Tuple[object, List[Path], Path]:
    """Cameras (nerfstudio ``Cameras`` ``[N]``), image paths and the folder frame names are relative to.

    Reads a Blender folder's train split or a nerfstudio-data capture's every frame with nerfstudio's
    dataparsers, after :func:`~mobiler2l_ns.utils.data_checks.check_dataset` (one-line errors).
    """
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
    from nerfstudio.utils.rich_utils import CONSOLE

    data = Path(data)
    if not data.exists():
        raise InputError(f"{data}: no such file or folder")
    blender = data.is_dir() and (data / "transforms_train.json").is_file() and not (data / "transforms.json").is_file()
    try:
        check_dataset(data, "blender" if blender else "nerfstudio", frames=False)  # bad frames: findings
    except InputError as err:  # its messages name the --data flag of ns-train; here DATA is positional
        raise InputError(err.message.removeprefix("--data ")) from None
    if blender:
        parser = BlenderDataParserConfig(data=data).setup()
        root = data
    else:
        parser = NerfstudioDataParserConfig(data=data, eval_mode="all").setup()
        root = data if data.is_dir() else data.parent
    quiet = CONSOLE.quiet
    CONSOLE.quiet = True  # the dataparser's log lines are noise here
    try:
        outputs = parser.get_dataparser_outputs(split="train")
    except InputError:
        raise
    except Exception as err:  # noqa: BLE001 - anything nerfstudio raises on a malformed capture
        reason = (str(err).splitlines() or [""])[0]
        raise InputError(f"{data}: nerfstudio cannot read this capture ({err.__class__.__name__}: {reason})") from None
    finally:
        CONSOLE.quiet = quiet
    return outputs.cameras, [Path(p) for p in outputs.image_filenames], root


def frame_name(path: Path, root: Path) -> str:
    """``path`` relative to ``root`` (posix), else its full path."""
    try:
        return Path(path).resolve().relative_to(Path(root).resolve()).as_posix()
    except ValueError:
        return str(path)


def check_frames(
    names: Sequence[str], image_paths: Sequence[Path], cameras, data: Path, config: Optional[CaptureCheckConfig] = None
) -> CaptureReport:
    """All checks on frames ``names`` (images ``image_paths``, nerfstudio ``cameras`` ``[N]``)."""
    cfg = config or CaptureCheckConfig()
    names = list(names)
    cams = camera_layout(cameras)
    report = CaptureReport(data=Path(data), frames=names, cameras=cams)
    n = len(names)
    report.stats["frames"] = float(n)
    if n < cfg.few_frames_warn:
        detail = f"only {n} frames (at least {cfg.few_frames_warn} recommended)"
        severe = n < cfg.few_frames_severe
        report.findings.append(Finding("", "few-frames", float(n), float(cfg.few_frames_warn), severe, detail))

    brightness = np.full(n, np.nan)
    sharpness = np.full(n, np.nan)
    for k, path in enumerate(image_paths):
        try:
            brightness[k], sharpness[k] = image_statistics(Path(path), cfg.analysis_size)
        except Exception as err:  # noqa: BLE001 - any undecodable image is a finding, not a crash
            detail = f"cannot be read ({err.__class__.__name__}: {err})".splitlines()[0]
            report.findings.append(Finding(names[k], "unreadable", float("nan"), float("nan"), True, detail))
    readable = np.isfinite(brightness)
    report.stats["median_brightness"] = float(np.median(brightness[readable])) if readable.any() else float("nan")

    finite = np.isfinite(sharpness)
    if readable.sum() >= 5:  # robust statistics need a few frames
        report.findings += check_brightness([nm for nm, ok in zip(names, readable) if ok], brightness[readable], cfg)
    if finite.sum() >= 5:
        report.findings += check_sharpness([nm for nm, ok in zip(names, finite) if ok], sharpness[finite], cfg)
    if n >= 5:
        report.findings += check_overlap(names, cams, cfg)
        if cams.layout == "360":
            report.findings += check_radius(names, cams, cfg)
            report.findings += check_azimuth_gap(names, cams, cfg)
    lens_findings, lens_stats = check_intrinsics(cameras, cfg)
    report.findings += lens_findings
    report.stats.update(lens_stats)
    match_findings, match_stats = check_static_background(pair_configurations(database_path(data)), cfg)
    report.findings += match_findings
    report.stats.update(match_stats)
    if cams.layout == "360":
        radii = np.linalg.norm(cams.centres - cams.centre, axis=-1)
        report.stats["radius_min_over_median"] = float(radii.min() / np.median(radii))
        report.stats["radius_max_over_median"] = float(radii.max() / np.median(radii))
        report.stats["largest_azimuth_gap_deg"] = largest_azimuth_gap(azimuths_elevations(cams)[0])[0]
        elevation_findings, elevation_stats = check_elevation(cams, cfg)
        report.findings += elevation_findings
        report.stats.update(elevation_stats)
    return report


def check_capture(data: Path, config: Optional[CaptureCheckConfig] = None) -> CaptureReport:
    """Check the capture in ``data`` (nerfstudio-data or Blender folder); one-line InputError on bad input."""
    cameras, paths, root = load_capture(Path(data))
    names = [frame_name(p, root) for p in paths]
    return check_frames(names, paths, cameras, Path(data), config)


def warn_at_training_start(image_paths: Sequence[Path], cameras, data: Path) -> None:
    """Print :func:`summary_line` for training frames (images ``image_paths``, nerfstudio ``cameras``
    of the capture in ``data``); never raises: a failure is one log line."""
    from nerfstudio.utils.rich_utils import CONSOLE

    try:
        data = Path(data)
        root = data if data.is_dir() else data.parent
        names = [frame_name(Path(p), root) for p in image_paths]
        report = check_frames(names, [Path(p) for p in image_paths], cameras, data)
    except Exception as err:  # noqa: BLE001 - a check must never stop training
        message = f"check-capture skipped: {err.__class__.__name__}: {err}".splitlines()[0]
        CONSOLE.print(message, style="yellow", markup=False, highlight=False, soft_wrap=True)
        return
    colour = "bold red" if report.severe else ("yellow" if report.findings else "green")
    CONSOLE.print(summary_line(report), style=colour, markup=False, highlight=False, soft_wrap=True)


def summary_line(report: CaptureReport, limit: int = 3) -> str:
    """One line: how many findings (how many severe) and the first ``limit`` of them."""
    if not report.findings:
        return f"check-capture: no problems found in {len(report.frames)} frames ({report.cameras.layout} capture)"
    severe = sum(f.severe for f in report.findings)
    ordered = sorted(report.findings, key=lambda f: not f.severe)
    shown = "; ".join(f"{f.frame or 'capture'}: {f.check}" for f in ordered[:limit])
    more = f"; +{len(ordered) - limit} more" if len(ordered) > limit else ""
    return (
        f"check-capture: {len(report.findings)} finding(s), {severe} severe, in {len(report.frames)} frames "
        f"({shown}{more}); details: mobiler2l-check-capture {report.data}"
    )
