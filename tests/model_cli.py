"""Running `pixfind` (the console script) against a fresh PIXFIND_HOME, for the tests of pulling
and importing models: the command's result, its one error line, and what ended up installed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PIXFIND = str(Path(sys.executable).parent / "pixfind")
_HUB_ENV = ("PIXFIND_HOME", "HF_HOME", "HF_HUB_CACHE", "HF_ENDPOINT", "HF_HUB_OFFLINE")


def pixfind(home: Path, *args: str, hub=None, timeout: float = 600, offline: bool = False) -> tuple[int, str, str]:
    """(exit status, stdout, stderr) of `pixfind ARGS` with its data in ``home``; ``hub``: a local
    Hub server (tests/hub_server.py) as HF_ENDPOINT; ``offline``: HF_HUB_OFFLINE=1."""
    env = {k: v for k, v in os.environ.items() if k not in _HUB_ENV}
    env.update({"PIXFIND_HOME": str(home), "PIXFIND_PROVIDERS": "CPUExecutionProvider", "COLUMNS": "200"})
    env["HF_HUB_DISABLE_TELEMETRY"] = "1"
    if hub is not None:
        env["HF_ENDPOINT"] = hub.url
    if offline:
        env["HF_HUB_OFFLINE"] = "1"
    proc = subprocess.run([PIXFIND, *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=timeout)
    return proc.returncode, proc.stdout, proc.stderr


def error_line(err: str) -> str:
    """The one `pixfind: error:` line of ``err`` (and no traceback)."""
    lines = [line for line in err.splitlines() if line.startswith("pixfind: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def installed(home: Path) -> list[str]:
    models = home / "data" / "models"
    return sorted(p.name for p in models.iterdir() if not p.name.startswith(".")) if models.is_dir() else []


def leftovers(home: Path) -> list[str]:
    """Scratch folders an install left behind."""
    models = home / "data" / "models"
    return sorted(p.name for p in models.iterdir() if p.name.startswith(".install-")) if models.is_dir() else []
