"""The layers of docs/architecture.md and the lint rules, checked with every test run.

Both tools are configured in pyproject.toml; they run on the repository as it is.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def _run(tool: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(BIN / tool), *args], cwd=REPO, capture_output=True, text=True, timeout=300, check=False)


def test_import_layers_hold():
    """engine <- services <- {commands, gui}; gui never imports commands; training never imports
    the app's services or front ends; the app never imports torch or open_clip."""
    result = _run("lint-imports", "--no-cache")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout


def test_ruff_is_clean():
    result = _run("ruff", "check", "--no-cache", ".")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
