"""pixfind against rclip, side by side on the same ONNX graphs and the same photos, as ratios.

rclip (https://github.com/yurijmikhalevich/rclip) is a benchmark peer, never a dependency: it is
installed with pip into its own virtual environment under ``--work``. Both tools run one
random-weight open_clip ViT-B-32-256 (``create_model(..., pretrained=None)``, seeded): pixfind as a
model pack exported by ``model_training.export``, rclip from the same two graphs placed where
rclip 3.3 loads its model (``$RCLIP_DATADIR/ViT-B-32-256-datacomp_s34b_b86k/{visual,textual}.onnx``
with the graph input and output renamed to the ``input``/``output`` rclip feeds, and open_clip's
BPE vocabulary as ``$RCLIP_DATADIR/tokenizer/bpe_simple_vocab_16e6.txt.gz``), so rclip downloads
nothing. rclip loads its sessions with ``onnxruntime.InferenceSession`` on the CPU provider and
L2-normalises the outputs itself; pixfind's graphs already end normalised.

Before timing, the embeddings of the same photos from both catalogues are compared (cosine).
Then, back to back, per photo set (12 MP and 2 MP):

- indexing: ``pixfind index DIR`` into a new library / ``rclip -f QUERY`` in DIR with a new data dir
  (rclip always searches after indexing: one query is part of its figure)
- no-change re-index: the same again
- cold search: ``pixfind search QUERY`` / ``rclip --no-indexing -f QUERY``
- warm query: in one process each, the median of repeated text queries after a first one
- peak memory (max RSS) of the indexing run

    python benchmarks/vs_rclip.py --photos-12mp 60 --photos-2mp 60
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from benchmarks.machine import cpu_model, loadavg

RCLIP_VERSION = "3.3.0"
RCLIP_MODEL_SUBDIR = "ViT-B-32-256-datacomp_s34b_b86k"
ARCH = "ViT-B-32-256"
PACK_NAME = "vitb32-256-random"
QUERIES = ["a red car", "a dog on a beach", "mountains in the snow", "a birthday cake", "two people talking"]
PIXFIND = [sys.executable, "-m", "desktop_app"]


# ---------------------------------------------------------------------- setup


def ensure_rclip(work: Path) -> Path:
    venv = work / "rclip-venv"
    exe = venv / "bin" / "rclip"
    if not exe.exists():
        print(f"installing rclip=={RCLIP_VERSION} into {venv}", flush=True)
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(venv / "bin" / "pip"), "install", "-q", f"rclip=={RCLIP_VERSION}"], check=True)
    return venv


def _rename_io(src: Path, dst: Path) -> None:
    """The graph with its one input called "input" and its first output "output" (what rclip feeds)."""
    import onnx

    model = onnx.load(str(src))
    graph = model.graph
    renames = {graph.input[0].name: "input", graph.output[0].name: "output"}
    for node in graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    graph.input[0].name, graph.output[0].name = "input", "output"
    onnx.save(model, str(dst))


def ensure_models(work: Path) -> tuple[Path, Path]:
    """(pixfind pack, rclip data dir) holding the same random-weight ViT-B-32-256 graphs."""
    pack = work / "pack"
    rclip_data = work / "rclip-model"
    if not _current_export(pack):  # none yet, or one an older pixfind wrote (a fixed-length text graph)
        shutil.rmtree(pack, ignore_errors=True)
        shutil.rmtree(rclip_data, ignore_errors=True)
        import open_clip
        import torch

        from model_training.export import export_pack

        torch.manual_seed(0)
        checkpoint = work / "vitb32-256-random.pt"
        torch.save(open_clip.create_model(ARCH, pretrained=None).state_dict(), checkpoint)
        print("exporting the random ViT-B-32-256 pack", flush=True)
        export_pack(ARCH, pack, checkpoint=checkpoint, name=PACK_NAME, log=lambda m: print("  " + m, flush=True))
    model_dir = rclip_data / RCLIP_MODEL_SUBDIR
    if not (model_dir / "textual.onnx").exists():
        import open_clip

        model_dir.mkdir(parents=True, exist_ok=True)
        _rename_io(pack / "visual.onnx", model_dir / "visual.onnx")
        _rename_io(pack / "textual.onnx", model_dir / "textual.onnx")
        (rclip_data / "tokenizer").mkdir(exist_ok=True)
        shutil.copy(Path(open_clip.__file__).parent / "bpe_simple_vocab_16e6.txt.gz", rclip_data / "tokenizer")
    return pack, rclip_data


def _current_export(pack: Path) -> bool:
    """Whether ``pack`` is what today's export writes: the pack format of an fp32 export, with a trimmable text tower."""
    from desktop_app.pack import DEFAULT_FORMAT

    try:
        data = json.loads((pack / "pack.json").read_text())
    except (OSError, ValueError):
        return False
    return data.get("format_version") == DEFAULT_FORMAT and data.get("text", {}).get("sequence") == "trim"


def _same_files(installed: Path, pack: Path) -> bool:
    try:
        return json.loads((installed / "pack.json").read_text())["files"] == json.loads((pack / "pack.json").read_text())["files"]
    except (OSError, ValueError, KeyError):
        return False


def make_photos(folder: Path, n: int, size: tuple[int, int], seed: int) -> Path:
    """n JPEGs of smooth shapes plus fine grain (so they compress like photos, not flat colour)."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    have = len(list(folder.glob("*.jpg")))
    rng = np.random.default_rng(seed + have)
    for i in range(have, n):
        small = rng.integers(0, 256, (6, 8, 3), dtype=np.uint8)
        image = Image.fromarray(small).resize(size, Image.Resampling.BICUBIC)
        grain = rng.integers(-12, 13, (size[1] // 4, size[0] // 4, 3), dtype=np.int16)
        arr = np.asarray(image, dtype=np.int16)
        arr[: grain.shape[0] * 4, : grain.shape[1] * 4] += np.repeat(np.repeat(grain, 4, 0), 4, 1)
        Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).save(folder / f"photo{i:04d}.jpg", quality=88)
    return folder


# ---------------------------------------------------------------------- running


def timed(cmd: list[str], env: dict, cwd: Path | None = None) -> tuple[float, float, str]:
    """(wall seconds, peak RSS MiB, stdout) of a command run under /usr/bin/time."""
    with tempfile.NamedTemporaryFile("r", suffix=".time") as tf:
        run = subprocess.run(
            ["/usr/bin/time", "-o", tf.name, "-f", "%e %M", *cmd], env=env, cwd=cwd, capture_output=True, text=True
        )
        if run.returncode != 0:
            raise SystemExit(f"{' '.join(map(str, cmd))} failed ({run.returncode}):\n{run.stderr[-3000:]}")
        wall, kb = tf.read().split()[-2:]
    return float(wall), int(kb) / 1024, run.stdout


PIXFIND_SOURCE = REPO  # --pixfind-source: another checkout's desktop_app (a "before" run)


def pixfind_env(home: Path) -> dict:
    # OCR off: rclip reads no text in photos
    return dict(os.environ, PIXFIND_HOME=str(home), PYTHONPATH=str(PIXFIND_SOURCE), PIXFIND_OCR="off")


def rclip_env(data: Path) -> dict:
    return dict(os.environ, RCLIP_DATADIR=str(data), PYTHONPATH="")


def fresh_rclip_data(model_data: Path, where: Path) -> Path:
    """A new rclip data dir (empty database) whose model files are links to the shared ones."""
    shutil.rmtree(where, ignore_errors=True)
    where.mkdir(parents=True)
    for name in (RCLIP_MODEL_SUBDIR, "tokenizer"):
        (where / name).symlink_to(model_data / name, target_is_directory=True)
    return where


WARM_PIXFIND = textwrap.dedent(
    """
    import json, sys, time
    from desktop_app.services.library import LibraryService
    from desktop_app.services.records import SearchRequest
    queries = json.loads(sys.argv[2])
    with LibraryService(sys.argv[1]) as s:
        s.load_model()
        s.search(SearchRequest(text="warm up", limit=10))
        times = []
        for q in queries * 3:
            s._text_vectors.clear()  # a new query each time: text encoding included
            t = time.perf_counter(); s.search(SearchRequest(text=q, limit=10)); times.append(time.perf_counter() - t)
    times.sort(); print(json.dumps({"p50": times[len(times) // 2]}))
    """
)

WARM_RCLIP = textwrap.dedent(
    """
    import json, os, sys, time
    from rclip.main import init_rclip
    queries = json.loads(sys.argv[2])
    rclip, model, db = init_rclip(sys.argv[1], 8, no_indexing=True)
    rclip.search("warm up", sys.argv[1], 10)
    times = []
    for q in queries * 3:
        t = time.perf_counter(); rclip.search(q, sys.argv[1], 10); times.append(time.perf_counter() - t)
    times.sort(); print(json.dumps({"p50": times[len(times) // 2]}))
    """
)


def compare_embeddings(library: Path, rclip_db: Path) -> dict:
    con = sqlite3.connect(library / "catalogue.db")
    mine = {}
    for path, vector in con.execute("SELECT p.path, e.vector FROM photos p JOIN embeddings e ON e.photo_id = p.id"):
        mine[os.fsdecode(path) if isinstance(path, bytes) else path] = np.frombuffer(vector, np.float32)
    con.close()
    con = sqlite3.connect(rclip_db)
    cos = []
    for path, vector in con.execute("SELECT filepath, vector FROM images"):
        if path in mine:
            v = np.frombuffer(vector, np.float32)
            cos.append(float(mine[path] @ v / np.linalg.norm(v) / np.linalg.norm(mine[path])))
    con.close()
    return {"photos_compared": len(cos), "cosine_min": round(min(cos), 6) if cos else None}


def run_set(label: str, photos: Path, work: Path, venv: Path, rclip_model: Path, home: Path, rounds: int) -> dict:
    rclip = str(venv / "bin" / "rclip")
    rpy = str(venv / "bin" / "python")
    rows: dict[str, list[tuple[float, float]]] = {}
    mem: list[tuple[float, float]] = []
    agree = None
    for r in range(rounds):
        lib = work / f"lib-{label}"
        shutil.rmtree(lib, ignore_errors=True)
        rdata = fresh_rclip_data(rclip_model, work / f"rclip-data-{label}")
        penv, renv = pixfind_env(home), rclip_env(rdata)
        q = QUERIES[0]
        order = (0, 1) if r % 2 == 0 else (1, 0)  # alternate who goes first

        def both(pix_cmd, rcl_cmd, key, pcwd=None, order=order, penv=penv, renv=renv):
            out = [None, None]
            for who in order:
                if who == 0:  # run from --work: `python -m` puts the current folder first on sys.path
                    out[0] = timed(pix_cmd, penv, pcwd or work)
                else:
                    out[1] = timed(rcl_cmd, renv, photos)
            rows.setdefault(key, []).append((out[0][0], out[1][0]))
            return out

        idx = both([*PIXFIND, "index", str(photos), "--library", str(lib)], [rclip, "-f", "-t", "1", q], "indexing")
        mem.append((idx[0][1], idx[1][1]))
        if agree is None:
            agree = compare_embeddings(lib, rdata / "db.sqlite3")
            print(f"  embeddings agree: {agree}", flush=True)
        both([*PIXFIND, "index", "--library", str(lib)], [rclip, "-f", "-t", "1", q], "no-change re-index")
        both(
            [*PIXFIND, "search", q, "--library", str(lib), "--all", "-n", "10"], [rclip, "-n", "-f", "-t", "10", q], "cold search"
        )
        qs = json.dumps(QUERIES)
        for who in order:
            if who == 0:
                pw = json.loads(
                    subprocess.run(
                        [sys.executable, "-c", WARM_PIXFIND, str(lib), qs],
                        env=penv,
                        cwd=work,
                        capture_output=True,
                        text=True,
                        check=True,
                    ).stdout
                )
            else:
                rw = json.loads(
                    subprocess.run(
                        [rpy, "-c", WARM_RCLIP, str(photos), qs], env=renv, cwd=photos, capture_output=True, text=True, check=True
                    ).stdout
                )
        rows.setdefault("warm query (p50)", []).append((pw["p50"], rw["p50"]))
        print(f"  round {r + 1}: " + ", ".join(f"{k} {v[-1][0]:.3f}/{v[-1][1]:.3f} s" for k, v in rows.items())
              + f" (load {loadavg()})", flush=True)  # fmt: skip
    rows_mem = {"peak memory while indexing (MiB)": mem}
    return {"set": label, "agree": agree, "rows": rows, "memory": rows_mem}


def print_table(results: list[dict]) -> None:
    print()
    print(f"{'photo set':<10} {'measure':<34} {'pixfind':>10} {'rclip':>10} {'pixfind÷rclip':>15}")
    for res in results:
        for key, pairs in {**res["rows"], **res["memory"]}.items():
            p = float(np.median([a for a, _ in pairs]))
            r = float(np.median([b for _, b in pairs]))
            ratios = [a / b for a, b in pairs if b]
            span = f"{min(ratios):.2f}–{max(ratios):.2f}" if len(ratios) > 1 else f"{ratios[0]:.2f}"
            unit = "" if "MiB" in key else " s"
            print(f"{res['set']:<10} {key:<34} {p:>8.3f}{unit:2} {r:>8.3f}{unit:2} {span:>15}")
        print(f"{res['set']:<10} embeddings agree: {res['agree']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "pixfind-vs-rclip")
    parser.add_argument("--photos-12mp", type=int, default=60)
    parser.add_argument("--photos-2mp", type=int, default=60)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--pixfind-source", type=Path, default=REPO, help="folder holding the desktop_app to measure")
    args = parser.parse_args()
    global PIXFIND_SOURCE
    PIXFIND_SOURCE = args.pixfind_source
    args.work.mkdir(parents=True, exist_ok=True)
    print(f"machine: {cpu_model()}, {os.cpu_count()} CPUs, load {loadavg()}", flush=True)
    venv = ensure_rclip(args.work)
    pack, rclip_model = ensure_models(args.work)
    home = args.work / "pixfind-home"
    if not _same_files(home / "data" / "models" / PACK_NAME, pack):  # not installed, or an older export
        env = pixfind_env(home)
        subprocess.run(
            [*PIXFIND, "models", "import", str(pack), "--replace"], env=env, cwd=args.work, check=True, capture_output=True
        )
        subprocess.run([*PIXFIND, "models", "use", PACK_NAME], env=env, cwd=args.work, check=True, capture_output=True)
    sets = []
    if args.photos_12mp:
        sets.append(("12MP", make_photos(args.work / "photos-12mp", args.photos_12mp, (4000, 3000), 1)))
    if args.photos_2mp:
        sets.append(("2MP", make_photos(args.work / "photos-2mp", args.photos_2mp, (1632, 1224), 2)))
    results = []
    for label, photos in sets:
        print(f"{label}: {len(list(photos.glob('*.jpg')))} photos", flush=True)
        t = time.perf_counter()
        results.append(run_set(label, photos, args.work, venv, rclip_model, home, args.rounds))
        print(f"  ({time.perf_counter() - t:.0f} s)", flush=True)
    print_table(results)
    print(f"load at the end: {loadavg()}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
