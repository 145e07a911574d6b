"""MCIP pseudo-captions: for each training image, the corpus captions a CLIP finds most similar."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch


def dedupe(captions: Sequence[str]) -> list[str]:
    """Distinct captions after whitespace normalisation, first occurrence order."""
    seen, out = set(), []
    for c in captions:
        key = " ".join(str(c).split())
        if key and key not in seen:
            seen.add(key)
            out.append(key)
    return out


def _corpus_blocks(corpus_features, rows: int = 262144):
    """The corpus in blocks of rows (a ChunkedFeatures' own chunks), so a memory-mapped 10 M x 768 never loads whole."""
    chunks = getattr(corpus_features, "chunks", None)
    if chunks is None:
        chunks = [corpus_features[s:s + rows] for s in range(0, len(corpus_features), rows)]
    offset = 0
    for block in chunks:
        yield offset, torch.from_numpy(np.asarray(block, np.float32))
        offset += len(block)


def retrieve(image_features: np.ndarray, corpus_features, top_k: int = 20, threshold: float = 0.27,
             chunk: int = 4096) -> list[list[tuple[int, float]]]:
    """Per image: up to ``top_k`` (corpus index, cosine) pairs with cosine > ``threshold``, best first.

    ``corpus_features`` is an array or a memory-mapped ChunkedFeatures; a running top-k is kept across its blocks.
    """
    out = []
    for s in range(0, len(image_features), chunk):
        images = torch.from_numpy(np.asarray(image_features[s:s + chunk], np.float32))
        best_v = torch.full((len(images), 0), -float("inf"))
        best_i = torch.zeros((len(images), 0), dtype=torch.long)
        for offset, block in _corpus_blocks(corpus_features):
            v, i = (images @ block.t()).topk(min(top_k, len(block)), dim=1)
            best_v, order = torch.cat([best_v, v], 1).topk(min(top_k, best_v.shape[1] + v.shape[1]), dim=1)
            best_i = torch.cat([best_i, i + offset], 1).gather(1, order)
        for v, i in zip(best_v.tolist(), best_i.tolist()):
            out.append([(ii, round(vv, 5)) for vv, ii in zip(v, i) if vv > threshold])
    return out


def write_pseudo_captions(out_file: Path, paths: Sequence, image_features_fn: Callable[[Sequence], np.ndarray],
                          corpus: Sequence[str], corpus_features: np.ndarray, *, top_k: int = 20, threshold: float = 0.27,
                          chunk: int = 2048, progress: Callable[[int, int], None] = lambda d, t: None) -> Path:
    """JSONL rows {path, captions, scores}; resumable: rows already in ``out_file`` are not recomputed.

    Rows are appended a chunk at a time and flushed, so a crash loses at most one chunk.
    """
    out_file = Path(out_file)
    done = 0
    if out_file.is_file():
        with open(out_file, encoding="utf-8") as f:
            lines = f.readlines()
        # a crash mid-write can leave a partial last line: drop it
        good = [ln for ln in lines if ln.endswith("\n")]
        if len(good) != len(lines):
            with open(out_file, "w", encoding="utf-8") as f:
                f.writelines(good)
        done = len(good)
    with open(out_file, "a", encoding="utf-8") as f:
        for s in range(done, len(paths), chunk):
            batch = paths[s:s + chunk]
            hits = retrieve(image_features_fn(batch), corpus_features, top_k, threshold)
            f.writelines(json.dumps({"path": str(path), "captions": [corpus[i] for i, _ in row],
                                    "scores": [v for _, v in row]}) + "\n" for path, row in zip(batch, hits))
            f.flush()
            os.fsync(f.fileno())
            progress(min(s + chunk, len(paths)), len(paths))
    return out_file
