"""Export a trained MobileR2L student as three ONNX graphs plus ``metadata.json`` (the public API).

``ns-export mobiler2l-onnx --load-config RUN/config.yml --output-dir DIR`` (see
:mod:`mobiler2l_ns.export.ns_export_hook`) and :func:`export_mobiler2l_onnx` write::

    DIR/sampler.onnx    (rotation [3, 3], translation [3]) -> points [h, w, K, 3]
    DIR/embedder.onnx   points [h, w, K, 3]                -> encoding [1, C, h, w]   (NCHW)
    DIR/model.onnx      encoding [1, C, h, w]               -> image [1, 3, H, W]     (NCHW, [0, 1])
    DIR/metadata.json   sizes, intrinsics, sampling, encoding, graph I/O, dataparser transform, ...

All tensors are float32 and row-major; every camera constant (low-res ray directions, sample
depths / NDC frustum, encoding frequencies) is baked into the graphs, BatchNorm is folded into
the convs. The pose is a nerfstudio camera-to-world matrix (OpenGL: camera looks down -Z, +Y up)
in the dataparser's normalised world; ``metadata.json`` holds the transform and scale that map a
pose given in the capture's original coordinates into it (:mod:`mobiler2l_ns.export.runtime`).

Targets:

* ``standard`` (default): opset 17, exact (erf) GELU; checked with ``onnx.checker`` (full check),
  strict shape inference and onnxruntime against the PyTorch student.
* ``--fp16``: ``model.onnx`` stores weights and computes in float16 (inputs / outputs stay
  float32); its PSNR against the fp32 graph on training poses is printed and stored.
* ``snap``: opset 11 and every GELU as the ``GeluSnap`` custom op of Snap's Lens Studio (SnapML)
  template (snap-research/MobileR2L ``lens/``). Runs only inside Lens Studio: not checked with
  onnxruntime (the sampler and embedder, plain ONNX, still pass ``onnx.checker``).

The steps live in their own modules: loading a run (:mod:`.student_run`), graph modules
(:mod:`.graphs`) and their ONNX protos (:mod:`.onnx_graphs`), the metadata (:mod:`.describe`,
:mod:`.metadata`) and the checks (:mod:`.verify`).

Writes are atomic: everything is written into a temporary folder next to ``--output-dir``
(:class:`~mobiler2l_ns.utils.io.StagingDir`) and moved into place at the end; any failure leaves
the output folder as it was.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np

from mobiler2l_ns.export.describe import build_metadata
from mobiler2l_ns.export.graphs import ExportCamera, build_graphs, sampling_settings
from mobiler2l_ns.export.metadata import METADATA_NAME, ExportMetadata
from mobiler2l_ns.export.onnx_graphs import Target, check_target, export_protos
from mobiler2l_ns.export.student_run import StudentRun, in_memory_run, load_student_run, read_student_config
from mobiler2l_ns.export.verify import check_graphs, onnxruntime_checks
from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.utils.io import StagingDir


@dataclass
class ExportResult:
    """What an export wrote: the output folder, its files and the metadata (``metadata.json``)."""

    output_dir: Path
    files: List[Path]
    metadata: ExportMetadata
    fp16_psnr_db: Optional[float] = None


def export_mobiler2l_onnx(
    load_config: Path,
    output_dir: Path,
    *,
    target: Target = "standard",
    fp16: bool = False,
    height: Optional[int] = None,
    width: Optional[int] = None,
    verbose: bool = True,
) -> ExportResult:
    """Export the MobileR2L student of a run (``RUN/config.yml``) to ``output_dir``.

    Args:
        load_config: the run's ``config.yml`` (or the run folder holding it).
        output_dir: folder to write (created if missing; other files in it are left alone).
        target: ``"standard"`` (opset 17) or ``"snap"`` (opset 11, ``GeluSnap``; Lens Studio only).
        fp16: store and run ``model.onnx`` in float16 (standard target); measures PSNR vs fp32.
        height, width: image size of the export (default: the first training camera's); one of
            them alone keeps the training aspect ratio. Intrinsics are scaled with the size.
        verbose: print progress and the fp16 PSNR.

    Raises:
        InputError: missing / wrong config (e.g. a teacher run), no checkpoint, bad options or an
            unwritable output folder (one-line message; nothing is left behind).
    """
    validate_options(target, fp16, height, width)
    config_path, _ = read_student_config(Path(load_config))  # cheap checks first: path, kind of run
    staging = StagingDir(Path(output_dir))  # fails before the slow part when the output is unwritable
    try:
        run = load_student_run(config_path)
        result = write_export(run, run.camera.resized(height, width), staging.path, target, fp16, verbose)
        files = staging.commit()
    except OSError as err:  # disk full, file-size or quota limits: nothing is left behind
        staging.abort()
        raise InputError(f"--output-dir {output_dir}: cannot write the export ({err.strerror or err})") from None
    except BaseException:
        staging.abort()
        raise
    result.output_dir, result.files = staging.output_dir, files
    if verbose:
        from nerfstudio.utils.rich_utils import CONSOLE

        CONSOLE.print(
            f"[bold green]Exported MobileR2L ONNX ({target}) to {staging.output_dir}: "
            + ", ".join(p.name for p in files)
        )
    return result


def export_model(
    model,
    camera: ExportCamera,
    output_dir: Path,
    train_poses: np.ndarray,
    *,
    dataparser_transform: Optional[np.ndarray] = None,
    dataparser_scale: float = 1.0,
    target: Target = "standard",
    fp16: bool = False,
    verbose: bool = False,
) -> ExportResult:
    """Export an in-memory :class:`MobileR2LModel` (no run folder), e.g. a randomly initialised one.

    What :func:`export_mobiler2l_onnx` writes for a trained run, for benchmarks and tests:
    ``train_poses`` ``[N, 3, 4]`` (normalised-world c2w; the first is the reference pose, all of
    them set the orbit), ``dataparser_transform`` ``[3, 4]`` (default identity) and
    ``dataparser_scale`` are stored in ``metadata.json`` as a run's would be.
    """
    validate_options(target, fp16, None, None)
    run = in_memory_run(model, camera, train_poses, dataparser_transform, dataparser_scale)
    staging = StagingDir(Path(output_dir))
    try:
        result = write_export(run, camera, staging.path, target, fp16, verbose)
        files = staging.commit()
    except BaseException:
        staging.abort()
        raise
    result.output_dir, result.files = staging.output_dir, files
    return result


def validate_options(target: str, fp16: bool, height: Optional[int], width: Optional[int]) -> None:
    """One-line InputErrors for option values the exporter cannot honour."""
    if target not in ("standard", "snap"):
        raise InputError(f"--target must be 'standard' or 'snap', got {target!r}")
    if fp16 and target == "snap":
        raise InputError(
            "--fp16 applies to the standard target; Lens Studio chooses its own precision for --target snap"
        )
    for name, value in (("--height", height), ("--width", width)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
            raise InputError(f"{name} must be a positive integer, got {value!r}")


def write_export(
    run: StudentRun, camera: ExportCamera, out: Path, target: Target = "standard", fp16: bool = False,
    verbose: bool = True,
) -> ExportResult:  # fmt: skip
    """Write the three graphs and ``metadata.json`` of ``run`` at ``camera`` into the folder ``out``."""
    import onnx

    model = run.model.eval()
    check_target(model, target)
    sampling = sampling_settings(model, camera)
    sampler, embedder = build_graphs(model, camera, sampling)
    protos, fp32_model = export_protos(model, sampler, embedder, camera, target, fp16)
    metadata = build_metadata(run, camera, sampling, sampler, target, fp16)
    metadata.checks.update(check_graphs(protos, metadata.io_shapes(), target))

    fp16_psnr = None
    if target == "standard":
        diff, fp16_stats = onnxruntime_checks(run, camera, protos, fp32_model, fp16)
        metadata.checks["onnxruntime_vs_pytorch_max_abs_diff"] = diff
        if fp16_stats is not None:
            metadata.fp16, fp16_psnr = fp16_stats, fp16_stats["psnr_vs_fp32_db"]
            if verbose:
                from nerfstudio.utils.rich_utils import CONSOLE

                CONSOLE.print(
                    f"fp16 model.onnx vs fp32: PSNR {fp16_psnr:.2f} dB (onnxruntime CPU), "
                    f"{fp16_stats['psnr_fp16_activations_db']:.2f} dB with fp16 activations (emulated); "
                    f"max abs diff {fp16_stats['max_abs_diff_vs_fp32']:.2e} ({fp16_stats['poses']} training poses)"
                )

    files = []
    for name, proto in protos.items():
        path = out / metadata.graph_file(name)
        onnx.save(proto, str(path))
        files.append(path)
    metadata.files = [p.name for p in files] + [METADATA_NAME]
    files.append(metadata.write(out))
    return ExportResult(out, files, metadata, fp16_psnr)
