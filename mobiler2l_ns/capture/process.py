"""Photos or a video -> a ``nerfstudio-data`` folder, with nerfstudio's ``ns-process-data`` (COLMAP, ffmpeg).

::

    mobiler2l-process SRC OUT [--num-frames-target 150] [--matching auto] [ns-process-data flags ...]

(the ns-process-data flags come after ``SRC OUT``; they are passed on unchanged).

``SRC`` is a folder of images or a video file. ``ns-process-data images|video`` runs with COLMAP's
CPU SIFT (``--no-gpu``; pass ``--gpu`` among the extra flags for a CUDA build of COLMAP) into a
hidden sibling folder ``.OUT.partial-XXXX`` that is renamed to ``OUT`` only when COLMAP registered
enough images, so ``OUT`` is either complete or absent (the partial folder is removed on any
failure and on Ctrl-C). ``OUT`` then holds ``transforms.json``, ``images/`` (plus downscaled
copies), ``sparse_pc.ply``, ``colmap/`` and ``ns-process-data.log``.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import struct
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, List, Literal, Optional, Sequence, Tuple, get_args

import tyro

from mobiler2l_ns.capture.checks import check_static_background
from mobiler2l_ns.capture.colmap_pairs import database_path, no_parallax_pairs, pair_configurations
from mobiler2l_ns.capture.findings import CaptureCheckConfig
from mobiler2l_ns.capture.photos import MAX_PHOTO_SIZE, largest_side, shrink_photos
from mobiler2l_ns.utils.cli import parse_cli
from mobiler2l_ns.utils.data_checks import PHOTO_SUFFIXES, list_photos
from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.utils.processes import stop_group

Matching = Literal["auto", "exhaustive", "sequential", "vocab_tree"]
MATCHING_METHODS = get_args(Matching)
EXHAUSTIVE_MAX_IMAGES = 100
"""``auto`` matching: every pair of a photo folder up to this many photos, neighbours in name order above
(COLMAP's sequential matcher); a video's frames are always matched sequentially."""

MIN_PHOTO_SIZE = 100
"""Smallest ``max_photo_size`` accepted (COLMAP needs some pixels)."""

MIN_REGISTERED_IMAGES = 10
"""COLMAP must register at least this many images ..."""
MIN_REGISTERED_FRACTION = 0.5
"""... and at least this fraction of the input images."""

LOG_NAME = "ns-process-data.log"
INSTALL_HINT = "run `apt-get install colmap ffmpeg` (as root; scripts/install.sh does it)"


def check_tools() -> None:
    """Raise InputError unless colmap, ffmpeg and ffprobe are on PATH."""
    missing = [tool for tool in ("colmap", "ffmpeg", "ffprobe") if shutil.which(tool) is None]
    if missing:
        raise InputError(f"{' and '.join(missing)} not installed: {INSTALL_HINT}")


def video_frame_count(video: Path) -> int:
    """Frames of the first video stream of ``video`` (ffprobe); InputError when ffmpeg cannot read it."""
    cmd = ["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_packets"]
    cmd += ["-show_entries", "stream=nb_read_packets", "-of", "csv=p=0", str(video)]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
    digits = proc.stdout.strip().split(",")[0].strip()
    if proc.returncode != 0 or not digits.isdigit() or int(digits) == 0:
        reason = (proc.stderr.strip().splitlines() or ["no video stream"])[-1]
        raise InputError(f"{video}: ffmpeg cannot read this file as a video ({reason})")
    return int(digits)


def minimum_registered(num_inputs: int) -> int:
    """Images COLMAP must register out of ``num_inputs``: ``max(10, ceil(0.5 * num_inputs))``, at most all."""
    return min(num_inputs, max(MIN_REGISTERED_IMAGES, math.ceil(MIN_REGISTERED_FRACTION * num_inputs)))


def choose_matching(kind: str, num_inputs: int, matching: str = "auto") -> str:
    """COLMAP's matcher for ``num_inputs`` images of ``kind`` (``images`` or ``video``): ``matching``
    unless it is ``auto``, then ``sequential`` for a video or a photo folder of more than
    :data:`EXHAUSTIVE_MAX_IMAGES` (pairs grow with the square of the count), else ``exhaustive``."""
    if matching != "auto":
        return matching
    return "sequential" if kind == "video" or num_inputs > EXHAUSTIVE_MAX_IMAGES else "exhaustive"


def check_vocab_tree() -> None:
    """InputError unless COLMAP's vocabulary tree is where ns-process-data looks (it would download it)."""
    import appdirs  # nerfstudio's dependency; the folder is nerfstudio's choice

    tree = Path(appdirs.user_data_dir("nerfstudio")) / "vocab_tree.fbow"
    if not tree.is_file():
        raise InputError(
            f"--matching vocab_tree: needs COLMAP's vocabulary tree at {tree} (ns-process-data would download "
            "it; this tool works offline): put the file there, or use --matching auto, exhaustive or sequential"
        )


def ns_process_data_command(
    kind: str, src: Path, out: Path, num_frames_target: int, matching: str, extra_args: Sequence[str]
) -> List[str]:
    """The ``ns-process-data`` command line (run with this interpreter, so this environment's nerfstudio)."""
    cmd = [sys.executable, "-m", "nerfstudio.scripts.process_data", kind, "--data", str(src), "--output-dir", str(out)]
    cmd += ["--matching-method", matching, "--sfm-tool", "colmap", "--no-gpu"]
    if kind == "video":
        cmd += ["--num-frames-target", str(num_frames_target)]
    return cmd + [str(arg) for arg in extra_args]


def run_logged(cmd: Sequence[str], log_path: Path) -> int:
    """Run ``cmd`` in its own process group, its output shown and copied to ``log_path``; its exit status.

    On any exception (Ctrl-C included) the whole group (ns-process-data and the COLMAP / ffmpeg it
    started) is terminated before the exception propagates.
    """
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if not env.get("DISPLAY"):
        env.setdefault("QT_QPA_PLATFORM", "offscreen")  # COLMAP is a Qt program
    with open(log_path, "w", encoding="utf-8") as log:
        proc = subprocess.Popen(
            list(cmd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True, text=True
        )
        try:
            assert proc.stdout is not None
            for line in proc.stdout:
                log.write(line)
                sys.stdout.write(line)
            return proc.wait()
        except BaseException:
            stop_group(proc)
            raise


def registered_frames(out: Path) -> int:
    """Frames in ``out/transforms.json`` (0 when absent or unreadable)."""
    try:
        meta = json.loads((out / "transforms.json").read_text(encoding="utf-8"))
        return len(meta.get("frames", []))
    except (OSError, ValueError, AttributeError):
        return 0


def colmap_models(out: Path) -> List[Tuple[int, Path]]:
    """``(registered images, folder)`` of each model COLMAP's mapper wrote under ``out/colmap/sparse``,
    the largest first (the mapper starts a new model when it cannot extend the current one)."""
    from nerfstudio.data.utils.colmap_parsing_utils import read_images_binary

    models = []
    for folder in sorted((out / "colmap" / "sparse").glob("*")):
        try:
            models.append((len(read_images_binary(folder / "images.bin")), folder))
        except (OSError, ValueError, struct.error):
            continue  # a folder without a readable model
    return sorted(models, key=lambda model: -model[0])


def use_largest_model(out: Path) -> Optional[str]:
    """When COLMAP's mapper split the capture and a later model registered more images than the one
    ns-process-data converted (``sparse/0``), rewrite ``out/transforms.json`` and ``sparse_pc.ply`` from the
    largest (nerfstudio's ``colmap_to_json``). Returns what was done, for the log, or None."""
    from nerfstudio.process_data.colmap_utils import colmap_to_json

    models = colmap_models(out)
    registered = registered_frames(out)
    if not models or models[0][0] <= registered:
        return None
    count, folder = models[0]
    colmap_to_json(recon_dir=folder, output_dir=out)
    sizes = ", ".join(f"{model.name}: {n}" for n, model in sorted(models, key=lambda model: model[1].name))
    return (
        f"COLMAP's mapper split the capture into {len(models)} models (images registered: {sizes}); "
        f"ns-process-data converted sparse/0 ({registered} images), using the largest, sparse/{folder.name} ({count})"
    )


def static_background_hint(out: Path) -> Optional[str]:
    """Why COLMAP failed when most photo pairs it matched lack parallax (a background that stood still: a
    turntable capture), from its database in ``out``; None otherwise."""
    configurations = pair_configurations(database_path(out))
    if not check_static_background(configurations, CaptureCheckConfig())[0]:
        return None
    flat, matched = no_parallax_pairs(configurations)
    return (
        f"{flat} of the {matched} photo pairs it matched have no parallax: the background stayed put while the "
        "view changed (a turntable capture?); walk around a static object instead"
    )


def last_error_line(log_path: Path) -> str:
    """The last non-empty line of the log that names an error (else the last line), stripped."""
    try:
        lines = [line.strip() for line in log_path.read_text(encoding="utf-8", errors="replace").splitlines()]
    except OSError:
        return ""
    lines = [line for line in lines if line and not set(line) <= set("─━-=")]
    errors = [line for line in lines if "error" in line.lower() or "could not" in line.lower()]
    return (errors or lines or [""])[-1][:300]


class _TooFewRegistered(Exception):
    def __init__(self, message: str, registered: int) -> None:
        super().__init__(message)
        self.message, self.registered = message, registered


def _process_once(
    src: Path,
    dst: Path,
    kind: str,
    num_inputs: int,
    num_frames_target: int,
    matching: str,
    extra_args: Sequence[str],
) -> Tuple[int, int]:
    """One ns-process-data run into a fresh partial folder renamed to ``dst``: (registered, inputs)."""
    partial = Path(tempfile.mkdtemp(prefix=f".{dst.name}.partial-", dir=dst.parent))
    try:
        os.chmod(partial, 0o755)  # mkdtemp makes it private; the result is an ordinary folder
        log_path = partial / LOG_NAME
        cmd = ns_process_data_command(kind, src, partial, num_frames_target, matching, extra_args)
        print(f"mobiler2l: ns-process-data {kind} {src} (COLMAP, {matching} matching) -> {dst}", flush=True)
        status = run_logged(cmd, log_path)
        if not (partial / "colmap" / "database.db").is_file():  # failed before COLMAP (its errors may exit 0)
            if kind == "video" and not list_photos(partial / "images"):
                raise InputError(f"{src}: ffmpeg extracted no frames ({last_error_line(log_path)})")
            raise InputError(f"{src}: ns-process-data failed (exit status {status}): {last_error_line(log_path)}")
        if kind == "video":
            num_inputs = len(list_photos(partial / "images"))
        switched = use_largest_model(partial)
        if switched:
            print(f"mobiler2l: {switched}", flush=True)
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"mobiler2l: {switched}\n")
        registered = registered_frames(partial)
        needed = minimum_registered(num_inputs)
        if registered < needed:
            raise _TooFewRegistered(
                f"{src}: COLMAP registered {registered} of {num_inputs} images (at least {needed} needed): "
                + (
                    static_background_hint(partial)
                    or "take more overlapping photos (small steps between shots, about 60-80% shared view) "
                    "of a textured, static scene, sharp and evenly lit"
                )
                + ("" if matching == "exhaustive" else "; or try exhaustive matching"),
                registered,
            )
        if status != 0:
            raise InputError(f"{src}: ns-process-data failed (exit status {status}): {last_error_line(log_path)}")
        if dst.is_dir():
            dst.rmdir()  # an empty folder given as the destination
        os.rename(partial, dst)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return registered, num_inputs


def _shrunk_photos(src: Path, dst: Path, max_photo_size: int) -> Optional[Path]:
    """A hidden folder beside ``dst`` with ``src``'s photos shrunk to ``max_photo_size`` (None: none is larger,
    the limit is 0, or Pillow cannot read one of them, e.g. a camera raw: COLMAP gets the originals)."""
    photos = list_photos(src)
    largest = largest_side(photos)
    if max_photo_size == 0 or largest is None or largest <= max_photo_size:
        return None
    folder = Path(tempfile.mkdtemp(prefix=f".{dst.name}.photos-", dir=dst.parent))
    try:
        count = shrink_photos(photos, src, folder, max_photo_size)
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    print(
        f"mobiler2l: {count} of {len(photos)} photos shrunk to {max_photo_size} px on their longer side "
        f"(largest {largest} px) for COLMAP and training (--max-photo-size 0 keeps them)",
        flush=True,
    )
    return folder


def process_capture(
    src: Path,
    dst: Path,
    *,
    num_frames_target: int = 150,
    matching: str = "auto",
    extra_args: Sequence[str] = (),
    attempts: int = 2,
    max_photo_size: int = MAX_PHOTO_SIZE,
) -> Path:
    """Turn photos (a folder) or a video (a file) ``src`` into the nerfstudio-data folder ``dst``.

    Runs ``ns-process-data images|video`` (COLMAP with CPU SIFT, ``matching`` in ``auto``
    (:func:`choose_matching`), ``exhaustive``, ``sequential``, ``vocab_tree``; ``num_frames_target`` frames extracted from a video, a folder's
    images are all used; ``extra_args`` appended to its command line) into
    ``dst.parent/.{dst.name}.partial-XXXX``, renamed to ``dst`` on success. Returns ``dst`` (with
    ``transforms.json``). Photos whose longer side exceeds ``max_photo_size`` (0: no limit) are
    shrunk to it first (:mod:`~mobiler2l_ns.capture.photos`, into a hidden sibling folder removed at the
    end), so COLMAP and the dataset see them at that size. Raises a one-line :class:`InputError` for a folder without images, an
    unreadable video, missing colmap / ffmpeg, an existing non-empty ``dst`` and too few images
    registered by COLMAP; nothing is left behind then, nor on KeyboardInterrupt. COLMAP's
    incremental mapper is randomised (threads, RANSAC): when it registers some but too few images,
    the whole run is repeated, up to ``attempts`` runs in all.
    """
    src, dst = Path(src), Path(dst)
    if matching not in MATCHING_METHODS:
        raise InputError(f"matching {matching!r}: expected one of {', '.join(MATCHING_METHODS)}")
    if num_frames_target < 1:
        raise InputError(f"num_frames_target {num_frames_target}: expected a positive number of frames")
    if max_photo_size != 0 and max_photo_size < MIN_PHOTO_SIZE:
        raise InputError(
            f"max_photo_size {max_photo_size}: expected 0 (keep the photos' size) or >= {MIN_PHOTO_SIZE} px"
        )
    if not src.exists():
        raise InputError(f"{src}: no such file or folder")
    kind = "images" if src.is_dir() else "video"
    num_inputs = 0
    if kind == "images":
        num_inputs = len(list_photos(src))
        if num_inputs == 0:
            raise InputError(f"{src}: no images found (expected files ending in {', '.join(PHOTO_SUFFIXES)})")
    if dst.exists() and (not dst.is_dir() or any(dst.iterdir())):
        raise InputError(f"{dst}: already exists; remove it or choose another output folder")
    check_tools()
    if kind == "video":
        video_frame_count(src)
    matching = choose_matching(kind, num_inputs, matching)
    if matching == "vocab_tree":
        check_vocab_tree()

    dst.parent.mkdir(parents=True, exist_ok=True)
    shrunk = _shrunk_photos(src, dst, max_photo_size) if kind == "images" else None
    try:
        for attempt in range(1, attempts + 1):
            try:
                registered, num_inputs = _process_once(
                    shrunk or src, dst, kind, num_inputs, num_frames_target, matching, extra_args
                )
                break
            except _TooFewRegistered as err:
                if err.registered == 0 or attempt == attempts:
                    raise InputError(err.message) from None
                print(
                    f"mobiler2l: {err.message.split(' (')[0]}; COLMAP's mapper is randomised: running it again",
                    flush=True,
                )
    finally:
        if shrunk is not None:
            shutil.rmtree(shrunk, ignore_errors=True)
    print(f"mobiler2l: {registered} of {num_inputs} images registered -> {dst / 'transforms.json'}", flush=True)
    return dst


PROG = "mobiler2l-process"
DESCRIPTION = (
    "Photos (a folder) or a video -> nerfstudio-data folder (ns-process-data with COLMAP on CPU). "
    "Unknown flags (after SRC OUT) are passed on to ns-process-data."
)


@dataclass
class Process:
    """``mobiler2l-process SRC OUT [--num-frames-target N] [--matching M] [ns-process-data flags ...]``."""

    src: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="SRC")]]
    """Folder of images, or a video file."""
    out: tyro.conf.Positional[Annotated[Path, tyro.conf.arg(metavar="OUT")]]
    """Output folder (must not exist yet, or be empty)."""
    num_frames_target: int = 150
    """Frames to extract from a video."""
    matching: Matching = "auto"
    """COLMAP feature matching (auto: exhaustive for up to 100 photos, else sequential; sequential for a video)."""
    max_photo_size: int = MAX_PHOTO_SIZE
    """Photos larger than this (px, longer side) are shrunk to it before COLMAP; 0 keeps their size."""

    def main(self, extra_args: Sequence[str] = ()) -> int:
        """Run :func:`process_capture`; ``extra_args`` go to ns-process-data."""
        process_capture(
            self.src,
            self.out,
            num_frames_target=self.num_frames_target,
            matching=self.matching,
            extra_args=extra_args,
            max_photo_size=self.max_photo_size,
        )
        return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """CLI entry point; usage errors exit 1, as bad input does."""
    command, extra = parse_cli(Process, argv, PROG, DESCRIPTION, usage_exit_status=1, return_unknown_args=True)
    return command.main(extra)


def entrypoint() -> None:
    """Console script ``mobiler2l-process``."""
    raise SystemExit(main())


if __name__ == "__main__":
    entrypoint()
