"""nerfstudio's web viewer (``ns-viewer --load-config``) on the chain's trained teacher and student, in
headless Chromium (Debian's ``/usr/bin/chromium``, driven by Playwright; no browser is downloaded).

The viewer runs in this process (nerfstudio's ``RunViewer`` command line, in a thread), so the test
knows the camera the page sends: the canvas must show the model's own render of that camera (not a
blank or stale frame), and dragging the mouse over the canvas must move the camera and re-render.
"""

from __future__ import annotations

import io
import os
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List

import numpy as np
import pytest
import torch
from PIL import Image

from mobiler2l_ns.chain import Chain
from tests.helpers import free_port, psnr

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_FLAGS = ["--use-gl=angle", "--use-angle=swiftshader", "--enable-unsafe-swiftshader"]
MAX_RES = 128
"""The viewer's "Max res" slider: still frames are rendered at most this many pixels wide or high."""
UNCOVERED = 0.8
"""Rows of the canvas compared (top 80%): viser draws its axes gizmo in the bottom-left corner."""

pytestmark = [
    pytest.mark.usefixtures("single_thread"),
    pytest.mark.skipif(
        not CHROMIUM.is_file(), reason="needs Debian's chromium at /usr/bin/chromium (apt-get install chromium)"
    ),
]


@contextmanager
def ns_viewer(config: Path, cwd: Path) -> Iterator:
    """``ns-viewer --load-config CONFIG`` started from ``cwd`` (the runs' relative paths resolve against
    it, as for a user), on a free local port; yields nerfstudio's ``Viewer`` once its scene is drawn."""
    import tyro
    from nerfstudio.scripts.viewer import run_viewer
    from nerfstudio.viewer.viewer import Viewer

    started: List[Viewer] = []

    class RecordedViewer(Viewer):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            started.append(self)

    port = free_port()
    args = ["--load-config", str(config), "--viewer.websocket-host", "127.0.0.1",
            "--viewer.websocket-port", str(port), "--viewer.image-format", "png"]  # fmt: skip
    command = tyro.cli(tyro.conf.FlagConversionOff[run_viewer.RunViewer], args=args)
    failures: List[BaseException] = []

    def main() -> None:
        try:
            command.main()  # serves until the process ends (a daemon thread)
        except BaseException as error:  # noqa: BLE001  (reported by the waiting test)
            failures.append(error)

    previous_cwd, previous_state = Path.cwd(), run_viewer.ViewerState
    os.chdir(cwd)
    run_viewer.ViewerState = RecordedViewer
    try:
        threading.Thread(target=main, name="ns-viewer", daemon=True).start()
        deadline = time.monotonic() + 300
        while not (started and hasattr(started[0], "camera_handles")):  # init_scene drew the training cameras
            assert not failures, failures
            assert time.monotonic() < deadline, "ns-viewer did not start in 300 s"
            time.sleep(0.1)
    finally:
        run_viewer.ViewerState = previous_state
        os.chdir(previous_cwd)
    viewer = started[0]
    viewer.url = f"http://127.0.0.1:{port}"
    try:
        yield viewer
    finally:
        for machine in list(viewer.render_statemachines.values()):
            machine.running = False
        viewer.viser_server.stop()


class Page:
    """One browser tab on the viewer, the viser client it opened, and the frames the viewer sent it."""

    def __init__(self, browser, viewer):
        self.viewer = viewer
        known = set(viewer.viser_server.get_clients())
        self.page = browser.new_page(viewport={"width": 800, "height": 500})
        self.page.set_default_timeout(60_000)
        self.page.goto(viewer.url)
        deadline = time.monotonic() + 60
        while not set(viewer.viser_server.get_clients()) - known:
            assert time.monotonic() < deadline, "the page did not connect to the viewer"
            time.sleep(0.1)
        (client_id,) = set(viewer.viser_server.get_clients()) - known
        self.client = viewer.viser_server.get_clients()[client_id]
        self.sent: List[str] = []  # render states of the frames sent ("low_move", "low_static", "high")
        machine = viewer.render_statemachines[client_id]
        send = machine._send_output_to_viewer

        def recorded_send(outputs, static_render=True):
            send(outputs, static_render)
            self.sent.append(machine.state)

        machine._send_output_to_viewer = recorded_send

    def wait_still_frame(self, after: int, timeout: float = 300.0) -> np.ndarray:
        """The canvas ``[H, W, 3]`` uint8 once the viewer has sent a full-resolution frame (after the
        first ``after`` frames) and the page shows it (two equal screenshots in a row)."""
        deadline = time.monotonic() + timeout
        while "high" not in self.sent[after:]:
            assert time.monotonic() < deadline, f"no still frame in {timeout:.0f} s: {self.sent}"
            time.sleep(0.1)
        previous = None
        while True:
            shot = self.canvas()
            if previous is not None and np.array_equal(shot, previous):
                return shot
            assert time.monotonic() < deadline, "the canvas kept changing"
            previous = shot
            time.sleep(0.5)

    def canvas(self) -> np.ndarray:
        """Screenshot of the 3D canvas (the one left of the control panel), ``[H, W, 3]`` uint8."""
        png = self.page.locator("canvas").nth(1).screenshot()
        return np.asarray(Image.open(io.BytesIO(png)).convert("RGB"))

    def drag(self, dx: float, dy: float) -> None:
        """Drag the mouse over the middle of the canvas (viser orbits the camera)."""
        box = self.page.locator("canvas").nth(1).bounding_box()
        x, y = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
        self.page.mouse.move(x, y)
        self.page.mouse.down()
        self.page.mouse.move(x + dx, y + dy, steps=8)
        self.page.mouse.up()


def model_render(viewer, camera_state) -> np.ndarray:
    """The model's own render of the viewer's ``camera_state`` at the still-frame size, ``[H, W, 3]`` uint8."""
    from nerfstudio.viewer.utils import get_camera

    height, width = MAX_RES, int(MAX_RES * camera_state.aspect)
    if width > MAX_RES:  # nerfstudio's RenderStateMachine._calculate_image_res, "high" state
        height, width = int(MAX_RES / camera_state.aspect), MAX_RES
    model = viewer.get_model()
    with torch.no_grad():
        outputs = model.get_outputs_for_camera(get_camera(camera_state, height, width).to(model.device))
    return (outputs["rgb"].clamp(0, 1).cpu().numpy() * 255).round().astype(np.uint8)


def compare(canvas: np.ndarray, render: np.ndarray) -> float:
    """PSNR (dB) of the canvas, resized to the render's size, against the render (top rows only)."""
    height, width = render.shape[:2]
    shown = np.asarray(Image.fromarray(canvas).resize((width, height), Image.BILINEAR))
    rows = int(UNCOVERED * height)
    return psnr(shown[:rows].astype(np.float32) / 255, render[:rows].astype(np.float32) / 255)


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True, args=CHROMIUM_FLAGS)
        yield chromium
        chromium.close()


@pytest.mark.parametrize("who", ["teacher", "student"])
def test_ns_viewer_shows_the_models_render_and_follows_the_mouse(chain: Chain, browser, who: str) -> None:
    config = chain.teacher_config if who == "teacher" else chain.student_config
    with ns_viewer(config.relative_to(chain.root), chain.root) as viewer:
        viewer.control_panel._max_res.value = MAX_RES  # the "Max res" slider (CPU renders)
        viewer.set_camera_visibility(False)  # "Hide Train Cams": frustums would cover the render
        page = Page(browser, viewer)
        try:
            # what a click on the first training camera's frustum does: the view jumps to that camera
            handle = viewer.camera_handles[min(viewer.camera_handles)]
            sent = len(page.sent)
            with page.client.atomic():
                page.client.camera.position = handle.position
                page.client.camera.wxyz = handle.wxyz
            first = page.wait_still_frame(after=sent)
            first_state = viewer.get_camera_state(page.client)
            first_render = model_render(viewer, first_state)
            assert float(first_render.std()) > 5.0, "the model renders a blank image: nothing to compare"
            same = compare(first, first_render)

            position = np.array(page.client.camera.position)
            sent = len(page.sent)
            page.drag(60, 10)
            moved = page.wait_still_frame(after=sent)
            moved_state = viewer.get_camera_state(page.client)
            moved_by = float(np.linalg.norm(np.array(page.client.camera.position) - position))
            moved_render = model_render(viewer, moved_state)
            followed = compare(moved, moved_render)
            stale = compare(moved, first_render)
        finally:
            page.page.close()
    assert moved_by > 1e-3, "dragging over the canvas did not move the viewer's camera"
    # measured on the tiny chain: 32 dB (teacher) and 29-35 dB (student) for the same camera, 16-25 dB stale
    assert same > 22.0 and followed > 22.0, (same, followed)
    assert followed > stale + 3.0, (followed, stale)
