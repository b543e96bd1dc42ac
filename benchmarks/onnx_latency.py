"""onnxruntime CPU latency of the exported paper-size MobileR2L student vs PyTorch and vs a FLOP bound.

For each ``--sizes`` S (default 400 and 800: S x S images, ray grid S/8 x S/8) this builds the paper
network (depth 29, width 256, x8 SR; random weights and BatchNorm statistics), exports its
``model.onnx`` exactly as ``ns-export mobiler2l-onnx`` does (BN folded, opset 17, exact GELU) and
prints the median time of one frame for

* onnxruntime (CPUExecutionProvider, default graph optimisations) on ``model.onnx``, and on the
  whole chain ``sampler -> embedder -> model`` (pose in, image out);
* PyTorch eager (the network as trained: BatchNorm in eval mode; no grad);
* the bound ``frame_flops / R``, with ``R`` the machine's measured fp32 throughput of
  ``torch.matmul`` on large square matrices (the best of several runs) at the same thread count;

and the ratios onnxruntime / bound (goal: <= 1.3) and PyTorch / onnxruntime. ``frame_flops``
counts 2 x the multiply-adds of every conv (``mobiler2l_ns.student.network.frame_flops``).

Usage (the same thread count is used by all three)::

    python benchmarks/onnx_latency.py [--sizes 400 800] [--threads 1] [--repeats 5]

The machine's load matters (other processes steal cores): run it on an idle machine and note
``os.getloadavg()``, which is printed.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Callable, Dict, List, Tuple

import numpy as np
import torch

from mobiler2l_ns.export.graphs import ExportCamera, ModelGraph, build_graphs, sampling_settings
from mobiler2l_ns.export.onnx_graphs import to_onnx
from mobiler2l_ns.student.model import MobileR2LModelConfig
from mobiler2l_ns.student.network import frame_flops
from mobiler2l_ns.student.sampler import lowres_grid_size


def timings(fn: Callable[[], object], repeats: int, warmup: int) -> Tuple[float, float]:
    """(best, median) wall time of ``fn()`` over ``repeats`` runs after ``warmup`` untimed runs."""
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times), statistics.median(times)


def matmul_flops_per_second(sizes: Tuple[int, ...] = (1024, 2048), repeats: int = 15) -> Dict[int, float]:
    """fp32 throughput of ``torch.matmul`` on ``n x n`` matrices: ``2 n^3 / t`` with the best ``t``, per n."""
    rates = {}
    for n in sizes:
        a, b = torch.randn(n, n), torch.randn(n, n)
        out = torch.empty(n, n)
        best, _ = timings(lambda: torch.matmul(a, b, out=out), repeats, 1)
        rates[n] = 2.0 * n**3 / best
    return rates


def paper_model():
    """The paper-size student (mobiler2l preset) with random weights and BatchNorm statistics."""
    from nerfstudio.data.scene_box import SceneBox

    torch.manual_seed(0)
    box = SceneBox(aabb=torch.tensor([[-1.5, -1.5, -1.5], [1.5, 1.5, 1.5]]))
    model = MobileR2LModelConfig(near=2.0, far=6.0, report_cost=False).setup(scene_box=box, num_train_data=1)
    for module in model.network.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.1, 0.1)
            module.running_var.uniform_(0.5, 2.0)
    return model.eval()


def ort_session(proto, threads: int):
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    return ort.InferenceSession(proto.SerializeToString(), options, providers=["CPUExecutionProvider"])


def bench_size(model, size: int, threads: int, repeats: int, flops_per_second: float) -> Dict[str, object]:
    """(best, median) times in seconds, FLOPs and bound of one ``size x size`` frame."""
    focal = 0.5 * size / np.tan(0.5 * 0.6911112)
    camera = ExportCamera(size, size, focal, focal, size / 2.0, size / 2.0)
    h, w = lowres_grid_size(size, size, model.config.sr_factor)
    encoding = torch.rand(1, model.embedder.out_channels, h, w) * 2 - 1
    network = model.network
    model_proto = to_onnx(ModelGraph(network, size, size), (encoding,), ["encoding"], ["image"], 17, "benchmark")
    sampler, embedder = build_graphs(model, camera, sampling_settings(model, camera))
    rotation, translation = torch.eye(3), torch.tensor([0.0, 0.0, 4.0])
    with torch.no_grad():
        points = sampler(rotation, translation)
    sampler_proto = to_onnx(sampler, (rotation, translation), ["rotation", "translation"], ["points"], 17, "")
    embedder_proto = to_onnx(embedder, (points,), ["points"], ["encoding"], 17, "")

    sessions = {
        n: ort_session(p, threads) for n, p in (("s", sampler_proto), ("e", embedder_proto), ("m", model_proto))
    }
    feed = {"encoding": encoding.numpy()}
    pose = {"rotation": rotation.numpy(), "translation": translation.numpy()}

    def chain() -> np.ndarray:
        (pts,) = sessions["s"].run(None, pose)
        (enc,) = sessions["e"].run(None, {"points": pts})
        return sessions["m"].run(None, {"encoding": enc})[0]

    warm = 1 if size >= 800 else 2
    ort_model = timings(lambda: sessions["m"].run(None, feed), repeats, warm)
    ort_chain = timings(chain, repeats, warm)
    with torch.no_grad():
        eager = timings(lambda: network(encoding), repeats, warm)
        reference = network(encoding)[:, :, :size, :size].numpy()
    diff = float(np.abs(sessions["m"].run(None, feed)[0] - reference).max())
    flops = frame_flops(network, h, w)
    return {
        "flops": flops,
        "bound": flops / flops_per_second,
        "ort_model": ort_model,
        "ort_chain": ort_chain,
        "torch": eager,
        "max_abs_diff": diff,
    }


def main(argv: List[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[400, 800])
    parser.add_argument("--threads", type=int, default=1, help="threads for onnxruntime, torch and the matmul bound")
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    import onnxruntime

    print(
        f"torch {torch.__version__}, onnxruntime {onnxruntime.__version__}, {args.threads} thread(s), "
        f"{os.cpu_count()} CPUs, load average {', '.join(f'{x:.2f}' for x in os.getloadavg())}"
    )
    rates = matmul_flops_per_second()
    rate = max(rates.values())
    print(
        "fp32 torch.matmul throughput (best of 15): "
        + ", ".join(f"{n}x{n}: {r / 1e9:.1f} GFLOP/s" for n, r in rates.items())
        + f"; bound uses {rate / 1e9:.1f} GFLOP/s"
    )
    model = paper_model()
    print("times: best / median of --repeats runs (ms); ratios use the best times (least disturbed by other load)")
    header = (
        f"{'size':>9} {'grid':>7} {'GFLOP':>6} {'bound':>6} {'ORT model':>13} {'ORT chain':>13} "
        f"{'torch eager':>13} {'ORT/bound':>9} {'chain/bound':>11} {'torch/ORT':>9} {'max|diff|':>9}"
    )
    print(header)
    for size in args.sizes:
        r = bench_size(model, size, args.threads, args.repeats, rate)
        h, w = lowres_grid_size(size, size, model.config.sr_factor)

        def ms(pair: Tuple[float, float]) -> str:
            return f"{pair[0] * 1e3:6.0f}/{pair[1] * 1e3:<6.0f}"

        print(
            f"{size:>4}x{size:<4} {h:>3}x{w:<3} {r['flops'] / 1e9:6.1f} {r['bound'] * 1e3:6.0f} "
            f"{ms(r['ort_model'])} {ms(r['ort_chain'])} {ms(r['torch'])} "
            f"{r['ort_model'][0] / r['bound']:9.2f} {r['ort_chain'][0] / r['bound']:11.2f} "
            f"{r['torch'][0] / r['ort_model'][0]:9.2f} {r['max_abs_diff']:9.1e}"
        )
    print(f"load average after: {', '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
