"""Issue 12, F16 (pull): the checkpoint's file name comes from the URL's path, and a downloaded
file that is not a readable checkpoint is not kept: a cached one is fetched again once, a fresh
one is deleted so the next pull downloads it again. Real `pixfind models pull NAME --url URL
--arch ARCH` processes against a local HTTP server, with a tiny random-weight checkpoint."""

from __future__ import annotations

import hashlib
import os

from tests.conftest import TINY_CONFIG
from tests.http_server import serving
from tests.integration.test_hardening_packs import pixfind

NOT_A_CHECKPOINT = b"<html>not a checkpoint</html>" * 100


def test_pull_url_with_a_query_string_names_the_file_from_its_path(tiny_checkpoint, tmp_path):
    home = tmp_path / "home"
    data = tiny_checkpoint.read_bytes()
    with serving(data, "/files/x.pth?x=1") as server:
        assert server.url.endswith("/files/x.pth?x=1")
        code, out, err = pixfind(home, "models", "pull", "tiny-q", "--url", server.url, "--arch", str(TINY_CONFIG), timeout=600)
    assert code == 0, err
    assert "unknown checkpoint type" not in err
    assert (home / "cache" / "checkpoints" / "x.pth").read_bytes() == data
    assert (home / "data" / "models" / "tiny-q" / "pack.json").is_file()


def test_wrong_file_then_right_file_at_the_same_url_is_downloaded_again(tiny_checkpoint, tmp_path):
    home = tmp_path / "home"
    cached = home / "cache" / "checkpoints" / "x.pth"
    with serving(NOT_A_CHECKPOINT, "/x.pth") as server:
        code, _, err = pixfind(home, "models", "pull", "tiny-x", "--url", server.url, "--arch", str(TINY_CONFIG))
        assert code == 1 and "cannot read checkpoint" in err, err
        assert "Traceback" not in err, err
        kept = cached.exists()

        server.data = tiny_checkpoint.read_bytes()  # the server now has the right file, at the same URL
        server.sha256 = hashlib.sha256(server.data).hexdigest()
        server.etag = '"v2"'
        code, _, err = pixfind(home, "models", "pull", "tiny-x", "--url", server.url, "--arch", str(TINY_CONFIG), timeout=600)
        gets = server.gets()
    assert code == 0, err
    assert len(gets) == 2, "the second pull did not download the file again"
    assert cached.read_bytes() == tiny_checkpoint.read_bytes()
    assert not kept, "a file that is not a checkpoint was kept in the download cache"


def test_a_cached_checkpoint_that_went_bad_is_fetched_again_once(tiny_checkpoint, tmp_path):
    """A cached file whose records still vouch for it but whose bytes cannot be read: one more download."""
    home = tmp_path / "home"
    cached = home / "cache" / "checkpoints" / "x.pth"
    data = tiny_checkpoint.read_bytes()
    with serving(data, "/x.pth") as server:
        code, _, err = pixfind(home, "models", "pull", "tiny-a", "--url", server.url, "--arch", str(TINY_CONFIG), timeout=600)
        assert code == 0, err
        # the cached copy is damaged, its sidecar still newer than it: the cache trusts it
        sidecar = cached.with_name("x.pth.sha256")
        st = sidecar.stat()
        cached.write_bytes(NOT_A_CHECKPOINT)
        os.utime(cached, ns=(st.st_atime_ns, st.st_mtime_ns - 1_000_000_000))
        code, out, err = pixfind(home, "models", "pull", "tiny-b", "--url", server.url, "--arch", str(TINY_CONFIG), timeout=600)
        gets = server.gets()
    assert code == 0, err
    assert len(gets) == 2, "the damaged cached file was not downloaded again"
    assert cached.read_bytes() == data
    assert (home / "data" / "models" / "tiny-b" / "pack.json").is_file()
