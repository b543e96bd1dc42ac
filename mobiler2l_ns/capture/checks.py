"""The capture checks: each turns per-frame figures into :class:`~mobiler2l_ns.capture.findings.Finding` s.

A per-frame value is flagged when it is a robust outlier (``|x - median| > z * 1.4826 * MAD``,
``CaptureCheckConfig.outlier_z``) *and* beyond the check's absolute warning limit; it is severe
beyond the severe limit.
"""

from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from mobiler2l_ns.capture.cameras import (
    CameraLayout,
    FloatArray,
    azimuths_elevations,
    largest_azimuth_gap,
    nearest_neighbour,
)
from mobiler2l_ns.capture.colmap_pairs import WATERMARK, no_parallax_pairs
from mobiler2l_ns.capture.findings import CaptureCheckConfig, Finding

MAD_TO_SIGMA = 1.4826
"""Median absolute deviation -> standard deviation of a normal distribution."""


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


def check_intrinsics(cameras, cfg: CaptureCheckConfig) -> Tuple[List[Finding], Dict[str, float]]:
    """The lens COLMAP calibrated (nerfstudio ``cameras``, median over frames): findings for non-square
    pixels, an off-centre principal point and strong tangential distortion, which real cameras do not
    have; they mean a failed self-calibration, whose poses are wrong too (camera ``""``: the whole capture)."""
    fx = float(cameras.fx.median())
    fy = float(cameras.fy.median())
    cx_share = float((cameras.cx / cameras.width).median()) - 0.5
    cy_share = float((cameras.cy / cameras.height).median()) - 0.5
    tangential = 0.0
    if cameras.distortion_params is not None:  # nerfstudio's [k1, k2, k3, k4, p1, p2]
        tangential = float(cameras.distortion_params[..., 4:6].abs().median(dim=0).values.max())
    aspect = abs(fx / fy - 1.0)
    offset = max(abs(cx_share), abs(cy_share))
    stats = {"fx": fx, "fy": fy, "principal_point_offset": offset, "tangential_distortion": tangential}
    checks = [
        ("focal-aspect", aspect, cfg.focal_aspect_warn, cfg.focal_aspect_severe,
         f"focal lengths fx {fx:.0f} and fy {fy:.0f} px differ by {100 * aspect:.0f} %"),
        ("principal-point", offset, cfg.principal_point_warn, cfg.principal_point_severe,
         f"principal point {100 * offset:.0f} % of the image size off its centre"),
        ("tangential-distortion", tangential, cfg.tangential_warn, cfg.tangential_severe,
         f"tangential distortion {tangential:.3f}"),
    ]  # fmt: skip
    findings = [
        Finding("", name, value, warn, bool(value >= severe),
                f"implausible lens from COLMAP: {what} (limit {warn:g}); its poses are probably wrong too")
        for name, value, warn, severe, what in checks
        if value >= warn
    ]  # fmt: skip
    return findings, stats


def check_static_background(
    configurations: Dict[int, int], cfg: CaptureCheckConfig
) -> Tuple[List[Finding], Dict[str, float]]:
    """A capture-wide finding when most photo pairs COLMAP matched have no parallax (``configurations``:
    verified pairs per two-view configuration, :func:`~mobiler2l_ns.capture.colmap_pairs.pair_configurations`;
    ``{}``: no database, no finding)."""
    flat, matched = no_parallax_pairs(configurations)
    if matched == 0:
        return [], {}
    share = flat / matched
    stats = {"no_parallax_pair_share": share, "watermark_pair_share": configurations.get(WATERMARK, 0) / matched}
    if share < cfg.static_background_warn:
        return [], stats
    detail = (
        f"COLMAP matched {flat} of {matched} photo pairs ({100 * share:.0f} %) without parallax "
        f"({configurations.get(WATERMARK, 0)} by one 2D shift of the image borders; limit "
        f"{100 * cfg.static_background_warn:.0f} %): the background stayed put as the view changed, as on a "
        "turntable (object turned, camera still); poses and radiance field need a static scene and a moving camera"
    )
    severe = bool(share >= cfg.static_background_severe)
    return [Finding("", "static-background", share, cfg.static_background_warn, severe, detail)], stats
