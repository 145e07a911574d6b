"""Query latency and recall: hnswlib (as pixfind configures it) against exact NumPy search.

Vectors are clustered and share a common direction, like CLIP image embeddings (random
unit vectors would make approximate search look unrealistically easy or hard). For each
size: build time, p50/p95 latency of hnswlib and of NumPy brute force (what rclip does),
recall@10 of hnswlib against exact search for each ef, index bytes per photo, catalogue
bytes per photo (a real catalogue with --catalogue-rows photos), and the process's peak
memory. With --pack, the text encoder's latency (the rest of a text query) is measured too.

With --library, a warm text query through the library service as the window runs it (the first
page of 240, the cut-off and the catalogue rows included) on an existing library, e.g. the one
benchmarks/gui_startup.py builds: p50 of new queries (text encoding included) and of queries
whose text is cached (search as you type after a backspace), with their steps; and the vector
search of the first page alone against the good-match cut-off's larger sample. A random-weight
pack has no reliable calibration, so its queries skip the cut-off; --calibration gives a copy of
the pack one, to measure the path a real model's queries take; --text-precision int8 measures the
same pack with its text tower quantised as `pixfind export --text-precision int8` does.

    python benchmarks/query_latency.py --sizes 10000,100000,1000000 --dim 768
    PIXFIND_HOME=/tmp/pixfind-gui-bench/home python benchmarks/query_latency.py --library /tmp/pixfind-gui-bench/library
    ... --library /tmp/pixfind-gui-bench/library --calibration 0.17,0.05,0.0
    ... --library /tmp/pixfind-gui-bench/library --text-precision int8
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import sys
import tempfile
import time
from pathlib import Path

import hnswlib
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from desktop_app.library import vector_index


def clip_like(n: int, dim: int, rng, clusters: int = 2000, latent: int = 64, chunk: int = 100000) -> np.ndarray:
    """Unit vectors near a low-dimensional, clustered manifold with a shared direction, as CLIP
    embeddings are (their intrinsic dimension is far below 768)."""
    state = np.random.default_rng(12345)  # the same manifold for data and queries
    common = state.standard_normal(dim).astype(np.float32)
    common /= np.linalg.norm(common)
    basis = state.standard_normal((latent, dim)).astype(np.float32) / np.sqrt(latent)
    centres = state.standard_normal((clusters, latent)).astype(np.float32)
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        m = min(chunk, n - start)
        z = centres[rng.integers(0, clusters, m)] + 0.5 * rng.standard_normal((m, latent)).astype(np.float32)
        v = 1.5 * common + z @ basis + 0.02 * rng.standard_normal((m, dim)).astype(np.float32)
        out[start : start + m] = v / np.linalg.norm(v, axis=1, keepdims=True)
    return out


def percentiles(ms: list[float]) -> dict:
    return {"p50_ms": round(float(np.percentile(ms, 50)), 3), "p95_ms": round(float(np.percentile(ms, 95)), 3)}


def catalogue_bytes_per_photo(rows: int, dim: int) -> float:
    from desktop_app.library.catalogue import Embedding, Folder, Photo
    from desktop_app.library.library_dir import Library

    rng = np.random.default_rng(1)
    with tempfile.TemporaryDirectory() as d, Library(d) as lib:
        with lib.catalogue.session() as s, s.begin():
            folder = Folder(path="/home/user/Pictures", added_at=0.0)
            s.add(folder)
            s.flush()
            for i in range(rows):
                s.add(Photo(id=i + 1, folder_id=folder.id, path=f"/home/user/Pictures/2023/IMG_{i:07d}.JPG", size=5_000_000,
                            mtime_ns=i, fingerprint=f"5000000:{rng.bytes(16).hex()}", width=4000, height=3000,
                            taken_at=1.6e9, file_time=1.6e9, camera_make="Canon", camera_model="EOS R6",
                            thumbnail=f"ab/{rng.bytes(12).hex()}.jpg", indexed_at=1.6e9))
            s.flush()
            for i in range(rows):
                s.add(Embedding(photo_id=i + 1, model="vit-b-32@0123456789ab", vector=rng.bytes(4 * dim), seq=i + 1))
        lib.catalogue.engine.dispose()
        size = sum(p.stat().st_size for p in Path(d).glob("catalogue.db*"))
    return size / rows


SERVICE_QUERIES = ["a dog on the beach", "sunset over the mountains", "birthday cake with candles", "red car", "snow",
                   "people at a wedding", "a cat sleeping", "city at night", "a mountain lake", "children playing football"]


def variant_home(calibration_values: str | None, text_precision: str | None) -> Path:
    """A temporary PIXFIND_HOME, made the process's home, holding the active pack (its files
    hard-linked) under the same name, so that the library's vectors are its own, changed in what
    the options say:

    * ``calibration_values`` (``THRESHOLD,MATCH_MEAN,NON_MATCH_MEAN``): a reliable calibration:
      queries then take the good-match cut-off's path, as with a real model (a random-weight pack
      has none);
    * ``text_precision``: the text tower converted as ``pixfind export --text-precision`` does
      (model_training, the export extra)."""
    from desktop_app import calibration, model_store
    from desktop_app.model_sources.detect import link_or_copy
    from desktop_app.pack import TEXTUAL_FILE, format_for, sha256_file
    from desktop_app.paths import models_dir

    pack = model_store.resolve()
    manifest = pack.manifest
    home = Path(tempfile.mkdtemp(prefix="pixfind-variant-"))
    os.environ["PIXFIND_HOME"] = str(home)
    dest = models_dir() / pack.name
    dest.mkdir(parents=True)
    for f in pack.path.iterdir():
        if f.is_file() and f.name not in ("pack.json", calibration.SIDECAR):
            if text_precision and f.name == TEXTUAL_FILE:
                shutil.copy2(f, dest / f.name)  # converted in place below: not a link to the pack's
            else:
                link_or_copy(f, dest / f.name)
    found = calibration.stored(pack.path, manifest)
    if calibration_values:
        if not found:
            sys.exit(f"{pack.path}: the pack has no calibration to start from")
        threshold, match_mean, non_match_mean = (float(v) for v in calibration_values.split(","))
        found = {**found, "match_threshold": threshold, "match_mean": match_mean,
                 "non_match_mean": non_match_mean, "match_auc": 0.9, "match_reliable": True}  # fmt: skip
    manifest.calibration = found or {}
    if text_precision and text_precision != manifest.text_precision:
        if manifest.text_precision != "fp32":
            sys.exit(f"{pack.path}: its text tower is {manifest.text_precision}; --text-precision converts an fp32 one")
        from model_training.onnx_export import convert_precision

        convert_precision(dest / TEXTUAL_FILE, text_precision, "text")
        manifest.files[TEXTUAL_FILE] = sha256_file(dest / TEXTUAL_FILE)
        manifest.text.precision = None if text_precision == manifest.precision else text_precision
        manifest.format_version = format_for(manifest.text)
    manifest.validate()
    (dest / "pack.json").write_text(manifest.to_json(), encoding="utf-8")
    return home


def service_latency(library: Path, rounds: int = 3) -> dict:
    """Warm text queries through LibraryService.search, first page (as the window asks), p50 per step."""
    from desktop_app.services import FIRST_PAGE, LibraryService, SearchRequest
    from desktop_app.services.library import CUTOFF_SAMPLE

    with LibraryService(library) as service:
        t = time.perf_counter()
        service.load_model()
        service.warm_up()
        warm_s = time.perf_counter() - t
        new: dict[str, list[float]] = {"total": [], "encode": [], "search": [], "rows": []}
        cached: dict[str, list[float]] = {"total": [], "encode": [], "search": [], "rows": []}
        for r in range(rounds):
            for q in SERVICE_QUERIES:
                for bucket in (new, cached):  # the same text twice: encoded, then from the cache
                    result = service.search(SearchRequest(f"{q} {r}"), FIRST_PAGE)
                    bucket["total"].append(result.seconds * 1000)
                    for step, seconds in result.timings.items():
                        bucket[step].append(seconds * 1000)
        count = service.engine.embedded_count()
        # The vector search of the page alone, and of the good-match cut-off's sample that a calibrated
        # model also fetches when the page ends inside the cut-off's window (a random-weight pack never does).
        ranked: dict[str, list[float]] = {f"page_{FIRST_PAGE}": [], f"cutoff_sample_{CUTOFF_SAMPLE}": []}
        for q in SERVICE_QUERIES:
            vector = service.query_vector(SearchRequest(q))
            for key, k in zip(ranked, (FIRST_PAGE, CUTOFF_SAMPLE)):
                t = time.perf_counter()
                service.engine.ranked(vector, limit=k)
                ranked[key].append((time.perf_counter() - t) * 1000)
    p50 = lambda d: {k: round(float(np.median(v)), 2) for k, v in d.items()}  # noqa: E731
    return {"library": str(library), "photos": count, "warm_up_s": round(warm_s, 2), "page": FIRST_PAGE,
            "new_text_p50_ms": p50(new), "cached_text_p50_ms": p50(cached), "queries": len(new["total"]),
            "vector_search_p50_ms": p50(ranked),
            "loadavg_1_5_15": [round(x, 2) for x in os.getloadavg()]}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="10000,100000,1000000")
    ap.add_argument("--dim", type=int, default=768)
    ap.add_argument("--queries", type=int, default=200)
    ap.add_argument("--efs", default="64,128,256")
    ap.add_argument("--k", type=int, default=10)
    ap.add_argument("--catalogue-rows", type=int, default=20000)
    ap.add_argument("--pack", type=Path, help="a model pack, to time text encoding (the rest of a text query)")
    ap.add_argument("--threads", type=int, default=os.cpu_count())
    ap.add_argument("--library", type=Path, help="measure warm text queries through the library service on this library")
    ap.add_argument("--calibration", metavar="THRESHOLD,MATCH_MEAN,NON_MATCH_MEAN",
                    help="with --library: as a calibrated model runs (the good-match cut-off on), from a copy of the "
                         "active pack with this reliable calibration in a temporary PIXFIND_HOME")  # fmt: skip
    ap.add_argument("--text-precision", choices=("fp32", "fp16", "int8"),
                    help="with --library: the active pack's text tower converted to this precision, as `pixfind export "
                         "--text-precision` does, in a temporary PIXFIND_HOME (needs the export extra)")  # fmt: skip
    args = ap.parse_args()
    if args.library:
        variant = args.calibration or args.text_precision
        home = variant_home(args.calibration, args.text_precision) if variant else None
        try:
            result = service_latency(args.library)
            print(json.dumps({**result, "calibration": args.calibration, "text_precision": args.text_precision}, indent=2))
        finally:
            if home is not None:
                shutil.rmtree(home, ignore_errors=True)
        return
    rng = np.random.default_rng(0)
    efs = [int(e) for e in args.efs.split(",")]
    result = {"machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores", "dim": args.dim,
              "M": vector_index.M, "ef_construction": vector_index.EF_CONSTRUCTION, "sizes": {}}
    if args.pack:
        from desktop_app.encoder import Encoder

        enc = Encoder(args.pack, verify=False)
        enc.encode_texts(["warm up"])
        times = []
        for i in range(50):
            t = time.perf_counter()
            enc.encode_texts([f"a photo of a dog on a beach number {i}"])
            times.append(1000 * (time.perf_counter() - t))
        result["text_encode"] = percentiles(times)
    for n in (int(s) for s in args.sizes.split(",")):
        data = clip_like(n, args.dim, rng)
        queries = clip_like(args.queries, args.dim, np.random.default_rng(n))  # same distribution, unseen points
        entry: dict = {}
        exact_ms, truth = [], []
        for q in queries:
            t = time.perf_counter()
            scores = data @ q
            top = np.argpartition(-scores, args.k)[: args.k]
            top = top[np.argsort(-scores[top])]
            exact_ms.append(1000 * (time.perf_counter() - t))
            truth.append(set(top.tolist()))
        entry["numpy_exact"] = percentiles(exact_ms)
        index = hnswlib.Index(space="ip", dim=args.dim)
        index.init_index(max_elements=n, M=vector_index.M, ef_construction=vector_index.EF_CONSTRUCTION, allow_replace_deleted=True)
        index.set_num_threads(args.threads)
        t = time.perf_counter()
        index.add_items(data, np.arange(n))
        entry["build_seconds"] = round(time.perf_counter() - t, 1)
        entry["index_bytes_per_photo"] = round(index.index_file_size() / n, 1)
        index.set_num_threads(1)  # one query at a time, as a user searches
        for ef in efs:
            index.set_ef(ef)
            ms, hits = [], 0
            for q, exact in zip(queries, truth):
                t = time.perf_counter()
                labels, _ = index.knn_query(q.reshape(1, -1), k=args.k)
                ms.append(1000 * (time.perf_counter() - t))
                hits += len(exact & set(labels[0].tolist()))
            entry[f"hnsw_ef{ef}"] = {**percentiles(ms), "recall_at_10": round(hits / (args.k * len(queries)), 4)}
        result["sizes"][n] = entry
        del index, data
        print(json.dumps({n: entry}), file=sys.stderr, flush=True)
    result["catalogue_bytes_per_photo"] = round(catalogue_bytes_per_photo(args.catalogue_rows, args.dim), 1)
    result["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
