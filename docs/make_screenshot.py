"""Make the README's screenshots: the real window, a real model, real photos.

    xvfb-run -s "-screen 0 1400x900x24" python docs/make_screenshot.py --pack PACK_DIR
    xvfb-run -s "-screen 0 1400x900x24" python docs/make_screenshot.py            # builds the starter model (1-2 min)

Writes four PNGs into docs/ (or --out-dir):

- screenshot-search.png      a text search: the good matches, then the folded "N weaker matches" bar
- screenshot-duplicates.png  Library > Find Duplicates... with a real group (a resized, recompressed copy)
- screenshot-detail.png      the detail view of a photo whose EXIF carries GPS (a place name shows)
- screenshot-dark.png        the same search in a dark palette, the weaker matches unfolded

Everything happens in a throwaway PIXFIND_HOME: the pack is installed there (or the starter
model is built there), a folder is made from desktop_app/resources/sample-photos plus a few
scikit-image photos, a resized copy of one of them and a copy of another with camera, date
and GPS EXIF (Paris), the folder is indexed through the window, and the shots are taken.
Each PNG is quantized to a palette with Pillow so that the repository stays small.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

SAMPLES = REPO / "desktop_app" / "resources" / "sample-photos"
# scikit-image photos added to the sample photos (files inside the skimage package: no download)
SKIMAGE = {
    "motorcycle.jpg": "motorcycle_left.png",
    "coins.jpg": "coins.png",
    "moon.jpg": "moon.png",
    "retina.jpg": "retina.jpg",
    "brick-wall.jpg": "brick.png",
}
DUPLICATE_OF, DUPLICATE = "temple.jpg", "temple (small copy).jpg"
GPS_PHOTO = "coffee.jpg"
PARIS = (48.8566, 2.3522)


def make_photos(folder: Path) -> None:
    import skimage.data
    from PIL import Image

    skimage_data = Path(skimage.data.__file__).parent
    folder.mkdir(parents=True)
    for src in sorted(SAMPLES.glob("*.jpg")):
        shutil.copy2(src, folder / src.name)
    for name, file in SKIMAGE.items():
        with Image.open(skimage_data / file) as im:
            image = im.convert("RGB")
        image.thumbnail((800, 800), Image.Resampling.LANCZOS)
        image.save(folder / name, quality=88)
    # a near-duplicate: the same picture, smaller and more compressed
    with Image.open(folder / DUPLICATE_OF) as im:
        small = im.convert("RGB").resize((im.width * 3 // 5, im.height * 3 // 5), Image.Resampling.LANCZOS)
    small.save(folder / DUPLICATE, quality=62)
    # camera, date and GPS in the EXIF of one photo: the detail view names the place
    with Image.open(folder / GPS_PHOTO) as im:
        image = im.convert("RGB")
    image.save(folder / GPS_PHOTO, quality=92, exif=gps_exif(*PARIS))


def gps_exif(lat: float, lon: float):
    from PIL import Image
    from PIL.ExifTags import GPS, IFD, Base

    def dms(value: float):
        value = abs(value)
        d = int(value)
        m = int((value - d) * 60)
        s = round((value - d - m / 60) * 3600, 2)
        return (d, m, s)

    exif = Image.Exif()
    exif[Base.Make] = "FUJIFILM"
    exif[Base.Model] = "X-T3"
    exif[Base.DateTime] = "2024:05:18 09:42:10"
    exif.get_ifd(IFD.Exif)[Base.DateTimeOriginal] = "2024:05:18 09:42:10"
    gps = exif.get_ifd(IFD.GPSInfo)
    gps[GPS.GPSVersionID] = b"\x02\x03\x00\x00"
    gps[GPS.GPSLatitudeRef] = "N" if lat >= 0 else "S"
    gps[GPS.GPSLatitude] = dms(lat)
    gps[GPS.GPSLongitudeRef] = "E" if lon >= 0 else "W"
    gps[GPS.GPSLongitude] = dms(lon)
    return exif


def save_small(pixmap, path: Path, max_kb: int = 300) -> None:
    """The grab as an optimised palette PNG (256 colours, dithered), under ``max_kb`` where it can be."""
    from PIL import Image
    from PySide6.QtCore import QBuffer, QIODevice

    buffer = QBuffer()
    buffer.open(QIODevice.WriteOnly)
    pixmap.toImage().save(buffer, "PNG")
    image = Image.open(io.BytesIO(bytes(buffer.data()))).convert("RGB")
    for colours in (256, 192, 128):
        small = image.quantize(colours, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.FLOYDSTEINBERG)
        small.save(path, optimize=True)
        if path.stat().st_size <= max_kb * 1024:
            break
    print(f"{path}  {image.width}x{image.height}  {path.stat().st_size // 1024} KB", flush=True)


def dark_palette():
    """A dark palette with every role set (what a dark desktop gives the app)."""
    from PySide6.QtGui import QColor, QPalette

    p = QPalette()
    roles = {
        QPalette.Window: "#262626", QPalette.WindowText: "#e8e8e8", QPalette.Base: "#1c1c1c",
        QPalette.AlternateBase: "#303030", QPalette.Text: "#e8e8e8", QPalette.Button: "#333333",
        QPalette.ButtonText: "#e8e8e8", QPalette.BrightText: "#ffffff", QPalette.Light: "#4a4a4a",
        QPalette.Midlight: "#3a3a3a", QPalette.Mid: "#464646", QPalette.Dark: "#1a1a1a", QPalette.Shadow: "#000000",
        QPalette.Highlight: "#3d7ee0", QPalette.HighlightedText: "#ffffff", QPalette.Link: "#6ea8ff",
        QPalette.ToolTipBase: "#333333", QPalette.ToolTipText: "#e8e8e8", QPalette.PlaceholderText: "#9a9a9a",
    }  # fmt: skip
    for role, colour in roles.items():
        p.setColor(role, QColor(colour))
    for role in (QPalette.WindowText, QPalette.Text, QPalette.ButtonText):
        p.setColor(QPalette.Disabled, role, QColor("#8a8a8a"))
    return p


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pack", help="a model pack directory (default: build the offline starter model)")
    ap.add_argument("--query", default="a building", help="the text search shown (one with a few good matches)")
    ap.add_argument("--out-dir", default=str(Path(__file__).resolve().parent))
    ap.add_argument("--size", default="1200x760", help="the main window's size")
    ap.add_argument("--keep", action="store_true", help="keep the throwaway PIXFIND_HOME (printed)")
    args = ap.parse_args()
    out = Path(args.out_dir)
    home = Path(tempfile.mkdtemp(prefix="pixfind-shot-"))
    os.environ["PIXFIND_HOME"] = str(home)
    # the folder the photos are in shows in the window: a short, plain path
    photos = Path(tempfile.gettempdir()) / f"pixfind-demo-{os.getpid()}" / "Pictures"
    make_photos(photos)

    from desktop_app import model_store
    from desktop_app.services import models as model_service

    if args.pack:
        pack = model_store.install(Path(args.pack))
        model_service.use(pack.name)
    else:
        print("building the starter model…", flush=True)
        model_service.use(model_service.install_starter().name)

    from PySide6.QtCore import QEventLoop

    from desktop_app.gui import create_app
    from desktop_app.gui.main_window import MainWindow
    from desktop_app.gui.styles import app_stylesheet

    app = create_app()
    w = MainWindow(str(home / "library"), watch=False)
    width, height = (int(x) for x in args.size.split("x"))
    w.resize(width, height)
    w.move(0, 0)
    w.show()
    w.activateWindow()  # focus rings as a user sees them (Xvfb has no window manager to do it)

    def pump(cond, timeout=180.0, what=""):
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            app.processEvents(QEventLoop.AllEvents, 20)
            time.sleep(0.005)
        if not cond():
            raise SystemExit(f"timed out waiting for {what}")

    def settle(seconds=1.0):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents(QEventLoop.AllEvents, 20)
            time.sleep(0.005)

    def thumbnails_in():
        w.loader.wait(10000)
        settle(0.6)

    pump(lambda: w.model_ready, what="the model")
    done = []
    w.index_finished.connect(lambda: done.append(1))
    w.add_folder(str(photos))
    pump(lambda: done, what="indexing")
    settle(1.5)

    def search(text: str) -> None:
        n = []
        w.search_finished.connect(lambda k: n.append(k))
        w.search.setFocus()
        w.search.setText(text)
        w.searcher.run_now()
        pump(lambda: n and not w.searcher.busy, 60, "the search")
        w.search_finished.disconnect()
        pump(lambda: w.last_result is not None and w.last_result.complete, 60, "the full list")
        w.statusBar().clearMessage()  # "15 photos encoded in 2.2 s" would hide the result count
        thumbnails_in()

    # 1. search: good matches, then the folded "N weaker matches" bar
    search(args.query)
    good, total = w.model.good, w.model.rowCount()
    print(f"query {args.query!r}: {good} good, {total - good} weaker", flush=True)
    if not 0 < good < total:
        print("warning: this query shows no good/weaker split; try another --query", flush=True)
    w.view.setFocus()
    w.view.setCurrentIndex(w.model.index(0))
    w.search.setFocus()  # the query field's focus ring, the first result selected
    w.search.end(False)
    thumbnails_in()
    save_small(w.grab(), out / "screenshot-search.png")

    # 2. the detail view of the photo with GPS EXIF (a place name from offline reverse geocoding)
    search("")  # browse: every photo
    row = next(i for i, it in enumerate(w.model.items) if it.name == GPS_PHOTO)
    w.view.setCurrentIndex(w.model.index(row))
    w.photo_actions.open_detail(row)
    dialog = w.photo_actions.detail
    dialog.resize(1100, 700)
    pump(lambda: dialog.isVisible(), 10, "the detail view")
    settle(2.0)
    location = dialog.fields["Location"][1].text()
    print(f"detail: {GPS_PHOTO} location {location!r}", flush=True)
    save_small(dialog.grab(), out / "screenshot-detail.png")
    dialog.close()

    # 3. Library > Find Duplicates...
    w.show_duplicates()
    dup = w.duplicates_dialog
    dup.resize(900, 480)
    pump(lambda: getattr(dup, "groups", None) is not None, 120, "the duplicate groups")
    settle(2.0)
    print(f"duplicates: {[[m.item.name for m in g.members] for g in dup.groups]}", flush=True)
    save_small(dup.grab(), out / "screenshot-duplicates.png")
    dup.close()
    settle(0.5)

    # 4. the search again, in a dark palette (as on a desktop in dark mode: palette, then the style sheet)
    app.setPalette(dark_palette())
    app.setStyleSheet(app_stylesheet())
    # (with the weaker matches unfolded: the whole grid, and the open section's bar)
    w.activateWindow()
    search(args.query)
    w.view.weak_button.setChecked(True)
    w.view.setFocus()
    w.view.setCurrentIndex(w.model.index(0))
    w.search.setFocus()
    w.search.end(False)
    thumbnails_in()
    save_small(w.grab(), out / "screenshot-dark.png")

    w.close()
    settle(0.5)
    if args.keep:
        print(f"kept {home} and {photos}")
    else:
        shutil.rmtree(home, ignore_errors=True)
        shutil.rmtree(photos.parent, ignore_errors=True)


if __name__ == "__main__":
    main()
