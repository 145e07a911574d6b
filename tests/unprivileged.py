"""Running a pixfind process without root's permission bypass, so tests of unreadable files
also run as root (containers, CI)."""

from __future__ import annotations

import os
import shutil
import subprocess

# CAP_DAC_OVERRIDE alone is not enough: CAP_DAC_READ_SEARCH still reads a chmod 000 file.
DROP_READ_CAPS = "-dac_override,-dac_read_search"


def as_user_without_read_override() -> list[str] | None:
    """A command prefix that runs a process without root's permission bypass; [] when not root;
    None when that is not possible here (no setpriv, or not allowed to drop capabilities)."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        return None
    prefix = [setpriv, f"--inh-caps={DROP_READ_CAPS}", f"--ambient-caps={DROP_READ_CAPS}", f"--bounding-set={DROP_READ_CAPS}"]
    probe = subprocess.run([*prefix, "true"], capture_output=True, check=False)
    return prefix if probe.returncode == 0 else None
