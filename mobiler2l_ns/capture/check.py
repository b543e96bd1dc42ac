"""``mobiler2l-check-capture``: flag the frames of a capture that will hurt a reconstruction.

::

    mobiler2l-check-capture DATA [--plot cameras.png] [--json report.json]

``DATA`` is a ``nerfstudio-data`` folder (``transforms.json``, e.g. ``ns-process-data`` output) or
a Blender folder (``transforms_train.json``); nerfstudio's own dataparser reads the cameras and
image paths. Checks, each naming the frames it flags:

* ``brightness``: a frame's mean brightness (in EV, ``log2`` of its mean over the median frame's)
  is an outlier: inconsistent lighting or exposure;
* ``sharpness``: its variance of the Laplacian, divided by the variance of the image (so that
  exposure does not count as blur), is a low-side outlier: motion blur or missed focus;
* ``radius`` (360 captures): its distance to the scene centre (the least-squares point nearest to
  all optical axes) is far from the median distance; the elevation spread is reported;
* ``azimuth-gap`` (360 captures): the largest gap between neighbouring camera azimuths about the
  centre (names the two frames bordering it): views missing on that side;
* ``overlap``: the angle between a frame's viewing direction and its nearest neighbour's (360), or
  the distance to the nearest neighbouring camera over the median such distance (forward-facing),
  is an outlier: too little overlap with the other frames;
* ``elevation-range`` (360, mild) and ``few-frames``.

A per-frame value is flagged when it is a robust outlier (``|x - median| > z * 1.4826 * MAD``,
``CaptureCheckConfig.outlier_z``) *and* beyond the check's absolute warning limit; it is severe
beyond the severe limit. Exit status: 0 when nothing or only warnings were found, 2 when at least
one finding is severe, 1 for bad input (no such folder, no transforms file, ...).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Literal, Optional, Sequence, Tuple

import numpy as np
from numpy.typing import NDArray
from PIL import Image

from mobiler2l_ns.utils.errors import BadInputArgumentParser, InputError

FloatArray = NDArray[np.float64]
Layout = Literal["360", "forward"]

MAD_TO_SIGMA = 1.4826
"""Median absolute deviation -> standard deviation of a normal distribution."""


@dataclass
class CaptureCheckConfig:
    """Thresholds of the capture checks (see the module docstring for how they combine)."""

    outlier_z: float = 3.5
    """Robust z-score (deviation from the median over 1.4826 MAD) beyond which a value is an outlier."""
    brightness_warn_ev: float = 0.5
    """Brightness: flag a frame this many EV (stops) or more from the median frame."""
    brightness_severe_ev: float = 1.5
    """Brightness: severe from this many EV."""
    sharpness_warn_ratio: float = 0.5
    """Sharpness: flag a frame whose normalised variance of the Laplacian is below this fraction of the median."""
    sharpness_severe_ratio: float = 0.2
    """Sharpness: severe below this fraction of the median."""
    radius_warn_ratio: float = 1.3
    """Radius (360): flag a camera this many times farther from (or closer to) the centre than the median."""
    radius_severe_ratio: float = 2.5
    """Radius (360): severe from this ratio."""
    azimuth_gap_warn_deg: float = 45.0
    """Azimuth (360): flag the largest gap between neighbouring cameras from this many degrees
    (or 2.5 times the even spacing 360 / N, when larger)."""
    azimuth_gap_severe_deg: float = 90.0
    """Azimuth (360): severe from this many degrees."""
    overlap_warn_factor: float = 3.0
    """Overlap: flag a frame whose nearest-neighbour angle (distance) is this many times the median."""
    overlap_severe_factor: float = 6.0
    """Overlap: severe from this many times the median."""
    elevation_range_warn_deg: float = 10.0
    """Elevation (360, mild): warn when all cameras lie within this elevation band (one ring)."""
    few_frames_warn: int = 20
    """Warn below this many frames."""
    few_frames_severe: int = 8
    """Severe below this many frames (the per-frame statistics need at least 5)."""
    analysis_size: int = 512
    """Images are analysed downscaled to this long side (pixels), never upscaled."""


@dataclass(frozen=True)
class Finding:
    """One problem: the frame (or ``"A | B"`` for a gap between two frames, ``""`` for the whole capture)."""

    frame: str
    check: str
    value: float
    threshold: float
    severe: bool
    detail: str = ""
    """Human-readable value and limit, with units."""


@dataclass
class CameraLayout:
    """Camera geometry of a capture in the dataparser's world (for checks and the plot)."""

    centres: FloatArray
    """[N, 3] camera centres."""
    directions: FloatArray
    """[N, 3] unit viewing directions (the camera's -Z)."""
    centre: FloatArray
    """[3] scene centre: least-squares point nearest to the optical axes."""
    up: FloatArray
    """[3] unit up direction (mean camera up)."""
    layout: Layout

    def basis(self) -> Tuple[FloatArray, FloatArray]:
        """Two unit vectors ``e1, e2`` completing ``up`` to a right-handed frame ``(e1, e2, up)``."""
        helper = np.array([1.0, 0.0, 0.0]) if abs(self.up[0]) < 0.9 else np.array([0.0, 1.0, 0.0])
        e1 = np.cross(helper, self.up)
        e1 /= np.linalg.norm(e1)
        return e1, np.cross(self.up, e1)


@dataclass
class CaptureReport:
    """Result of :func:`check_capture`: findings plus the statistics they were drawn from."""

    data: Path
    frames: List[str]
    """Frame names (image paths relative to the data folder), in dataparser order."""
    cameras: CameraLayout
    findings: List[Finding] = field(default_factory=list)
    stats: Dict[str, float] = field(default_factory=dict)
    """Capture-wide figures: median brightness, radius spread, elevation range, largest azimuth gap, ..."""

    @property
    def severe(self) -> bool:
        return any(f.severe for f in self.findings)

    @property
    def exit_code(self) -> int:
        """0: nothing or only warnings; 2: at least one severe finding."""
        return 2 if self.severe else 0

    def flagged_frames(self) -> List[str]:
        """Names of the frames some finding names (gap findings name two)."""
        names = {name.strip() for f in self.findings for name in f.frame.split(" | ") if name.strip()}
        return [name for name in self.frames if name in names]


# --------------------------------------------------------------------------- loading


def load_capture(data: Path) -> Tuple[object, List[Path], Path]:
    """Cameras (nerfstudio ``Cameras`` ``[N]``), image paths and the folder frame names are relative to.

    Reads a Blender folder's train split or a nerfstudio-data capture's every frame with nerfstudio's
    dataparsers, after :func:`~mobiler2l_ns.utils.data_checks.check_dataset` (one-line errors).
    """
    from nerfstudio.data.dataparsers.blender_dataparser import BlenderDataParserConfig
    from nerfstudio.data.dataparsers.nerfstudio_dataparser import NerfstudioDataParserConfig
    from nerfstudio.utils.rich_utils import CONSOLE

    from mobiler2l_ns.utils.data_checks import check_dataset

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


def camera_layout(cameras) -> CameraLayout:
    """Centres, viewing directions, scene centre, up and layout (360 / forward) of nerfstudio cameras."""
    from mobiler2l_ns.distill.poses import TrainingRig, detect_scene_type, focus_point

    rig = TrainingRig.from_cameras(cameras)
    return CameraLayout(
        centres=rig.centres.copy(),
        directions=rig.view_directions,
        centre=focus_point(rig),
        up=rig.up,
        layout=detect_scene_type(rig),
    )


# --------------------------------------------------------------------------- image statistics


def load_grey(path: Path, size: int) -> Tuple[FloatArray, Optional[FloatArray]]:
    """Luma ``[H, W]`` in [0, 1] (Rec. 601 weights on the sRGB values) and alpha ``[H, W]`` (None when
    opaque) of an image downscaled to at most ``size`` pixels on its long side."""
    with Image.open(path) as img:
        if img.format == "JPEG":
            img.draft("RGB", (size, size))  # decode at a reduced scale: fast for large photos
        img.load()
        has_alpha = img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info)
        img = img.convert("RGBA" if has_alpha else "RGB")
        if max(img.size) > size:
            scale = size / max(img.size)
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BOX)
        pixels = np.asarray(img, dtype=np.float64) / 255.0
    grey = pixels[..., 0] * 0.299 + pixels[..., 1] * 0.587 + pixels[..., 2] * 0.114
    return grey, (pixels[..., 3] if has_alpha else None)


def laplacian(grey: FloatArray) -> FloatArray:
    """4-neighbour Laplacian of ``[H, W]`` at interior pixels, ``[H-2, W-2]``."""
    return grey[:-2, 1:-1] + grey[2:, 1:-1] + grey[1:-1, :-2] + grey[1:-1, 2:] - 4.0 * grey[1:-1, 1:-1]


def image_statistics(path: Path, size: int) -> Tuple[float, float]:
    """``(brightness, sharpness)`` of one image.

    Brightness: mean luma; of an image with alpha, the alpha-weighted mean (the object, not the
    transparent background). Sharpness: variance of the Laplacian over the variance of the luma, at
    interior pixels (with alpha: those with alpha > 0.5, on the image composited on white as the
    Blender presets train): contrast-independent, so a darker frame is not taken for a blurrier one.
    """
    grey, alpha = load_grey(path, size)
    if alpha is not None:
        brightness = float((grey * alpha).sum() / alpha.sum()) if alpha.sum() > 0 else 1.0
        grey = grey * alpha + (1.0 - alpha)
        inside = alpha[1:-1, 1:-1] > 0.5
    else:
        brightness = float(grey.mean())
        inside = np.ones((grey.shape[0] - 2, grey.shape[1] - 2), dtype=bool)
    if inside.sum() < 16:
        return brightness, float("nan")
    lap = laplacian(grey)[inside]
    values = grey[1:-1, 1:-1][inside]
    return brightness, float(lap.var() / max(values.var(), 1e-8))


# --------------------------------------------------------------------------- checks


def robust_sigma(values: FloatArray) -> Tuple[float, float]:
    """Median and MAD-based standard deviation (``1.4826 * MAD``) of the finite ``values``."""
    finite = values[np.isfinite(values)]
    median = float(np.median(finite))
    return median, MAD_TO_SIGMA * float(np.median(np.abs(finite - median)))


def check_brightness(names: Sequence[str], brightness: FloatArray, cfg: CaptureCheckConfig) -> List[Finding]:
    """Frames whose brightness in EV from the median frame is an outlier beyond ``brightness_warn_ev``."""
    ev = np.log2(np.clip(brightness, 1e-4, None))
    median, sigma = robust_sigma(ev)
    limit = max(cfg.outlier_z * sigma, cfg.brightness_warn_ev)
    findings = []
    for name, value in zip(names, ev - median):
        if abs(value) > limit:
            word = "darker" if value < 0 else "brighter"
            findings.append(
                Finding(
                    name,
                    "brightness",
                    float(value),
                    limit,
                    bool(abs(value) > max(limit, cfg.brightness_severe_ev)),
                    f"{abs(value):.2f} EV {word} than the median frame (limit {limit:.2f} EV)",
                )
            )
    return findings


def check_sharpness(names: Sequence[str], sharpness: FloatArray, cfg: CaptureCheckConfig) -> List[Finding]:
    """Frames whose sharpness over the median is a low-side outlier below ``sharpness_warn_ratio``."""
    log_s = np.log2(np.clip(sharpness, 1e-12, None))
    median, sigma = robust_sigma(log_s)
    limit = min(2.0 ** (-cfg.outlier_z * sigma), cfg.sharpness_warn_ratio)
    findings = []
    for name, value in zip(names, 2.0 ** (log_s - median)):
        if np.isfinite(value) and value < limit:
            findings.append(
                Finding(
                    name,
                    "sharpness",
                    float(value),
                    limit,
                    bool(value < min(limit, cfg.sharpness_severe_ratio)),
                    f"variance of the Laplacian {value:.2f}x the median frame's (limit {limit:.2f}x): blurry",
                )
            )
    return findings


def check_radius(names: Sequence[str], cams: CameraLayout, cfg: CaptureCheckConfig) -> List[Finding]:
    """360: cameras whose distance to the centre over the median is an outlier beyond ``radius_warn_ratio``."""
    radii = np.linalg.norm(cams.centres - cams.centre, axis=-1)
    log_r = np.log2(np.clip(radii, 1e-12, None))
    median, sigma = robust_sigma(log_r)
    limit = max(2.0 ** (cfg.outlier_z * sigma), cfg.radius_warn_ratio)
    findings = []
    for name, value in zip(names, 2.0 ** (log_r - median)):
        spread = max(value, 1.0 / value)
        if spread > limit:
            word = "farther from" if value > 1 else "closer to"
            findings.append(
                Finding(
                    name,
                    "radius",
                    float(value),
                    limit,
                    bool(spread > max(limit, cfg.radius_severe_ratio)),
                    f"{spread:.2f}x {word} the scene centre than the median camera (limit {limit:.2f}x)",
                )
            )
    return findings


def azimuths_elevations(cams: CameraLayout) -> Tuple[FloatArray, FloatArray]:
    """Azimuth in [0, 360) and elevation in degrees of every camera about the centre and up axis."""
    e1, e2 = cams.basis()
    offsets = cams.centres - cams.centre
    radii = np.linalg.norm(offsets, axis=-1).clip(min=1e-12)
    azimuth = np.degrees(np.arctan2(offsets @ e2, offsets @ e1)) % 360.0
    elevation = np.degrees(np.arcsin(np.clip((offsets @ cams.up) / radii, -1.0, 1.0)))
    return azimuth, elevation


def largest_azimuth_gap(azimuth: FloatArray) -> Tuple[float, int, int]:
    """Largest circular gap (degrees) between sorted azimuths and the indices of the frames bordering
    it (counter-clockwise: from ``i`` to ``j``)."""
    order = np.argsort(azimuth)
    sorted_az = azimuth[order]
    gaps = np.diff(np.concatenate([sorted_az, sorted_az[:1] + 360.0]))
    k = int(np.argmax(gaps))
    return float(gaps[k]), int(order[k]), int(order[(k + 1) % len(order)])


def check_azimuth_gap(names: Sequence[str], cams: CameraLayout, cfg: CaptureCheckConfig) -> List[Finding]:
    """360: the largest azimuth gap, when wider than the warning limit."""
    azimuth, _ = azimuths_elevations(cams)
    gap, i, j = largest_azimuth_gap(azimuth)
    limit = max(cfg.azimuth_gap_warn_deg, 2.5 * 360.0 / len(names))
    if gap <= limit:
        return []
    detail = (
        f"no camera for {gap:.0f} degrees of azimuth between {names[i]} ({azimuth[i]:.0f} deg) and "
        f"{names[j]} ({azimuth[j]:.0f} deg) (limit {limit:.0f}): views missing on that side"
    )
    severe = bool(gap > max(limit, cfg.azimuth_gap_severe_deg))
    return [Finding(f"{names[i]} | {names[j]}", "azimuth-gap", gap, limit, severe, detail)]


def nearest_neighbour(values: FloatArray, metric: Literal["angle", "distance"]) -> FloatArray:
    """Per row of ``values`` ``[N, 3]``: angle in degrees between unit vectors, or Euclidean distance,
    to the nearest other row, ``[N]``."""
    if metric == "angle":
        cosines = np.clip(values @ values.T, -1.0, 1.0)
        table = np.degrees(np.arccos(cosines))
    else:
        table = np.linalg.norm(values[:, None, :] - values[None, :, :], axis=-1)
    np.fill_diagonal(table, np.inf)
    return table.min(axis=1)


def check_overlap(names: Sequence[str], cams: CameraLayout, cfg: CaptureCheckConfig) -> List[Finding]:
    """Frames far from their nearest neighbour: viewing-direction angle (360) or camera distance (forward)."""
    if cams.layout == "360":
        nn = nearest_neighbour(cams.directions, "angle")
        unit, what = "deg", "viewing direction {v:.1f} deg from its nearest neighbour's"
    else:
        nn = nearest_neighbour(cams.centres, "distance")
        nn = nn / max(float(np.median(nn)), 1e-12)
        unit, what = "x", "{v:.2f}x the median distance to its nearest neighbouring camera"
    median, sigma = robust_sigma(nn)
    limit = max(median + cfg.outlier_z * sigma, cfg.overlap_warn_factor * median)
    severe_limit = max(limit, cfg.overlap_severe_factor * median)
    findings = []
    for name, value in zip(names, nn):
        if value > limit:
            detail = what.format(v=value) + f" (limit {limit:.2f} {unit}): little overlap with the other frames"
            findings.append(Finding(name, "overlap", float(value), float(limit), bool(value > severe_limit), detail))
    return findings


def check_elevation(cams: CameraLayout, cfg: CaptureCheckConfig) -> Tuple[List[Finding], Dict[str, float]]:
    """360: elevation statistics; a mild warning when every camera is in one narrow elevation band."""
    _, elevation = azimuths_elevations(cams)
    spread = float(elevation.max() - elevation.min())
    stats = {
        "elevation_min_deg": float(elevation.min()),
        "elevation_max_deg": float(elevation.max()),
        "elevation_std_deg": float(elevation.std()),
    }
    if spread >= cfg.elevation_range_warn_deg:
        return [], stats
    detail = (
        f"all cameras within {spread:.1f} degrees of elevation (one ring; limit {cfg.elevation_range_warn_deg:.0f})"
    )
    return [Finding("", "elevation-range", spread, cfg.elevation_range_warn_deg, False, detail)], stats


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


# --------------------------------------------------------------------------- summary and CLI


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


def build_parser() -> argparse.ArgumentParser:
    parser = BadInputArgumentParser(
        prog="mobiler2l-check-capture",
        description="Flag frames of a capture with inconsistent lighting, blur, odd radius, missing views or "
        "little overlap. Exit status: 0 clean or warnings only, 2 severe findings, 1 bad input.",
    )
    parser.add_argument(
        "data", type=Path, metavar="DATA", help="nerfstudio-data folder (transforms.json) or Blender folder"
    )
    parser.add_argument("--plot", type=Path, default=None, help="write a PNG of the cameras (flagged ones in red)")
    parser.add_argument("--json", type=Path, default=None, help="write the report as JSON")
    return parser


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; returns the exit status (0 clean / warnings, 2 severe; bad input exits 1)."""
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit deprecation noise from imports
    from mobiler2l_ns.capture.report import plot_report, print_report, write_report_json

    args = build_parser().parse_args(argv)
    for flag, path in (("--plot", args.plot), ("--json", args.json)):
        if path is not None and not Path(path).parent.resolve().is_dir():
            raise InputError(f"{flag} {path}: the folder {Path(path).parent} does not exist")
    report = check_capture(args.data)
    print_report(report)
    if args.plot is not None:
        plot_report(report, args.plot)
        print(f"wrote {args.plot}")
    if args.json is not None:
        write_report_json(report, args.json)
        print(f"wrote {args.json}")
    return report.exit_code


def entrypoint() -> None:
    """Console script ``mobiler2l-check-capture``."""
    raise SystemExit(main())


if __name__ == "__main__":
    entrypoint()
