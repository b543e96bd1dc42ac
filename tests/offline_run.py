"""Run an installed console script with the network disabled: ``python offline_run.py ns-train ...``.

Every socket connect / name lookup raises, so any run-time download fails loudly.
"""

import socket
import sys
from importlib.metadata import entry_points


def _refuse(*_args, **_kwargs):
    raise OSError("network disabled by mobiler2l tests")


socket.socket.connect = _refuse  # type: ignore[method-assign]
socket.socket.connect_ex = _refuse  # type: ignore[method-assign]
socket.create_connection = _refuse  # type: ignore[assignment]
socket.getaddrinfo = _refuse  # type: ignore[assignment]

if __name__ == "__main__":
    name = sys.argv[1]
    scripts = [ep for ep in entry_points(group="console_scripts") if ep.name == name]
    if not scripts:
        sys.exit(f"no console script named {name}")
    sys.argv = sys.argv[1:]
    sys.exit(scripts[0].load()())
