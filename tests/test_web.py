"""Tests of ``mobiler2l-view``: the browser viewer in a real Chromium (onnxruntime-web, wasm; ~1 minute).

A small student (random weights whose output spans the colour range) is exported in-process,
served by the real console script on a free loopback port, and driven with Playwright through
Debian's ``/usr/bin/chromium`` (Playwright's own browsers are never downloaded). The canvas is
compared with the Python onnxruntime runner (:mod:`mobiler2l_ns.export.runtime`) pose for pose.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np
import pytest
import torch

from mobiler2l_ns.export.graphs import ExportCamera
from mobiler2l_ns.export.onnx_export import export_model
from mobiler2l_ns.export.runtime import OnnxLightField, orbit_poses
from mobiler2l_ns.export.verify import render_torch
from mobiler2l_ns.geometry import look_at, rotation_about, to_normalised, to_original
from mobiler2l_ns.utils.io import to_uint8
from mobiler2l_ns.web.browser import CHROMIUM, CHROMIUM_FLAGS
from mobiler2l_ns.web.camera import viewer_pose
from mobiler2l_ns.web.export_check import load_viewer_export
from tests.helpers import psnr

VIEW = Path(sys.executable).parent / "mobiler2l-view"
HEIGHT, WIDTH = 40, 56  # ray grid 10 x 14 (x4 super-resolution): not square, to catch transposed axes

pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    pytest.mark.skipif(
        not CHROMIUM.is_file(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
]


def psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:
    return psnr(a, b, data_range=255.0)


def look_at_centre(azimuth: float, elevation: float, distance: float) -> np.ndarray:
    """OpenGL c2w on a sphere around the origin (z up), looking at the origin."""
    eye = distance * np.array(
        [math.cos(elevation) * math.cos(azimuth), math.cos(elevation) * math.sin(azimuth), math.sin(elevation)]
    )
    return look_at(eye, [0.0, 0.0, 0.0], [0.0, 0.0, 1.0])


def random_student_export(out: Path, embedder: str = "pe", tail_gain: Optional[float] = 30.0) -> Path:
    """A depth-2, width-32, x4 student with random weights (tail scaled so colours span [0, 1]; None:
    scaled so the pre-sigmoid values of the first pose have a standard deviation of 2), exported
    in-process to ``out``."""
    from nerfstudio.data.scene_box import SceneBox

    from mobiler2l_ns.student.model import MobileR2LModelConfig

    torch.manual_seed(0)
    box = SceneBox(aabb=torch.tensor([[-1.0, -1.0, -1.0], [1.0, 1.0, 1.0]]))
    config = MobileR2LModelConfig(depth=2, width=32, sr_factor=4, sr_widths=(16, 8), report_cost=False,
                                  embedder=embedder, grid_levels=2, grid_min_resolution=8, grid_max_resolution=32)  # fmt: skip
    model = config.setup(scene_box=box, num_train_data=1).eval()
    poses = np.stack([look_at_centre(a, 0.4, 3.0) for a in np.linspace(0.3, 2.0, 5)])
    camera = ExportCamera(HEIGHT, WIDTH, 48.0, 48.0, 28.0, 20.0)
    if tail_gain is None:
        logits = []
        hook = model.network.tail[0].register_forward_hook(lambda _m, _a, out: logits.append(out))
        render_torch(model, camera, poses[0])
        hook.remove()
        tail_gain = 2.0 / float(logits[0].std())
    with torch.no_grad():
        model.network.tail[0].weight.mul_(tail_gain)
    transform = np.concatenate([rotation_about([0.2, 0.3, 1.0], 0.5), [[0.1], [-0.2], [0.3]]], axis=1)
    export_model(
        model,
        camera,
        out,
        poses,
        dataparser_transform=transform,
        dataparser_scale=0.8,
    )
    return out


@pytest.fixture(scope="module")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The paper's embedder (positional encoding), random weights."""
    return random_student_export(tmp_path_factory.mktemp("web") / "export")


class Server:
    """``mobiler2l-view DIR --port 0 --no-open`` in a subprocess; ``url`` from its first line."""

    def __init__(self, directory: Path):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
        args = [str(VIEW), str(directory), "--port", "0", "--no-open"]
        self.proc = subprocess.Popen(args, env=env, text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        line = self.proc.stdout.readline()
        assert " at http://127.0.0.1:" in line, line + self.proc.stderr.read()
        self.url = line.split(" at ", 1)[1].split()[0]

    def close(self) -> None:
        self.proc.terminate()
        self.proc.communicate(timeout=10)


@pytest.fixture(scope="module")
def server(export_dir: Path) -> Iterator[Server]:
    srv = Server(export_dir)
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def playwright():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as instance:
        yield instance


@pytest.fixture(scope="module")
def browser(playwright):
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
    yield chromium
    chromium.close()


def open_viewer(browser, url: str, wait_for: str = "window.mobiler2l.previewReady"):
    page = browser.new_page(viewport={"width": 900, "height": 700})
    page.set_default_timeout(60_000)
    messages: List[str] = []
    page.on("console", lambda m: messages.append(f"{m.type}: {m.text}"))
    page.on("pageerror", lambda e: messages.append(f"pageerror: {e}"))
    page.goto(url + "?ep=wasm&threads=1")
    page.wait_for_function(f"window.mobiler2l && ({wait_for} || window.mobiler2l.error)")
    page.messages = messages
    return page


@pytest.fixture(scope="module")
def page(browser, server: Server):
    viewer = open_viewer(browser, server.url)
    assert viewer.evaluate("mobiler2l.error") is None, viewer.messages
    yield viewer
    viewer.close()


@pytest.fixture(scope="module")
def field(export_dir: Path) -> OnnxLightField:
    return OnnxLightField(export_dir, threads=1)


def canvas_pixels(page) -> np.ndarray:
    """``[H, W, 3]`` uint8 of the viewer canvas (getImageData)."""
    data = page.evaluate(
        "() => { const c = document.getElementById('view');"
        " return {w: c.width, h: c.height, d: Array.from(c.getContext('2d').getImageData(0, 0, c.width, c.height).data)}; }"
    )
    return np.asarray(data["d"], dtype=np.uint8).reshape(data["h"], data["w"], 4)[..., :3]


def render_in_page(page, pose: np.ndarray, **options) -> Dict:
    pose = np.asarray(pose, dtype=np.float64)
    return page.evaluate(
        "([R, t, o]) => mobiler2l.renderPose(R, t, o)", [pose[:3, :3].tolist(), pose[:3, 3].tolist(), options]
    )


# --------------------------------------------------------------------------- same pose, same image


def test_canvas_matches_python_runtime(page, field: OnnxLightField) -> None:
    assert page.evaluate("[mobiler2l.provider, mobiler2l.threads]") == ["wasm", 1]
    reference = field.reference_pose
    poses = [reference, field.orbit(7)[3], viewer_pose(reference, field.metadata["orbit"], -0.8, 0.3, 0.7)]
    for pose in poses:
        result = render_in_page(page, pose)
        assert (result["level"], result["width"], result["height"]) == (1, WIDTH, HEIGHT)
        expected = to_uint8(field.render(pose))
        assert float(expected.std()) > 30.0  # a non-trivial image
        image = canvas_pixels(page)
        assert image.shape == (HEIGHT, WIDTH, 3)
        value = psnr_uint8(image, expected)
        print(f"browser vs onnxruntime: PSNR {value:.1f} dB, max |diff| {np.abs(image.astype(int) - expected).max()}")
        assert value >= 40.0
    # a pose in the capture's own coordinates goes through the stored dataparser transform
    dp = field.metadata["dataparser_transform"]
    original = to_original(field.orbit(5)[2], dp["transform"], dp["scale"])
    render_in_page(page, original, originalCoords=True)
    assert psnr_uint8(canvas_pixels(page), to_uint8(field.render(original, original_coords=True))) >= 40.0
    # frame time: in window.mobiler2l (total = the sum of its stages) and in the page
    stages = page.evaluate("mobiler2l.lastStageMs")
    total = page.evaluate("mobiler2l.lastFrameMs")
    assert total == stages["ms"] > 0 and stages["model"] > 0
    assert sum(stages[k] for k in ("sampler", "embedder", "model", "draw")) == pytest.approx(total, abs=1e-6)
    readout = page.inner_text("#frame-ms")  # "12.3 ms/frame (model 9.8 ms) · full · wasm, 1 thread(s)"
    shown_total, rest = readout.split(" ms/frame (model ", 1)
    assert abs(float(shown_total) - total) <= 0.05 + 1e-9, readout
    assert abs(float(rest.split(" ms)")[0]) - stages["model"]) <= 0.05 + 1e-9, readout
    assert readout.endswith("full \u00b7 wasm, 1 thread(s)"), readout


def test_reduced_resolution_is_every_fth_ray(page, field: OnnxLightField, export_dir: Path) -> None:
    """Level f: model.onnx (symbolic h, w) on every f-th ray's encoding, as onnxruntime computes it."""
    import onnxruntime as ort

    assert page.evaluate("mobiler2l.availableLevels()") == [1, 2, 4, 8]  # grid 10 x 14: 1/8 is 2 x 2
    preview = load_viewer_export(export_dir).preview_model
    session = ort.InferenceSession(preview, providers=["CPUExecutionProvider"])
    pose = field.orbit(7)[2]
    encoding = field.chain.stages(pose)["encoding"]
    for f in (2, 4, 8):
        result = render_in_page(page, pose, level=f)
        h, w = math.ceil(HEIGHT / 4 / f), math.ceil(WIDTH / 4 / f)
        assert (result["level"], result["height"], result["width"]) == (f, 4 * h, 4 * w)
        (image,) = session.run(None, {"encoding": np.ascontiguousarray(encoding[:, :, ::f, ::f])})
        expected = to_uint8(image[0].transpose(1, 2, 0))
        raw = page.evaluate("mobiler2l.rawPixels()")
        got = np.asarray(raw["data"], dtype=np.uint8).reshape(raw["height"], raw["width"], 4)[..., :3]
        assert psnr_uint8(got, expected) >= 40.0
    render_in_page(page, field.reference_pose)


def test_js_pose_math_matches_python(page, field: OnnxLightField) -> None:
    """camera.js is a port of geometry.py, runtime.py and web/camera.py: same numbers (float64)."""
    meta = field.metadata
    reference, orbit = field.reference_pose, meta["orbit"]
    for a, b, zoom in ((0.0, 0.0, 1.0), (0.7, -0.4, 1.3), (-2.5, 0.9, 0.4)):
        js = np.asarray(page.evaluate("([a, b, z]) => mobiler2l.viewerPose(a, b, z)", [a, b, zoom]))
        np.testing.assert_allclose(js, viewer_pose(reference, orbit, a, b, zoom), rtol=0, atol=1e-12)
    np.testing.assert_allclose(page.evaluate("mobiler2l.orbitPoses(6)"), orbit_poses(reference, orbit, 6), atol=1e-12)
    dp = meta["dataparser_transform"]
    np.testing.assert_allclose(
        page.evaluate("(p) => mobiler2l.toNormalised(p)", reference.tolist()),
        to_normalised(reference, dp["transform"], dp["scale"]),
        atol=1e-12,
    )
    for position, target, up in (([3.0, 1.0, 2.0], [0.1, 0.2, 0.3], [0, 0, 1]), ([0, 0, 2.0], [0, 0, 0], [0, 0, 1])):
        js = page.evaluate("([p, t, u]) => mobiler2l.lookAt(p, t, u)", [position, target, up])
        np.testing.assert_allclose(js, look_at(position, target, up), rtol=0, atol=1e-12)
    # both orbit kinds, directly on the module; the viewer's orbit passes through --orbit's frames
    base = reference.tolist()
    orbits = [orbit, {"kind": "circle", "radius": 0.3}]
    result = page.evaluate(
        """async ([base, orbits]) => {
            const m = await import('/static/camera.js');
            return orbits.map((o) => ({
                free: m.viewerPose(base, o, 0.3, -0.6, 0.8),
                frames: [0, 1, 2, 3].map((i) => o.kind === 'turntable'
                    ? m.viewerPose(base, o, 2 * Math.PI * i / 4, 0, 1)
                    : m.viewerPose(base, o, Math.cos(2 * Math.PI * i / 4), Math.sin(2 * Math.PI * i / 4), 1)),
            }));
        }""",
        [base, orbits],
    )
    for o, got in zip(orbits, result):
        np.testing.assert_allclose(got["free"], viewer_pose(reference, o, 0.3, -0.6, 0.8), atol=1e-12)
        np.testing.assert_allclose(got["frames"], orbit_poses(reference, o, 4), atol=1e-12)
        for pose in got["frames"]:
            np.testing.assert_allclose(np.asarray(pose)[:, :3] @ np.asarray(pose)[:, :3].T, np.eye(3), atol=1e-12)


# --------------------------------------------------------------------------- interaction


def wait_still(page) -> None:
    page.evaluate("mobiler2l.idle()")


def test_mouse_drag_orbits_then_refines(page, field: OnnxLightField) -> None:
    render_in_page(page, field.reference_pose)
    before = canvas_pixels(page)
    page.evaluate("mobiler2l.levelsRendered.length = 0")
    box = page.locator("#view").bounding_box()
    x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(x, y)
    page.mouse.down()
    for step in range(1, 9):
        page.mouse.move(x + 15 * step, y + 4 * step)
        time.sleep(0.03)
    page.mouse.up()
    wait_still(page)
    levels = page.evaluate("mobiler2l.levelsRendered")
    params = page.evaluate("mobiler2l.cameraParams()")
    assert params["a"] < -0.1 and params["b"] < 0.0 and params["zoom"] == 1.0  # drag right: camera turns left
    assert levels[-1] == 1 and 4 in levels[:-1], levels  # 1/4 while moving, full once still
    after = canvas_pixels(page)
    assert psnr_uint8(after, before) < 20.0  # a different view
    # what is on the canvas is the Python runner's image of the camera's pose
    pose = np.asarray(page.evaluate("mobiler2l.cameraPose()"))
    assert psnr_uint8(after, to_uint8(field.render(pose))) >= 40.0
    # wheel zooms out (camera further away)
    page.mouse.move(x, y)
    page.mouse.wheel(0, 300)
    wait_still(page)
    assert page.evaluate("mobiler2l.cameraParams().zoom") > 1.2


def test_touch_orbit_and_pinch_zoom(page, field: OnnxLightField) -> None:
    render_in_page(page, field.reference_pose)
    touches = """([events]) => {
        const canvas = document.getElementById('view');
        const r = canvas.getBoundingClientRect();
        for (const [type, id, dx, dy] of events) {
            canvas.dispatchEvent(new PointerEvent(type, {pointerId: id, pointerType: 'touch', isPrimary: id === 11,
                clientX: r.left + r.width / 2 + dx, clientY: r.top + r.height / 2 + dy, bubbles: true, cancelable: true}));
        }
    }"""
    one_finger = [
        ["pointerdown", 11, 0, 0],
        *[["pointermove", 11, -10 * i, 0] for i in range(1, 6)],
        ["pointerup", 11, -50, 0],
    ]
    page.evaluate(touches, [one_finger])
    wait_still(page)
    assert page.evaluate("mobiler2l.cameraParams().a") > 0.1  # finger to the left: camera turns right
    pinch = [["pointerdown", 11, -20, 0], ["pointerdown", 12, 20, 0]]
    pinch += [
        e for i in range(1, 6) for e in (["pointermove", 11, -20 - 10 * i, 0], ["pointermove", 12, 20 + 10 * i, 0])
    ]
    pinch += [["pointerup", 11, -70, 0], ["pointerup", 12, 70, 0]]
    page.evaluate(touches, [pinch])
    wait_still(page)
    zoom = page.evaluate("mobiler2l.cameraParams().zoom")
    assert zoom == pytest.approx(40 / 140, rel=1e-6)  # fingers 40 -> 140 px apart: 3.5x closer
    assert page.evaluate("mobiler2l.levelsRendered.at(-1)") == 1


# --------------------------------------------------------------------------- serving and bad input


def test_server_routes_and_headers(server: Server, export_dir: Path) -> None:
    def get(path: str) -> Tuple[int, Any, bytes]:  # headers: case-insensitive email.message.Message
        try:
            with urllib.request.urlopen(server.url.rstrip("/") + path, timeout=10) as response:
                return response.status, response.headers, response.read()
        except urllib.error.HTTPError as err:
            return err.code, err.headers, b""

    status, headers, body = get("/ort/ort-wasm-simd-threaded.jsep.wasm")
    assert status == 200 and headers["Content-Type"] == "application/wasm" and body[:4] == b"\0asm"
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    assert get("/ort/ort.min.mjs")[1]["Content-Type"].startswith("text/javascript")
    assert get("/static/viewer.js")[1]["Content-Type"].startswith("text/javascript")
    status, headers, body = get("/export/model.onnx")
    assert status == 200 and body == (export_dir / "model.onnx").read_bytes()
    assert json.loads(get("/export/metadata.json")[2])["format"] == "mobiler2l-onnx"
    for path in (
        "/export/../export/metadata.json/../../x",
        "/export/%2e%2e/etc/passwd",
        "/static/",
        "/export/nope.onnx",
        "/etc/passwd",
    ):
        assert get(path)[0] == 404, path


def bad_exports(export_dir: Path, root: Path) -> Dict[str, Tuple[Path, str]]:
    """Broken copies of the export, each with the start of the message it must give."""
    cases: Dict[str, Tuple[Path, str]] = {}
    empty = root / "empty"
    empty.mkdir()
    cases["no metadata"] = (empty, "not a mobiler2l-onnx export (no metadata.json)")
    cases["no folder"] = (root / "missing", "no such folder")
    graphs = root / "no-graphs"
    graphs.mkdir()
    shutil.copy(export_dir / "metadata.json", graphs)
    cases["no graphs"] = (graphs, "missing sampler.onnx, embedder.onnx, model.onnx")
    sizes = root / "sizes"
    shutil.copytree(export_dir, sizes)
    meta = json.loads((sizes / "metadata.json").read_text())
    meta["height"] = HEIGHT - 2  # same ray grid, another image size
    (sizes / "metadata.json").write_text(json.dumps(meta))
    cases["sizes"] = (
        sizes,
        "model.onnx: output 'image' has shape [1, 3, 40, 56] but metadata.json sizes give [1, 3, 38, 56]",
    )
    corrupt = root / "corrupt"
    shutil.copytree(export_dir, corrupt)
    (corrupt / "embedder.onnx").write_bytes(b"not an onnx file")
    cases["corrupt"] = (corrupt, "embedder.onnx: not a readable ONNX graph")
    return cases


def test_bad_exports_fail_before_serving(export_dir: Path, server: Server, tmp_path: Path) -> None:
    cases = {name: (path, "0", text) for name, (path, text) in bad_exports(export_dir, tmp_path).items()}
    taken = server.url.rstrip("/").rsplit(":", 1)[1]
    cases["port in use"] = (export_dir, taken, f"--port {taken}: cannot listen there (Address already in use)")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = {
        name: subprocess.Popen(
            [str(VIEW), str(path), "--port", port, "--no-open"],
            env=env,
            text=True,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for name, (path, port, _) in cases.items()
    }
    for name, proc in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        lines = stderr.strip().splitlines()
        assert proc.returncode == 1 and stdout == "", (name, stdout, stderr)
        assert len(lines) == 1 and lines[0].startswith("mobiler2l: ") and cases[name][2] in lines[0], (name, stderr)


def test_page_shows_graph_load_failure(browser, export_dir: Path, tmp_path: Path) -> None:
    """A graph that breaks after the server's check (here: overwritten) is reported in the page."""
    copy = tmp_path / "export"
    shutil.copytree(export_dir, copy)
    srv = Server(copy)
    try:
        (copy / "model.onnx").write_bytes(b"\x08\x07truncated")
        viewer = open_viewer(browser, srv.url, wait_for="window.mobiler2l.ready")
        message = viewer.evaluate("mobiler2l.error")
        assert message and message.startswith("Cannot load model.onnx"), (message, viewer.messages)
        assert viewer.is_visible("#error") and "model.onnx" in viewer.inner_text("#error")
        assert viewer.evaluate("mobiler2l.ready") is False
        viewer.close()
        # a readable graph that is not the one metadata.json describes
        shutil.copy(copy / "sampler.onnx", copy / "model.onnx")
        viewer = open_viewer(browser, srv.url, wait_for="window.mobiler2l.ready")
        message = viewer.evaluate("mobiler2l.error")
        assert message == "model.onnx: inputs [rotation, translation] but metadata.json describes [encoding]", message
        assert viewer.is_visible("#error")
        viewer.close()
    finally:
        srv.close()


def test_webgpu_provider_when_an_adapter_exists(playwright, server: Server, field: OnnxLightField) -> None:
    """WebGPU execution provider on Chromium's software adapter (SwiftShader): same image."""
    flags = [*CHROMIUM_FLAGS, "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"]
    chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=flags)
    try:
        page = chromium.new_page()
        page.set_default_timeout(120_000)
        page.goto(server.url)  # no ?ep: the page picks WebGPU when navigator.gpu has an adapter
        page.wait_for_function("window.mobiler2l && (window.mobiler2l.ready || window.mobiler2l.error)")
        assert page.evaluate("mobiler2l.error") is None
        if page.evaluate("mobiler2l.provider") != "webgpu":
            pytest.skip("this Chromium offers no WebGPU adapter, not even SwiftShader's")
        pose = field.orbit(7)[3]
        render_in_page(page, pose)
        assert psnr_uint8(canvas_pixels(page), to_uint8(field.render(pose))) >= 40.0
    finally:
        chromium.close()


@pytest.mark.parametrize("embedder", ["volume", "planes", "slab"])
def test_learned_embedder_export_renders_like_onnxruntime(browser, playwright, embedder: str, tmp_path: Path) -> None:
    """An export whose embedder.onnx holds feature grids (GridSample): the page's image equals
    onnxruntime's in Python on wasm, and on WebGPU where Chromium has an adapter (SwiftShader)."""
    directory = random_student_export(tmp_path / "export", embedder=embedder, tail_gain=None)
    field = OnnxLightField(directory, threads=1)
    assert field.metadata["encoding"]["kind"] == embedder
    srv = Server(directory)
    try:
        page = open_viewer(browser, srv.url)
        assert page.evaluate("mobiler2l.error") is None, page.messages
        for pose in (field.reference_pose, field.orbit(7)[3]):
            render_in_page(page, pose)
            expected = to_uint8(field.render(pose))
            assert float(expected.std()) > 10.0  # the grids reach the image
            assert psnr_uint8(canvas_pixels(page), expected) >= 40.0
        page.close()
        flags = [*CHROMIUM_FLAGS, "--enable-unsafe-webgpu", "--use-webgpu-adapter=swiftshader"]
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=flags)
        try:
            gpu_page = chromium.new_page()
            gpu_page.set_default_timeout(120_000)
            gpu_page.goto(srv.url)
            gpu_page.wait_for_function("window.mobiler2l && (window.mobiler2l.ready || window.mobiler2l.error)")
            assert gpu_page.evaluate("mobiler2l.error") is None
            if gpu_page.evaluate("mobiler2l.provider") == "webgpu":
                pose = field.orbit(7)[3]
                render_in_page(gpu_page, pose)
                assert psnr_uint8(canvas_pixels(gpu_page), to_uint8(field.render(pose))) >= 40.0
        finally:
            chromium.close()
    finally:
        srv.close()
