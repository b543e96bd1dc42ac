"""What a capture check produces: its thresholds (:class:`CaptureCheckConfig`), one problem
(:class:`Finding`) and the whole result (:class:`CaptureReport`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List

from mobiler2l_ns.capture.cameras import CameraLayout


@dataclass
class CaptureCheckConfig:
    """Thresholds of the capture checks (see :mod:`mobiler2l_ns.capture.checks` for how they combine)."""

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
    focal_aspect_warn: float = 0.03
    """Lens: flag fx and fy that differ by this fraction or more (real sensors have square pixels)."""
    focal_aspect_severe: float = 0.15
    """Lens: severe from this fraction."""
    principal_point_warn: float = 0.05
    """Lens: flag a principal point this far from the image centre (fraction of the width / height)."""
    principal_point_severe: float = 0.12
    """Lens: severe from this fraction."""
    tangential_warn: float = 0.01
    """Lens: flag tangential distortion (|p1|, |p2|) from this value (real lenses: about 0.001)."""
    tangential_severe: float = 0.05
    """Lens: severe from this value."""
    static_background_warn: float = 0.5
    """Matches: flag a capture when this share of the photo pairs COLMAP matched have no parallax (panoramic,
    planar-or-panoramic, watermark): a background that stood still while the object turned."""
    static_background_severe: float = 0.75
    """Matches: severe from this share."""
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
class CaptureReport:
    """Result of :func:`~mobiler2l_ns.capture.quality.check_capture`: findings plus the statistics they were drawn from."""

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
