"""Issue 12, F16: bad downloads are not cached and trusted. Downloads (whole and partial) are
keyed by their URL (and expected sha256); a file's type comes from the URL's path."""

from __future__ import annotations

import hashlib
import os

import pytest

from desktop_app import download as download_module
from desktop_app.download import download
from desktop_app.errors import PixfindError
from tests.http_server import CHUNK, serving
from tests.integration.test_hardening_packs import pixfind

FAST = {"progress": False, "chunk_size": CHUNK, "backoff": 0.01, "timeout": 5}


def test_f16_wrong_file_from_one_url_does_not_stop_the_right_url(tiny_checkpoint, tmp_path):
    """`models pull --url A/x.pth` gets a wrong file; `--url B/x.pth` (the right one) is then fetched."""
    from tests.conftest import TINY_CONFIG

    home = tmp_path / "home"
    with serving(b"<html>not a checkpoint</html>" * 100, "/x.pth") as wrong:
        code, _, err = pixfind(home, "models", "pull", "tiny-x", "--url", wrong.url, "--arch", str(TINY_CONFIG))
    assert code == 1 and "cannot read checkpoint" in err, err
    assert "Traceback" not in err

    data = tiny_checkpoint.read_bytes()
    with serving(data, "/x.pth") as right:
        code, out, err = pixfind(home, "models", "pull", "tiny-x", "--url", right.url, "--arch", str(TINY_CONFIG), timeout=600)
        gets = right.gets()
    assert len(gets) >= 1, "the right URL was never asked: the wrong file from the other URL was reused"
    assert code == 0, err
    cached = home / "cache" / "checkpoints" / "x.pth"
    assert cached.read_bytes() == data


def test_f16_part_from_one_url_is_not_resumed_from_another(tmp_path):
    dest = tmp_path / "m.pth"
    with serving(os.urandom(1_000_000), "/m.pth") as first:
        first.cut_after = [300_000]
        with pytest.raises(PixfindError, match="could not download"):
            download(first.url, dest, retries=0, **FAST)
    part = dest.with_name(dest.name + ".part")
    assert part.stat().st_size > 0  # the partial file is kept, to resume from the same URL

    with serving(os.urandom(1_000_000), "/m.pth") as other:
        digest = download(other.url, dest, **FAST)
        gets = other.gets()
    assert gets[0]["range"] is None, "bytes from one URL were resumed from another"
    assert digest == other.sha256 and dest.read_bytes() == other.data


def test_f16_part_meant_for_another_sha256_is_not_resumed(tmp_path):
    dest = tmp_path / "m.pth"
    with serving(os.urandom(1_000_000), "/m.pth") as server:
        server.cut_after = [300_000]
        with pytest.raises(PixfindError):
            download(server.url, dest, retries=0, expected_sha256="a" * 64, **FAST)
        digest = download(server.url, dest, expected_sha256=server.sha256, **FAST)
        gets = server.gets()
    assert gets[-1]["range"] is None
    assert digest == server.sha256


def test_f16_cached_file_of_unknown_origin_is_fetched_again(tmp_path):
    """A file in the cache with no record of where it came from (or from elsewhere) is not trusted."""
    dest = tmp_path / "m.pth"
    dest.write_bytes(b"junk from somewhere")
    dest.with_name("m.pth.sha256").write_text(hashlib.sha256(b"junk from somewhere").hexdigest() + "  m.pth\n")
    with serving(os.urandom(100_000), "/m.pth") as server:
        assert download(server.url, dest, **FAST) == server.sha256
        assert len(server.gets()) == 1
    assert dest.read_bytes() == server.data


def test_f16_a_cached_file_that_fails_to_load_can_be_forgotten_and_fetched_again(tmp_path):
    """`forget` is what a caller uses when a cached download turns out unusable (cannot be loaded)."""
    dest = tmp_path / "m.pth"
    with serving(os.urandom(100_000), "/m.pth") as server:
        first = download(server.url, dest, **FAST)
        assert download(server.url, dest, **FAST) == first  # the same URL again: served from the cache
        assert len(server.gets()) == 1 and download_module.is_cached(server.url, dest)
        download_module.forget(dest)
        assert not dest.exists() and not download_module.is_cached(server.url, dest)
        assert download(server.url, dest, **FAST) == server.sha256
        assert len(server.gets()) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pth", "m.pth.sha256", "m.pth.source"]


@pytest.mark.parametrize(
    "url, name",
    [
        ("https://host/files/x.pth?x=1", "x.pth"),
        ("https://host/files/x.pth#frag", "x.pth"),
        ("https://host/files/My%20Model.safetensors?sig=abc&exp=1", "My Model.safetensors"),
        ("https://host/", "fallback.pth"),
    ],
)
def test_f16_file_type_comes_from_the_url_path(url, name):
    from desktop_app.known_models import KnownModel

    assert download_module.filename_from_url(url, "fallback.pth") == name
    if name != "fallback.pth":
        known = KnownModel(name="k", url=url, arch="a", description="d")
        assert known.filename == name
        assert os.path.splitext(known.filename)[1] in (".pth", ".safetensors")
