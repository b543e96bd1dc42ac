"""Presenting a :class:`~mobiler2l_ns.capture.findings.CaptureReport`: rich table, camera plot, JSON."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from mobiler2l_ns.capture.cameras import azimuths_elevations, largest_azimuth_gap
from mobiler2l_ns.capture.findings import CaptureReport
from mobiler2l_ns.geometry import perpendicular_basis
from mobiler2l_ns.utils.io import write_atomic, write_json_atomic


def _number(value: float) -> Optional[float]:
    """JSON-safe float (None for NaN / inf)."""
    return float(value) if math.isfinite(value) else None


def report_dict(report: CaptureReport) -> Dict[str, Any]:
    """The report as plain JSON types: data, layout, exit code, statistics, findings, frames."""
    return {
        "data": str(report.data),
        "layout": report.cameras.layout,
        "exit_code": report.exit_code,
        "stats": {key: _number(value) for key, value in report.stats.items()},
        "findings": [
            {
                "frame": f.frame,
                "check": f.check,
                "value": _number(f.value),
                "threshold": _number(f.threshold),
                "severe": f.severe,
                "detail": f.detail,
            }
            for f in report.findings
        ],
        "frames": report.frames,
    }


def write_report_json(report: CaptureReport, path: Path) -> None:
    """Write :func:`report_dict` to ``path`` atomically (temp file in the same folder, then rename)."""
    write_json_atomic(path, report_dict(report))


def print_report(report: CaptureReport, console=None) -> None:
    """Print the findings as a table (frame, check, value, limit, severity, detail) and a verdict line."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    stats = report.stats
    figures = [f"{len(report.frames)} frames", f"{report.cameras.layout} capture"]
    if "largest_azimuth_gap_deg" in stats:
        figures.append(f"largest azimuth gap {stats['largest_azimuth_gap_deg']:.0f} deg")
        figures.append(f"elevation {stats['elevation_min_deg']:.0f}..{stats['elevation_max_deg']:.0f} deg")
        figures.append(
            f"radius {stats['radius_min_over_median']:.2f}..{stats['radius_max_over_median']:.2f}x the median"
        )
    console.print(f"[bold]{report.data}[/bold]: " + ", ".join(figures))
    if not report.findings:
        console.print("[green]no problems found[/green] (exit status 0)")
        return
    table = Table(show_lines=False)
    for column in ("frame", "check", "value", "limit", "severity", "detail"):
        table.add_column(column, overflow="fold")
    for f in sorted(report.findings, key=lambda f: (not f.severe, f.check, f.frame)):
        severity = "[bold red]severe[/bold red]" if f.severe else "[yellow]warning[/yellow]"
        table.add_row(f.frame or "(capture)", f.check, f"{f.value:.3g}", f"{f.threshold:.3g}", severity, f.detail)
    console.print(table)
    severe = sum(f.severe for f in report.findings)
    verdict = "[bold red]severe problems[/bold red]" if severe else "[yellow]warnings only[/yellow]"
    console.print(f"{verdict}: {len(report.findings)} finding(s), {severe} severe (exit status {report.exit_code})")


def plot_report(report: CaptureReport, path: Path) -> None:
    """Top view and side view of the camera centres (flagged frames in red, labelled), written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    cams = report.cameras
    e1, e2 = perpendicular_basis(cams.up)
    offsets = cams.centres - cams.centre
    x, y, z = offsets @ e1, offsets @ e2, offsets @ cams.up
    dx, dy, dz = cams.directions @ e1, cams.directions @ e2, cams.directions @ cams.up
    flagged = set(report.flagged_frames())
    red = np.array([name in flagged for name in report.frames])
    scale = 0.12 * max(float(np.abs(np.stack([x, y, z])).max()), 1e-9)

    fig = Figure(figsize=(11, 5.5), dpi=100)
    views = (("top view (along up)", x, y, dx, dy, "e1", "e2"), ("side view", x, z, dx, dz, "e1", "up"))
    for k, (title, u, v, du, dv, u_label, v_label) in enumerate(views):
        ax = fig.add_subplot(1, 2, k + 1)
        ax.quiver(
            u, v, du, dv, color=np.where(red, "tab:red", "tab:blue"), angles="xy", scale_units="xy", scale=1 / scale
        )
        ax.scatter(u[~red], v[~red], s=14, c="tab:blue", label="frames")
        ax.scatter(u[red], v[red], s=40, c="tab:red", marker="x", label="flagged")
        ax.scatter([0.0], [0.0], s=60, c="black", marker="+", label="scene centre")
        for i in np.flatnonzero(red):
            ax.annotate(
                Path(report.frames[i]).stem,
                (u[i], v[i]),
                fontsize=7,
                color="tab:red",
                xytext=(3, 3),
                textcoords="offset points",
            )
        if (
            k == 0
            and "largest_azimuth_gap_deg" in report.stats
            and any(f.check == "azimuth-gap" for f in report.findings)
        ):
            azimuth, _ = azimuths_elevations(cams)
            radius = float(np.hypot(x, y).max())
            gap, i, _ = largest_azimuth_gap(azimuth)
            angles = np.radians(azimuth[i] + np.linspace(0.0, gap, 32))
            ax.fill(
                np.concatenate([[0.0], radius * np.cos(angles)]),
                np.concatenate([[0.0], radius * np.sin(angles)]),
                color="tab:red",
                alpha=0.12,
                label=f"azimuth gap {gap:.0f} deg",
            )
        ax.set_title(title)
        ax.set_xlabel(u_label)
        ax.set_ylabel(v_label)
        ax.set_aspect("equal", adjustable="datalim")
        ax.grid(alpha=0.3)
        if k == 0:
            ax.legend(fontsize=7, loc="best")
    severe = sum(f.severe for f in report.findings)
    fig.suptitle(
        f"{report.data} - {len(report.frames)} frames, {report.cameras.layout}: "
        f"{len(report.findings)} finding(s), {severe} severe",
        fontsize=10,
    )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    write_atomic(path, buffer.getvalue())
