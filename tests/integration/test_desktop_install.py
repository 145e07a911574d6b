"""`pixfind desktop install` / `uninstall` through the console script, into a temporary XDG data home."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from desktop_app.desktop_integration.icons import PNG_SIZES
from desktop_app.library.scanner import EXTENSIONS

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the freedesktop entry is Linux's")

PIXFIND = Path(sys.executable).with_name("pixfind")  # the console script of this installation


@pytest.fixture
def xdg(tmp_path) -> Path:
    folder = tmp_path / "xdg-data"
    folder.mkdir()
    return folder


def pixfind(xdg: Path, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, XDG_DATA_HOME=str(xdg), HOME=str(xdg.parent / "home"))
    return subprocess.run([str(PIXFIND), *map(str, args)], capture_output=True, text=True, env=env, timeout=120)


def tree(folder: Path) -> dict[str, tuple[bytes, int, int]]:
    """Every file under ``folder``: content, mode and mtime (an idempotent install changes none of them)."""
    return {
        str(p.relative_to(folder)): (p.read_bytes(), p.stat().st_mode, p.stat().st_mtime_ns)
        for p in sorted(folder.rglob("*"))
        if p.is_file()
    }


def test_install_writes_a_valid_menu_entry_and_the_themed_icon(xdg):
    run = pixfind(xdg, "desktop", "install")
    assert run.returncode == 0, run.stderr
    assert "pixfind added to the applications menu" in run.stdout
    entry = xdg / "applications" / "pixfind.desktop"
    assert entry.is_file()

    if shutil.which("desktop-file-validate"):
        check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
        assert check.returncode == 0 and not check.stdout.strip(), check.stdout + check.stderr
    xdg_desktop = pytest.importorskip("xdg.DesktopEntry")  # pyxdg: a real parser of the format
    parsed = xdg_desktop.DesktopEntry(str(entry))
    parsed.validate()  # raises on an error
    assert parsed.getName() == "pixfind"
    assert parsed.getGenericName() == "Photo search"
    assert parsed.getIcon() == "pixfind"
    assert {"Graphics", "Photography"} <= set(parsed.getCategories())
    assert parsed.getStartupWMClass() == "pixfind"
    assert parsed.getTryExec() == str(PIXFIND)
    assert parsed.getExec() == f"{PIXFIND} app %f"
    assert {"image/jpeg", "image/png", "image/heif", "image/x-canon-cr2"} <= set(parsed.getMimeTypes())
    actions = {a: (parsed.get("Name", group=f"Desktop Action {a}"), parsed.get("Exec", group=f"Desktop Action {a}")) for a in parsed.getActions()}
    assert actions == {
        "search-photos": ("Search photos", f"{PIXFIND} app"),
        "find-similar": ("Find similar…", f"{PIXFIND} app --similar %f"),
    }
    # the program the entry starts is this installation's pixfind, and it runs
    version = subprocess.run([parsed.getTryExec(), "--version"], capture_output=True, text=True, timeout=60)
    assert version.returncode == 0 and "pixfind" in version.stdout

    hicolor = xdg / "icons" / "hicolor"
    for size in PNG_SIZES:
        with Image.open(hicolor / f"{size}x{size}" / "apps" / "pixfind.png") as icon:
            assert icon.size == (size, size) and icon.format == "PNG"
    assert (hicolor / "scalable" / "apps" / "pixfind.svg").read_text().lstrip().startswith("<?xml")

    # the file managers' "Find similar in pixfind"
    nautilus = xdg / "nautilus" / "scripts" / "Find similar in pixfind"
    assert os.access(nautilus, os.X_OK) and f"{PIXFIND} app --similar" in nautilus.read_text()
    dolphin = xdg / "kio" / "servicemenus" / "pixfind-find-similar.desktop"
    assert os.access(dolphin, os.X_OK)
    menu = xdg_desktop.DesktopEntry(str(dolphin))
    assert menu.get("Name", group="Desktop Action pixfindFindSimilar") == "Find similar in pixfind"
    assert set(menu.getMimeTypes()) == set(parsed.getMimeTypes())


def test_the_mime_types_are_those_the_system_gives_the_extensions(xdg):
    """Each extension pixfind reads maps to the type shared-mime-info gives it (or an alias of it), where the system knows it."""
    globs, aliases = Path("/usr/share/mime/globs2"), Path("/usr/share/mime/aliases")
    if not globs.is_file():
        pytest.skip("no shared-mime-info database here")
    system: dict[str, set[str]] = {}
    for line in globs.read_text().splitlines():
        if not line.startswith("#") and line.count(":") >= 2:
            _, mime, pattern = line.split(":")[:3]
            if pattern.startswith("*.") and "*" not in pattern[2:]:
                system.setdefault(pattern[1:].lower(), set()).add(mime)
    alias = dict(line.split() for line in aliases.read_text().splitlines() if line.strip()) if aliases.is_file() else {}
    from desktop_app.desktop_integration.freedesktop import MIME_TYPES

    checked = 0
    for ext in sorted(EXTENSIONS):
        if ext in system:
            ours = MIME_TYPES[ext]
            assert ours in system[ext] or alias.get(ours) in system[ext], (ext, ours, system[ext])
            checked += 1
    assert checked >= len(EXTENSIONS) // 2  # the check ran on most of them, not on none


def test_install_twice_changes_nothing(xdg):
    first = pixfind(xdg, "desktop", "install")
    assert first.returncode == 0, first.stderr
    before = tree(xdg)
    again = pixfind(xdg, "desktop", "install")
    assert again.returncode == 0, again.stderr
    assert "already installed, nothing changed" in again.stdout
    assert tree(xdg) == before


def test_uninstall_leaves_nothing(xdg):
    assert pixfind(xdg, "desktop", "install").returncode == 0
    run = pixfind(xdg, "desktop", "uninstall")
    assert run.returncode == 0, run.stderr
    assert "files removed" in run.stdout
    assert list(xdg.rglob("*")) == []  # files, folders install created, and the caches it brought into being
    again = pixfind(xdg, "desktop", "uninstall")
    assert again.returncode == 0 and "nothing to remove" in again.stdout


def test_uninstall_keeps_what_the_user_changed_and_what_was_there_before(xdg):
    kept_by_user = xdg / "applications" / "someone-else.desktop"
    kept_by_user.parent.mkdir(parents=True)
    kept_by_user.write_text("[Desktop Entry]\nType=Application\nName=Other\nExec=other\n")
    assert pixfind(xdg, "desktop", "install").returncode == 0
    script = xdg / "nautilus" / "scripts" / "Find similar in pixfind"
    script.write_text(script.read_text() + "# my change\n")

    run = pixfind(xdg, "desktop", "uninstall")
    assert run.returncode == 0, run.stderr
    assert f"kept {script}: changed since" in run.stdout
    left = sorted(str(p.relative_to(xdg)) for p in xdg.rglob("*") if p.is_file())
    assert "applications/pixfind.desktop" not in left
    assert "applications/someone-else.desktop" in left and "nautilus/scripts/Find similar in pixfind" in left
    assert not (xdg / "icons").exists()


def test_install_never_overwrites_a_file_it_did_not_write(xdg):
    foreign = xdg / "applications" / "pixfind.desktop"
    foreign.parent.mkdir(parents=True)
    foreign.write_text("[Desktop Entry]\nType=Application\nName=My own pixfind\nExec=true\n")
    run = pixfind(xdg, "desktop", "install")
    assert run.returncode == 1
    assert run.stderr.strip() == f"pixfind: error: {foreign}: already there and not written by `pixfind desktop install`; move it away first"
    assert "My own pixfind" in foreign.read_text()
    assert not (xdg / "icons").exists()  # checked before anything was written


def test_exec_quotes_a_program_path_with_spaces_and_quotes(tmp_path):
    """The Desktop Entry spec's quoting, checked by the reference validator on an entry for an awkward path."""
    from desktop_app.desktop_integration.freedesktop import desktop_entry, exec_line

    program = '/opt/my photos/"pix$find"'
    assert exec_line(program, "app", "%f") == '"/opt/my photos/\\\\"pix\\\\$find\\\\"" app %f'
    if not shutil.which("desktop-file-validate"):
        pytest.skip("desktop-file-validate is not installed")
    entry = tmp_path / "pixfind.desktop"
    entry.write_text(desktop_entry(program))
    check = subprocess.run(["desktop-file-validate", str(entry)], capture_output=True, text=True)
    assert check.returncode == 0 and not check.stdout.strip(), check.stdout
