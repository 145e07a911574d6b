"""The service layer: the same request gives the same answer through the CLI and the services."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from desktop_app.errors import Cancelled, PixfindError
from desktop_app.library.indexer import IndexReport
from desktop_app.services import (
    LibraryService,
    NothingIndexed,
    SearchRequest,
    describe_report,
)
from desktop_app.services import models as model_service
from tests.library_helpers import make_photo

PIXFIND = str(Path(sys.executable).parent / "pixfind")


def pixfind(*args) -> subprocess.CompletedProcess:
    return subprocess.run([PIXFIND, *map(str, args)], capture_output=True, text=True, timeout=120, check=False)


@pytest.fixture
def photos(tmp_path) -> Path:
    root = tmp_path / "photos"
    for i in range(8):
        make_photo(root / ("sub" if i % 2 else "") / f"p{i}.jpg", seed=i)
    return root


@pytest.fixture
def service(tiny_model, library_dir, photos):
    with LibraryService(library_dir) as svc:
        svc.load_model()
        svc.set_ocr_enabled(False)  # reading the text in photos has tests of its own (test_ocr*.py)
        svc.index([str(photos)])
        yield svc


@pytest.mark.parametrize(
    "text, images",
    [("beach not people", []), ("2:a beach + 0.5:sunset - people", []), ("a dog", ["sub/p3.jpg"])],
)
def test_cli_and_service_rank_the_same_photos(service, library_dir, photos, text, images):
    image_args = [a for img in images for a in ("--image", photos / img)]
    cli = pixfind("search", text, *image_args, "--json", "--limit", 8, "--library", library_dir)
    assert cli.returncode == 0, cli.stderr
    by_cli = [row["path"] for row in json.loads(cli.stdout)]
    result = service.search(SearchRequest(text=text, images=[str(photos / i) for i in images], limit=8))
    assert [it.path for it in result.items] == by_cli and len(by_cli) == 8
    assert result.complete is False and result.items[0].name == os.path.basename(by_cli[0])


def test_natural_negation_is_the_minus_sign(service):
    natural = service.search(SearchRequest("a photo not people"))
    symbolic = service.search(SearchRequest("a photo - people"))
    assert [(i.id, i.score) for i in natural.items] == [(i.id, i.score) for i in symbolic.items]
    with pytest.raises(PixfindError, match="positive term"):
        service.search(SearchRequest("not a rocket"))


def test_balance_moves_the_ranking_towards_the_images(service, photos):
    example = str(photos / "p4.jpg")
    images_only = service.search(SearchRequest("a photo", images=[example], balance=1.0))
    assert images_only.items[0].path == example and images_only.items[0].score > 0.99


def test_overview_status_and_browse_are_typed(service, photos):
    overview = service.overview()
    assert overview.photos == overview.embedded == 8
    assert [(f.path, f.photos, f.present) for f in overview.folders] == [(str(photos), 8, True)]
    assert overview.first_date <= overview.last_date
    status = service.status()
    assert status.active.name == "tiny" and status.active.embedded == 8 and status.active.index.startswith("ok")
    assert status.models == {status.active.key: 8} and status.problem is None
    browsed = service.search(SearchRequest())
    assert browsed.browse and len(browsed.items) == 8 and all(it.score == 0.0 for it in browsed.items)


def test_nothing_indexed_is_its_own_error(tiny_model, library_dir):
    with LibraryService(library_dir) as svc, pytest.raises(NothingIndexed, match="no photos indexed"):
        svc.search(SearchRequest("a photo"))


def test_duplicates_are_groups_of_members(service, photos):
    """Typed groups led by the best copy; eight distinct textures never group, even at 0.0."""
    from PIL import Image

    assert service.duplicates(0.0) == []
    with Image.open(photos / "p0.jpg") as im:
        im.resize((im.width // 2, im.height // 2)).save(photos / "p0-small.jpg", quality=80)
    service.index(None)
    groups = service.duplicates(0.0)
    assert len(groups) == 1
    members = groups[0].members
    assert [os.path.basename(m.item.path) for m in members] == ["p0.jpg", "p0-small.jpg"]
    assert members[0].similarity == pytest.approx(1.0, abs=1e-5)
    assert members[1].similarity < 1.0


def test_cancel_event_stops_indexing_and_the_next_run_resumes(tiny_model, library_dir, photos):
    cancel = threading.Event()

    def progress(done, total):
        if done >= 1:
            cancel.set()

    with LibraryService(library_dir) as svc:
        svc.set_ocr_enabled(False)
        first = svc.index([str(photos)], progress=progress, cancel=cancel, batch_size=1, workers=1)
        assert first.interrupted and 0 < first.encoded < 8
        again = svc.index(None)
        assert not again.interrupted and again.encoded == 8 - first.encoded


def test_remove_folder_is_refused_while_indexing(tiny_model, library_dir, photos):
    started, release = threading.Event(), threading.Event()

    def progress(done, total):
        started.set()
        release.wait(30)

    with LibraryService(library_dir) as svc:
        worker = threading.Thread(target=svc.index, args=([str(photos)],), kwargs={"progress": progress})
        worker.start()
        try:
            assert started.wait(60)
            with pytest.raises(PixfindError, match="indexing is running"):
                svc.remove_folder(str(photos))
        finally:
            release.set()
            worker.join(60)
        assert svc.remove_folder(str(photos)) == 8
        assert svc.overview().photos == 0 and all(p.exists() for p in photos.rglob("*.jpg"))


def test_folders_commands(service, library_dir, photos):
    listed = pixfind("folders", "list", "--json", "--library", library_dir)
    assert json.loads(listed.stdout) == [{"path": str(photos), "photos": 8, "present": True}]
    service.close()
    removed = pixfind("folders", "remove", photos, "--library", library_dir)
    assert removed.returncode == 0 and "8 photos forgotten" in removed.stdout, removed.stderr
    assert "no folders yet" in pixfind("folders", "list", "--library", library_dir).stdout
    again = pixfind("folders", "remove", photos, "--library", library_dir)
    assert again.returncode == 1 and "not a folder of this library" in again.stderr
    assert len(again.stderr.strip().splitlines()) == 1


def test_describe_report_counts_in_words():
    assert describe_report(IndexReport(encoded=1, seconds=0.5)) == "1 photo encoded in 0.5 s"
    line = describe_report(IndexReport(encoded=2, unchanged=3, skipped=[("a", "b")], seconds=1))
    assert line.startswith("2 photos encoded, 3 unchanged in 1.0 s; 1 file skipped")


def test_model_service_lists_describes_and_cancels(tiny_model, tiny_checkpoint):
    from tests.conftest import TINY_CONFIG
    from tests.http_server import serving

    [model] = model_service.installed()
    assert (model.name, model.dim, model.default) == ("tiny", 64, True)
    assert model_service.describe("tiny") == model.source and "tiny-vit" in model.source
    assert model_service.active() == "tiny"
    cancel = threading.Event()
    cancel.set()
    with serving(tiny_checkpoint.read_bytes(), "/tiny.pth") as server, pytest.raises(Cancelled):
        model_service.pull("tiny-cancelled", url=server.url, arch=str(TINY_CONFIG), cancel=cancel)
    assert not model_service.is_installed("tiny-cancelled")
