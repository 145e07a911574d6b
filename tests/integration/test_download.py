"""desktop_app.download against a real HTTP server on 127.0.0.1 (with Range support written here)."""

from __future__ import annotations

import errno
import hashlib
import re
import threading
from pathlib import Path

import pytest

from desktop_app.download import DownloadCancelled, download
from desktop_app.download import transfer as download_transfer
from desktop_app.errors import PixfindError
from tests.http_server import CHUNK, FILE_SIZE, ServerState, closed_port_url, serving

FAST = {"progress": False, "chunk_size": CHUNK, "backoff": 0.01, "timeout": 5}


@pytest.fixture
def server():
    with serving() as state:
        yield state


def part_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".part")


def sidecar_of(dest: Path) -> Path:
    return dest.with_name(dest.name + ".sha256")


def assert_complete(dest: Path, server: ServerState, digest: str) -> None:
    assert digest == server.sha256
    assert dest.read_bytes() == server.data
    assert not part_of(dest).exists()
    assert sidecar_of(dest).read_text().split()[0] == server.sha256


def test_full_download_with_progress_bar(server, tmp_path):
    dest = tmp_path / "models" / "model.pth"  # the folder is created
    digest = download(server.url, dest, expected_sha256=server.sha256.upper(), chunk_size=CHUNK, progress=True)
    assert_complete(dest, server, digest)
    assert sidecar_of(dest).read_text() == f"{server.sha256}  model.pth\n"
    gets = server.gets()
    assert len(gets) == 1 and gets[0]["range"] is None
    assert server.bytes_served() == FILE_SIZE


def test_on_progress_reports_bytes_and_total(server, tmp_path):
    seen: list[tuple[int, int | None]] = []
    digest = download(server.url, tmp_path / "m.pth", on_progress=lambda d, t: seen.append((d, t)), **FAST)
    assert digest == server.sha256
    assert seen[-1] == (FILE_SIZE, FILE_SIZE)
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def test_interrupted_transfer_resumes_with_range_in_one_call(server, tmp_path):
    cut = 1_000_000
    server.cut_after = [cut]
    dest = tmp_path / "m.pth"
    digest = download(server.url, dest, **FAST)
    assert_complete(dest, server, digest)
    gets = server.gets()
    assert [g["range"] for g in gets] == [None, f"bytes={cut}-"]
    assert gets[1]["status"] == 206 and gets[1]["if_range"] == server.etag
    assert server.bytes_served() == FILE_SIZE  # resumed, not downloaded twice


def test_several_interruptions_keep_resuming(server, tmp_path):
    # More interruptions than `retries`: each one made progress, so none is fatal.
    server.cut_after = [300_000, 300_000, 300_000, 300_000]
    digest = download(server.url, tmp_path / "m.pth", retries=2, **FAST)
    assert digest == server.sha256
    assert [g["range"] for g in server.gets()] == [None] + [f"bytes={300_000 * i}-" for i in range(1, 5)]
    assert server.bytes_served() == FILE_SIZE


def test_stalled_transfer_times_out_and_resumes(server, tmp_path):
    server.stall_after = [500_000]
    dest = tmp_path / "m.pth"
    digest = download(server.url, dest, **{**FAST, "timeout": 0.3})
    assert_complete(dest, server, digest)
    gets = server.gets()
    assert len(gets) == 2 and gets[0]["range"] is None
    # A read that times out may drop what it had buffered (at most one chunk), never more.
    resumed_at = int(re.fullmatch(r"bytes=(\d+)-", gets[1]["range"]).group(1))
    assert 500_000 - CHUNK <= resumed_at <= 500_000
    assert server.bytes_served() <= FILE_SIZE + CHUNK


def test_part_left_by_killed_run_is_resumed(server, tmp_path):
    dest = tmp_path / "m.pth"
    kept = 1_234_567
    part_of(dest).write_bytes(server.data[:kept])
    digest = download(server.url, dest, expected_sha256=server.sha256, **FAST)
    assert_complete(dest, server, digest)  # the sha256 covers the bytes from the earlier run too
    gets = server.gets()
    assert [g["range"] for g in gets] == [f"bytes={kept}-"]
    assert server.bytes_served() == FILE_SIZE - kept


def test_complete_part_gets_416_and_is_finished(server, tmp_path):
    dest = tmp_path / "m.pth"
    part_of(dest).write_bytes(server.data)  # killed between the last write and the rename
    digest = download(server.url, dest, **FAST)
    assert_complete(dest, server, digest)
    assert [g["status"] for g in server.gets()] == [416]
    assert server.bytes_served() == 0


def test_part_longer_than_file_starts_over(server, tmp_path):
    dest = tmp_path / "m.pth"
    part_of(dest).write_bytes(server.data + b"junk")
    digest = download(server.url, dest, **FAST)
    assert_complete(dest, server, digest)
    assert [g["status"] for g in server.gets()] == [416, 200]


def test_server_ignoring_range_gives_correct_file(server, tmp_path):
    server.ignore_range = True
    server.cut_after = [700_000]
    dest = tmp_path / "m.pth"
    part_of(dest).write_bytes(b"stale bytes from some other file")
    digest = download(server.url, dest, **FAST)
    assert_complete(dest, server, digest)
    gets = server.gets()
    stale = len(b"stale bytes from some other file")
    assert [(g["range"], g["status"]) for g in gets] == [(f"bytes={stale}-", 200), ("bytes=700000-", 200)]


def test_file_replaced_on_server_between_attempts_is_not_spliced(server, tmp_path):
    server.cut_after = [500_000]
    server.replace_after_cut = True
    dest = tmp_path / "m.pth"
    digest = download(server.url, dest, **FAST)
    assert_complete(dest, server, digest)  # the new version, whole
    gets = server.gets()
    assert [(g["range"], g["if_range"], g["status"]) for g in gets] == [
        (None, None, 200),
        ("bytes=500000-", '"v1"', 200),
    ]


def test_compressed_response_is_decoded(server, tmp_path):
    server.gzip = True
    server.cut_after = [100_000]  # of the compressed body: a retry cannot resume it, so starts over
    dest = tmp_path / "m.pth"
    digest = download(server.url, dest, **FAST)
    assert_complete(dest, server, digest)
    assert [g["range"] for g in server.gets()] == [None, None]


def test_sha256_mismatch_raises_and_leaves_no_file(server, tmp_path):
    dest = tmp_path / "m.pth"
    wrong = "0" * 64
    with pytest.raises(PixfindError) as info:
        download(server.url, dest, expected_sha256=wrong, **FAST)
    message = str(info.value)
    assert wrong in message and server.sha256 in message and "m.pth" in message and server.url in message
    assert "\n" not in message
    assert not dest.exists() and not part_of(dest).exists() and not sidecar_of(dest).exists()


def test_http_404_is_one_clear_line(server, tmp_path):
    url = server.url.replace("model.pth", "missing.pth")
    dest = tmp_path / "m.pth"
    with pytest.raises(PixfindError) as info:
        download(url, dest, **FAST)
    message = str(info.value)
    assert "404" in message and url in message
    assert "\n" not in message and "Traceback" not in message and "Error(" not in message
    assert len(server.gets()) == 1  # a 404 is not retried
    assert not dest.exists() and not part_of(dest).exists()


def test_http_503_is_retried(server, tmp_path):
    server.statuses = [503, 503]
    digest = download(server.url, tmp_path / "m.pth", retries=2, **FAST)
    assert digest == server.sha256
    assert [g["status"] for g in server.gets()] == [503, 503, 200]


def test_http_503_gives_up_after_retries(server, tmp_path):
    server.statuses = [503] * 10
    with pytest.raises(PixfindError) as info:
        download(server.url, tmp_path / "m.pth", retries=2, **FAST)
    message = str(info.value)
    assert "503" in message and server.url in message and "3 attempts" in message
    assert len(server.gets()) == 3


def test_connection_refused(tmp_path):
    url = closed_port_url()
    dest = tmp_path / "m.pth"
    with pytest.raises(PixfindError) as info:
        download(url, dest, retries=1, **FAST)
    message = str(info.value)
    assert "connection refused" in message and url in message and "\n" not in message
    assert not dest.exists()


def test_cancel_keeps_part_and_a_later_call_resumes(server, tmp_path):
    dest = tmp_path / "m.pth"
    cancel = threading.Event()

    def on_progress(done: int, total: int | None) -> None:
        if done >= 4 * CHUNK:
            cancel.set()

    with pytest.raises(DownloadCancelled) as info:
        download(server.url, dest, on_progress=on_progress, cancel=cancel, **FAST)
    assert isinstance(info.value, PixfindError) and "cancelled" in str(info.value)
    kept = part_of(dest).stat().st_size
    assert 4 * CHUNK <= kept < FILE_SIZE
    assert part_of(dest).read_bytes() == server.data[:kept]
    assert not dest.exists()

    digest = download(server.url, dest, **FAST)
    assert_complete(dest, server, digest)
    assert server.gets()[-1]["range"] == f"bytes={kept}-"


def test_cancel_before_start_makes_no_request(server, tmp_path):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(DownloadCancelled):
        download(server.url, tmp_path / "m.pth", cancel=cancel, **FAST)
    assert server.log == []


def test_already_downloaded_returns_without_network(server, tmp_path):
    dest = tmp_path / "m.pth"
    first = download(server.url, dest, **FAST)
    server.log.clear()
    assert download(server.url, dest, **FAST) == first
    assert download(server.url, dest, expected_sha256=first, **FAST) == first
    assert download(closed_port_url(), dest, expected_sha256=first, **FAST) == first
    assert server.log == []


def test_existing_file_without_sidecar_is_verified_by_expected_hash(server, tmp_path):
    dest = tmp_path / "m.pth"
    dest.write_bytes(server.data)
    assert download(closed_port_url(), dest, expected_sha256=server.sha256, **FAST) == server.sha256
    assert sidecar_of(dest).read_text().split()[0] == server.sha256


def test_sidecar_not_matching_expected_downloads_again(server, tmp_path):
    dest = tmp_path / "m.pth"
    dest.write_bytes(b"an older checkpoint")
    sidecar_of(dest).write_text(hashlib.sha256(b"an older checkpoint").hexdigest() + "  m.pth\n")
    digest = download(server.url, dest, expected_sha256=server.sha256, **FAST)
    assert_complete(dest, server, digest)
    assert len(server.gets()) == 1


def test_disk_full_names_the_destination_and_keeps_part(server, tmp_path, monkeypatch):
    dest = tmp_path / "m.pth"
    real_open = open

    class FullDisk:
        def __init__(self, f):
            self.f, self.written = f, 0

        def write(self, data):
            if self.written + len(data) > 5 * CHUNK:
                raise OSError(errno.ENOSPC, "No space left on device")
            self.written += len(data)
            return self.f.write(data)

        def __getattr__(self, name):
            return getattr(self.f, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.f.close()

    def fake_open(path, mode="r", *args, **kwargs):
        f = real_open(path, mode, *args, **kwargs)
        return FullDisk(f) if "b" in mode and Path(path) == part_of(dest) else f

    # The .part is written by desktop_app.download.transfer: patch open() where it is looked up.
    monkeypatch.setattr(download_transfer, "open", fake_open, raising=False)
    with pytest.raises(PixfindError) as info:
        download(server.url, dest, **FAST)
    message = str(info.value)
    assert "disk full" in message.lower() and str(dest) in message and "\n" not in message
    assert part_of(dest).exists() and not dest.exists()
    monkeypatch.undo()

    digest = download(server.url, dest, **FAST)  # after freeing space: resumes
    assert_complete(dest, server, digest)
    assert server.gets()[-1]["range"] == f"bytes={5 * CHUNK}-"
