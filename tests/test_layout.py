"""The package's shape: imports flow one way (import-linter contracts in pyproject.toml), short modules."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import mobiler2l_ns

PACKAGE = Path(mobiler2l_ns.__file__).parent
REPO = PACKAGE.parent
MAX_LINES = 450


def test_imports_follow_the_layers_and_have_no_cycles() -> None:
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    assert lint is not None, "import-linter is a dev dependency (pip install -e '.[dev]')"
    proc = subprocess.run([lint, "--no-cache"], cwd=REPO, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "2 kept, 0 broken" in proc.stdout


def test_no_module_is_longer_than_the_limit() -> None:
    long = {
        str(path.relative_to(REPO)): n
        for path in PACKAGE.rglob("*.py")
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert not long, f"modules over {MAX_LINES} lines: {long}"
