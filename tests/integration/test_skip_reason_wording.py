"""One problem, one wording: an unreadable photo and an unreadable folder are both skipped as
"permission denied", whichever step of `pixfind index` met it (the scanner listing a folder, the
indexer fingerprinting a file), and `pixfind status --errors` shows exactly that."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.library_helpers import REPO, make_photo
from tests.unprivileged import as_user_without_read_override


def _pixfind(prefix: list[str], *args) -> subprocess.CompletedProcess:
    return subprocess.run([*prefix, sys.executable, "-m", "desktop_app", *map(str, args)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, check=False)


def test_unreadable_file_and_folder_read_the_same(tmp_path, tiny_model, library_dir):
    prefix = as_user_without_read_override()
    if prefix is None:
        pytest.skip("running as root without a working setpriv: the wording of 'permission denied' skips is not covered")
    root = tmp_path / "photos"
    make_photo(root / "fine.jpg", seed=1)
    secret = make_photo(root / "secret.jpg", seed=2)  # listed by the scanner, refused to the indexer's fingerprint
    locked = root / "locked"  # refused to the scanner itself
    make_photo(locked / "inside.jpg", seed=3)
    secret.chmod(0)
    locked.chmod(0)
    try:
        done = _pixfind(prefix, "index", root, "--library", library_dir, "--json")
        assert done.returncode == 0, done.stderr
        report = json.loads(done.stdout)
        status = _pixfind([], "status", "--errors", "--json", "--library", library_dir)
        assert status.returncode == 0, status.stderr
        shown = _pixfind([], "status", "--errors", "--library", library_dir)
    finally:
        locked.chmod(0o755)
        secret.chmod(0o644)
    assert report["encoded"] == 1
    expected = {str(secret): "permission denied", str(locked): "permission denied"}
    assert {s["path"]: s["reason"] for s in report["skipped"]} == expected
    assert {e["path"]: e["reason"] for e in json.loads(status.stdout)["errors"]} == expected
    assert f"  {secret}: permission denied" in shown.stdout.splitlines()
    assert f"  {locked}: permission denied" in shown.stdout.splitlines()
