"""Make docs/screenshot.png: the real window under Xvfb with a real library on screen.

    xvfb-run -s "-screen 0 1600x1000x24" python docs/make_screenshot.py --pack PACK_DIR --photos DIR --query "a cat"
    pngquant --quality 70-95 --output docs/screenshot.png --force docs/screenshot.png   # keeps it under 500 KB

Uses a throwaway PIXFIND_HOME; the pack is installed there, DIR is indexed, a query is typed.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pack", required=True)
    ap.add_argument("--photos", required=True)
    ap.add_argument("--query", default="")
    ap.add_argument("--similar", default=None, help="file name of a photo to 'find similar' on")
    ap.add_argument("--out", default=str(Path(__file__).resolve().parent / "screenshot.png"))
    ap.add_argument("--size", default="1360x860")
    args = ap.parse_args()
    home = tempfile.mkdtemp(prefix="pixfind-shot-")
    os.environ["PIXFIND_HOME"] = home
    from desktop_app import model_store

    model_store.install(Path(args.pack))
    from PySide6.QtCore import QEventLoop
    from PySide6.QtGui import QGuiApplication

    from desktop_app.gui import create_app
    from desktop_app.gui.main_window import MainWindow

    app = create_app()
    w = MainWindow(os.path.join(home, "library"), watch=False)
    width, height = (int(x) for x in args.size.split("x"))
    w.resize(width, height)
    w.show()

    def pump(cond, timeout=120.0):
        end = time.monotonic() + timeout
        while not cond() and time.monotonic() < end:
            app.processEvents(QEventLoop.AllEvents, 20)
            time.sleep(0.005)

    def settle(seconds=1.0):
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            app.processEvents(QEventLoop.AllEvents, 20)
            time.sleep(0.005)

    pump(lambda: w.model_ready)
    done = []
    w.index_finished.connect(lambda: done.append(1))
    w.add_folder(args.photos)
    pump(lambda: done)
    settle(1.5)
    if args.similar:
        item = next(it for it in w.model.items if it.name == args.similar)
        w.find_similar(item)
    if args.query:
        w.search.setFocus()
        w.search.setText(args.query)
    settle(2.5)
    w.view.setCurrentIndex(w.model.index(1))
    w.view.setFocus()
    settle(1.5)
    screen = QGuiApplication.primaryScreen()
    shot = screen.grabWindow(0, w.frameGeometry().x(), w.frameGeometry().y(), w.frameGeometry().width(), w.frameGeometry().height())
    if shot.isNull() or shot.width() < 100:
        shot = w.grab()
    shot.save(args.out, "PNG")
    print(args.out, shot.width(), shot.height())
    w.close()


if __name__ == "__main__":
    main()
