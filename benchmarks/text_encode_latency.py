"""Latency of embedding one new query, the largest part of a warm text search, per pack and thread count.

Each configuration (pack x ONNX Runtime intra-op threads) gets its own app encoder (lazy, the
optimised-graph cache on, as the window opens it). Queries are new each time (no text cache),
batch 1, as a user types them; the configurations take turns query by query, so load on a
shared machine falls on all of them alike, and the table gives p50/p90 and the ratio of each
p50 to the first configuration's. The cosine column compares each pack's vectors with the first
pack's (a quantised pack against its fp32 original).

    python benchmarks/text_encode_latency.py PACK [PACK ...] [--threads 0,1] [--queries 60]

Thread count 0 is ONNX Runtime's default (one per core).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import cpu_model, loadavg
from desktop_app.encoder import Encoder

SUBJECTS = ["a dog", "two children", "a red car", "an old church", "a birthday cake", "a sailing boat", "my grandmother"]
PLACES = ["on a beach", "in the snow", "at night", "in a kitchen", "next to a lake", "in the rain"]


def queries(n: int) -> list[str]:
    return [f"{SUBJECTS[i % len(SUBJECTS)]} {PLACES[(i // len(SUBJECTS)) % len(PLACES)]} {i}" for i in range(n)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("packs", nargs="+", type=Path)
    ap.add_argument("--threads", default="0,1", help="intra-op thread counts to compare (0: ONNX Runtime's default)")
    ap.add_argument("--queries", type=int, default=60)
    args = ap.parse_args()
    configs = []
    for pack in args.packs:
        for threads in (int(t) for t in args.threads.split(",")):
            encoder = Encoder(pack, verify=False, lazy=True, threads=threads or None)
            encoder.encode_texts(["warm up"])
            configs.append((f"{pack.name} x{threads or 'default'}", pack, encoder, []))
    texts = queries(args.queries)
    reference = {}
    load_before = loadavg()
    for text in texts:
        for _label, _pack, encoder, times in configs:
            start = time.perf_counter()
            vector = encoder.encode_texts([text])[0]
            times.append(1000 * (time.perf_counter() - start))
            reference.setdefault(text, vector)  # the first configuration's vector of this text
    cosines = {}
    for label, pack, encoder, _ in configs:
        if pack != configs[0][1]:
            vectors = encoder.encode_texts(texts[:20])
            cosines[label] = min(float(v @ reference[t]) for v, t in zip(vectors, texts[:20]))
    print(f"machine: {cpu_model()}; load {load_before} -> {loadavg()}; {len(texts)} new queries each, batch 1")
    print(f"{'configuration':40} {'p50 ms':>8} {'p90 ms':>8} {'÷ first':>8} {'min cosine vs first pack':>26}")
    base = statistics.median(configs[0][3])
    for label, _pack, _, times in configs:
        p50 = statistics.median(times)
        p90 = statistics.quantiles(times, n=10)[-1]
        cos = f"{cosines[label]:.5f}" if label in cosines else "-"
        print(f"{label:40} {p50:8.1f} {p90:8.1f} {p50 / base:8.2f} {cos:>26}")


if __name__ == "__main__":
    main()
