"""Issue 12, F3 (status): `pixfind status` checks the active pack's files the quick way (size and
mtime against the install record, the full sha256 of a changed file) and reports a tampered pack
instead of saying ok. Runs the real ``python -m desktop_app`` on real files."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

from tests.integration.test_hardening_packs import indexed_library, install, pixfind


def _flip_a_byte(path: Path) -> None:
    """Flip one byte in the middle, keeping the size (and then the mtime: a careful tamperer)."""
    st = path.stat()
    with open(path, "r+b") as f:
        f.seek(st.st_size // 2)
        byte = f.read(1)
        f.seek(-1, os.SEEK_CUR)
        f.write(bytes([byte[0] ^ 0xFF]))
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def test_status_reports_a_tampered_visual_onnx(tiny_pack, tmp_path):
    home = tmp_path / "home"
    installed = install(home, Path(shutil.copytree(tiny_pack, tmp_path / "src" / "tiny")))
    library = indexed_library(home, tmp_path)

    code, out, err = pixfind(home, "status", "--library", str(library))
    assert code == 0, err
    assert "active model: tiny" in out and "damaged" not in out, out

    _flip_a_byte(installed / "visual.onnx")
    code, out, err = pixfind(home, "status", "--library", str(library))
    assert code == 0, err
    assert "Traceback" not in err, err
    assert "active model: tiny: 1 of 1 photos encoded" in out, out  # what was indexed is still shown
    problem = [line for line in out.splitlines() if "visual.onnx" in line]
    assert len(problem) == 1 and "changed since it was installed" in problem[0], out
    assert problem[0].startswith("model pack: damaged: "), out

    code, out, err = pixfind(home, "status", "--json", "--library", str(library))
    assert code == 0, err
    active = json.loads(out)["active_model"]
    assert active["name"] == "tiny"
    assert "visual.onnx" in active["problem"] and "changed since it was installed" in active["problem"]
