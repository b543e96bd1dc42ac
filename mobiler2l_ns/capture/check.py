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
one finding is severe, 1 for bad input (no such folder, no transforms file, ...) and usage errors.

The checks live in :mod:`~mobiler2l_ns.capture.checks` (figures from
:mod:`~mobiler2l_ns.capture.images` and :mod:`~mobiler2l_ns.capture.cameras`), the API in
:mod:`~mobiler2l_ns.capture.quality` (:func:`~mobiler2l_ns.capture.quality.check_capture`), the
presentation in :mod:`~mobiler2l_ns.capture.report`; this module is the command line.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Optional, Sequence

import tyro

from mobiler2l_ns.utils.cli import run_cli
from mobiler2l_ns.utils.errors import InputError

PROG = "mobiler2l-check-capture"
DESCRIPTION = (
    "Flag frames of a capture with inconsistent lighting, blur, odd radius, missing views or little overlap. "
    "Exit status: 0 clean or warnings only, 2 severe findings, 1 bad input."
)


@dataclass
class CheckCapture:
    """``mobiler2l-check-capture DATA [--plot cameras.png] [--json report.json]``."""

    data: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="DATA")]]
    """nerfstudio-data folder (transforms.json) or Blender folder."""
    plot: Optional[Path] = None
    """Write a PNG of the cameras (flagged ones in red)."""
    json: Optional[Path] = None
    """Write the report as JSON."""

    def main(self) -> int:
        """Check, print, write the plot / JSON asked for; the exit status (0 clean / warnings, 2 severe)."""
        import warnings

        warnings.filterwarnings("ignore", category=FutureWarning)  # torch.jit deprecation noise from imports
        from mobiler2l_ns.capture.quality import check_capture
        from mobiler2l_ns.capture.report import plot_report, print_report, write_report_json

        for flag, path in (("--plot", self.plot), ("--json", self.json)):
            if path is not None and not Path(path).parent.resolve().is_dir():
                raise InputError(f"{flag} {path}: the folder {Path(path).parent} does not exist")
        report = check_capture(self.data)
        print_report(report)
        if self.plot is not None:
            plot_report(report, self.plot)
            print(f"wrote {self.plot}")
        if self.json is not None:
            write_report_json(report, self.json)
            print(f"wrote {self.json}")
        return report.exit_code


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; returns the exit status (0 clean / warnings, 2 severe; bad input and usage errors exit 1)."""
    return run_cli(CheckCapture, argv, prog=PROG, description=DESCRIPTION, usage_exit_status=1)


def entrypoint() -> None:
    """Console script ``mobiler2l-check-capture``."""
    raise SystemExit(main())


if __name__ == "__main__":
    entrypoint()
