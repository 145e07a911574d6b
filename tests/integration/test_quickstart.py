"""The README's first command, as a newcomer runs it: install the offline starter model, index
the bundled sample photos, search them by text. Real build, real files, real subprocesses."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

SAMPLES = Path(__file__).parents[2] / "desktop_app" / "resources" / "sample-photos"
PIXFIND = str(Path(sys.executable).parent / "pixfind")


def pixfind(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([PIXFIND, *args], capture_output=True, text=True, timeout=timeout)


def test_install_starter_index_samples_and_search(tmp_path):
    run = pixfind("models", "install", "starter")
    assert run.returncode == 0, run.stderr
    assert "installed model starter (384-d)" in run.stdout
    assert "starter model: good for everyday objects" in run.stderr  # said once...
    again = pixfind("models", "install", "starter")
    assert again.returncode == 0 and "already installed" in again.stdout

    index = pixfind("index", str(SAMPLES))
    assert index.returncode == 0, index.stderr
    assert "9 photos encoded" in index.stdout
    assert "starter model" not in index.stderr  # ...and only once
    # The command ends without the interpreter's teardown (desktop_app.cli.QUICK_EXIT_COMMANDS), but
    # only after closing its library: the catalogue's write-ahead log is checkpointed and gone.
    from desktop_app.paths import default_library_dir

    library = default_library_dir()
    assert (library / "catalogue.db").is_file() and not (library / "catalogue.db-wal").exists()

    expected = {
        "a cup of coffee": "coffee.jpg",
        "a cat": "cat.jpg",
        "a rocket launch": "rocket-launch.jpg",
        "a Chinese temple": "temple.jpg",
        "an astronaut": "astronaut.jpg",
    }
    for query, first in expected.items():
        # --all: the ranking itself (the starter model barely separates "an astronaut" from the
        # rest, so the good-match cut-off rightly calls none of them good; tested on its own)
        search = pixfind("search", query, "--json", "--limit", "3", "--all")
        assert search.returncode == 0, search.stderr
        rows = json.loads(search.stdout)
        assert Path(rows[0]["path"]).name == first, (query, rows)
    # the README's query: one good match, the coffee
    readme = json.loads(pixfind("search", "a cup of coffee", "--json").stdout)
    assert [Path(r["path"]).name for r in readme] == ["coffee.jpg"]

    table = pixfind("search", "a cup of coffee", "--limit", "2")
    assert table.stdout.splitlines()[0].split() == ["rank", "score", "date", "path"]
    assert "coffee.jpg" in table.stdout.splitlines()[1]
