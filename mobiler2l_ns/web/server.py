"""``mobiler2l-view``: serve an export folder and the browser viewer page (onnxruntime-web).

::

    mobiler2l-view EXPORT_DIR [--host 127.0.0.1] [--port 8080] [--no-open]

Checks the folder first (:mod:`.export_check`: exit status 1 and one line on stderr for a folder
without the three graphs, a snap export, or metadata that disagrees with the graphs), then serves
on loopback (``--port 0``: any free port) with Python's ``http.server``:

=========================  ===================================================================
``/``                      the page (``static/index.html``; ``static/*.js``, ``*.css``)
``/ort/<file>``            ``onnxruntime-web``'s ``dist`` folder, installed by ``npm ci`` in
                           ``mobiler2l_ns/web`` (``scripts/install.sh``); nothing from a CDN
``/export/<file>``         ``metadata.json`` and the three graphs named in it (nothing else)
``/preview/model.onnx``    ``model.onnx`` with symbolic spatial dims (reduced-resolution frames)
=========================  ===================================================================

Every response carries ``Cross-Origin-Opener-Policy: same-origin`` and
``Cross-Origin-Embedder-Policy: require-corp`` (cross-origin isolation: multi-threaded wasm) and
``Cache-Control: no-cache`` (a re-export in the same folder is picked up on reload).
Page options in the URL: ``?ep=wasm|webgpu`` (default: WebGPU when the browser has an adapter),
``?threads=N`` (wasm threads; default onnxruntime-web's choice).
"""

from __future__ import annotations

import posixpath
import re
import socket
import sys
import webbrowser
from dataclasses import dataclass
from functools import partial
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional, Sequence
from urllib.parse import unquote, urlsplit

import tyro
from typing_extensions import Annotated

from mobiler2l_ns.utils.cli import run_cli
from mobiler2l_ns.utils.errors import InputError
from mobiler2l_ns.web.export_check import ViewerExport, load_viewer_export

WEB_DIR = Path(__file__).resolve().parent
STATIC_DIR = WEB_DIR / "static"
ORT_DIST = WEB_DIR / "node_modules" / "onnxruntime-web" / "dist"
DEFAULT_PORT = 8080
SAFE_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
MIME_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".wasm": "application/wasm",
    ".onnx": "application/octet-stream",
    ".svg": "image/svg+xml",
}


def ort_dist() -> Path:
    """onnxruntime-web's ``dist`` folder (InputError when ``npm ci`` has not been run)."""
    if not (ORT_DIST / "ort.min.mjs").is_file():
        raise InputError(
            f"onnxruntime-web is not installed ({ORT_DIST} missing): run 'npm ci' in {WEB_DIR} "
            "(scripts/install.sh does when npm is present)"
        )
    return ORT_DIST


class ViewerHandler(SimpleHTTPRequestHandler):
    """Static files from a fixed set of folders (no listings, no paths outside them)."""

    extensions_map = {**SimpleHTTPRequestHandler.extensions_map, **MIME_TYPES}

    def __init__(self, *args, export: ViewerExport, ort: Path, quiet: bool = True, **kwargs):
        self.export = export
        self.ort = ort
        self.quiet = quiet
        super().__init__(*args, directory=str(STATIC_DIR), **kwargs)

    def route(self, path: str) -> Optional[Path]:
        """File of a URL path, or None (404)."""
        path = posixpath.normpath(unquote(urlsplit(path).path))
        if path in ("/", "/index.html"):
            return STATIC_DIR / "index.html"
        folder, _, name = path.rpartition("/")
        if not SAFE_NAME.match(name):
            return None
        if folder == "/static":
            return STATIC_DIR / name
        if folder == "/ort":
            return self.ort / name
        if folder == "/export" and name in self.export.served_files:
            return self.export.directory / name
        return None

    def translate_path(self, path: str) -> str:
        target = self.route(path)
        return str(target) if target is not None and target.is_file() else str(STATIC_DIR / ".missing")

    def list_directory(self, path):  # never list folders
        self.send_error(HTTPStatus.NOT_FOUND, "File not found")
        return None

    def do_GET(self) -> None:
        if urlsplit(self.path).path == "/preview/model.onnx":
            self.send_bytes(self.export.preview_model)
        else:
            super().do_GET()

    def do_HEAD(self) -> None:
        if urlsplit(self.path).path == "/preview/model.onnx":
            self.send_bytes(self.export.preview_model, body=False)
        else:
            super().do_HEAD()

    def send_bytes(self, data: Optional[bytes], body: bool = True) -> None:
        if data is None:
            self.send_error(HTTPStatus.NOT_FOUND, self.export.preview_note or "File not found")
            return
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", MIME_TYPES[".onnx"])
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if body:
            self.wfile.write(data)

    def end_headers(self) -> None:
        self.send_header("Cross-Origin-Opener-Policy", "same-origin")
        self.send_header("Cross-Origin-Embedder-Policy", "require-corp")
        self.send_header("Cross-Origin-Resource-Policy", "same-origin")
        self.send_header("Cache-Control", "no-cache")
        super().end_headers()

    def log_message(self, format: str, *args) -> None:  # noqa: A002 (http.server's signature)
        if not self.quiet:
            super().log_message(format, *args)


class ViewerServer(ThreadingHTTPServer):
    """ThreadingHTTPServer that does not print a traceback when a browser drops a connection."""

    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], (ConnectionResetError, BrokenPipeError)):
            super().handle_error(request, client_address)


class ViewerServerV6(ViewerServer):
    address_family = socket.AF_INET6


def make_server(export: ViewerExport, host: str = "127.0.0.1", port: int = DEFAULT_PORT, quiet: bool = True):
    """A bound (not yet serving) :class:`ViewerServer` for ``export``; InputError when the port is taken."""
    handler = partial(ViewerHandler, export=export, ort=ort_dist(), quiet=quiet)
    server_class = ViewerServerV6 if ":" in host else ViewerServer
    try:
        return server_class((host, port), handler)
    except OSError as err:
        hint = " (try --port 0 for any free port)" if port else ""
        raise InputError(f"--host {host} --port {port}: cannot listen there ({err.strerror or err}){hint}") from None


def server_url(server) -> str:
    """``http://host:port/`` of a bound server."""
    host, port = server.server_address[:2]
    return f"http://[{host}]:{port}/" if ":" in host else f"http://{host}:{port}/"


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")


# --------------------------------------------------------------------------- CLI


@dataclass
class ViewCommand:
    """Browser viewer of a mobiler2l-onnx export (onnxruntime-web; wasm, or WebGPU when available)."""

    export_dir: Annotated[tyro.conf.Positional[Path], tyro.conf.arg(metavar="EXPORT_DIR")]
    """Folder written by ns-export mobiler2l-onnx."""
    host: str = "127.0.0.1"
    """Address to listen on (127.0.0.1: this machine only)."""
    port: int = DEFAULT_PORT
    """Port (0: any free port)."""
    no_open: tyro.conf.FlagCreatePairsOff[bool] = False
    """Do not open a browser window."""
    verbose: tyro.conf.FlagCreatePairsOff[bool] = False
    """Log every request."""

    def main(self) -> int:
        """Check the export, serve it until Ctrl-C."""
        if not 0 <= self.port <= 65535:
            raise InputError(f"--port must be between 0 and 65535, got {self.port}")
        export = load_viewer_export(self.export_dir)
        server = make_server(export, self.host, self.port, quiet=not self.verbose)
        url = server_url(server)
        meta = export.metadata
        note = f"; reduced resolutions off: {export.preview_note}" if export.preview_model is None else ""
        print(
            f"mobiler2l-view: {self.export_dir} ({meta.width}x{meta.height}{note}) at {url}  (Ctrl-C to stop)",
            flush=True,
        )
        if not is_loopback(self.host):
            print(f"mobiler2l-view: listening on {self.host}: other machines can load this export", flush=True)
        if not self.no_open:
            webbrowser.open(url)
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            server.server_close()
        return 0


def main(argv: Optional[Sequence[str]] = None) -> int:
    """``mobiler2l-view``: parse ``argv`` (default: the command line) and run it; the exit status."""
    return run_cli(ViewCommand, argv, prog="mobiler2l-view", description=ViewCommand.__doc__)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
