"""Embeddings computed once (images by a locked image tower, or a caption corpus), stored in resumable chunks."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from desktop_app.errors import PixfindError

META = "meta.json"


def _chunk_path(root: Path, k: int) -> Path:
    return root / f"features_{k:05d}.npy"


def build_chunked(out_dir: Path, count: int, compute: Callable[[int, int], np.ndarray], *, fingerprint: str,
                  chunk_size: int = 8192, progress: Callable[[int, int], None] = lambda done, total: None) -> ChunkedFeatures:
    """Rows ``compute(start, stop)`` for ``range(count)`` saved a chunk at a time; chunks already on disk are kept.

    ``fingerprint`` names what made them (model and data): a cache made by something else is refused, not mixed.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    meta_path = out_dir / META
    meta = {"fingerprint": fingerprint, "count": count, "chunk_size": chunk_size}
    if meta_path.is_file():
        old = json.loads(meta_path.read_text())
        if {k: old.get(k) for k in meta} != meta:
            raise PixfindError(f"{out_dir}: feature cache was made for another model or data set; use a new directory")
    else:
        meta_path.write_text(json.dumps(meta))
    for k in range((count + chunk_size - 1) // chunk_size):
        path = _chunk_path(out_dir, k)
        stop = min((k + 1) * chunk_size, count)
        if not path.is_file():
            tmp = path.with_suffix(".tmp.npy")
            np.save(tmp, np.asarray(compute(k * chunk_size, stop), np.float16))
            os.replace(tmp, path)
        progress(stop, count)
    return load_feature_cache(out_dir)


@torch.no_grad()
def build_feature_cache(model: torch.nn.Module, dataset, out_dir: Path, *, fingerprint: str, batch_size: int = 256,
                        chunk_size: int = 8192, device="cpu", num_workers: int = 0,
                        progress: Callable[[int, int], None] = lambda done, total: None) -> ChunkedFeatures:
    """L2-normalised float16 embeddings of ``dataset[i]["image"]`` in order, resumable (see build_chunked)."""
    model.eval()

    def compute(start: int, stop: int) -> np.ndarray:
        subset = torch.utils.data.Subset(dataset, range(start, stop))
        loader = torch.utils.data.DataLoader(subset, batch_size=batch_size, num_workers=num_workers,
                                             collate_fn=lambda items: torch.stack([it["image"] for it in items]))
        return np.concatenate([F.normalize(model.encode_image(pixels.to(device)).float(), dim=-1).cpu().half().numpy()
                               for pixels in loader])

    return build_chunked(out_dir, len(dataset), compute, fingerprint=fingerprint, chunk_size=chunk_size, progress=progress)


def build_text_feature_cache(encode_texts: Callable[[Sequence[str]], np.ndarray], texts: Sequence[str], out_dir: Path, *,
                             fingerprint: str, chunk_size: int = 65536,
                             progress: Callable[[int, int], None] = lambda done, total: None) -> ChunkedFeatures:
    """Embeddings of a caption corpus (CC12M: ~10 M), resumable and memory-mapped like the image cache."""
    return build_chunked(out_dir, len(texts), lambda start, stop: encode_texts(texts[start:stop]), fingerprint=fingerprint,
                         chunk_size=chunk_size, progress=progress)


class ChunkedFeatures:
    """Rows of all chunks as one array-like, memory-mapped: CC12M's 11 M x 768 stays on disk."""

    def __init__(self, chunks: list[np.ndarray], chunk_size: int):
        self.chunks, self.chunk_size = chunks, chunk_size
        self.shape = (sum(len(c) for c in chunks), chunks[0].shape[1] if chunks else 0)
        self.dtype = chunks[0].dtype if chunks else np.float16

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, row: int) -> np.ndarray:
        return self.chunks[row // self.chunk_size][row % self.chunk_size]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.concatenate(self.chunks)
        return out.astype(dtype) if dtype is not None else out


def load_feature_cache(out_dir: Path) -> ChunkedFeatures:
    out_dir = Path(out_dir)
    meta = json.loads((out_dir / META).read_text())
    chunks = (meta["count"] + meta["chunk_size"] - 1) // meta["chunk_size"]
    missing = [k for k in range(chunks) if not _chunk_path(out_dir, k).is_file()]
    if missing:
        raise PixfindError(f"{out_dir}: feature cache incomplete ({len(missing)} of {chunks} chunks missing); run it again to finish")
    return ChunkedFeatures([np.load(_chunk_path(out_dir, k), mmap_mode="r") for k in range(chunks)], meta["chunk_size"])


class CachedPairs(torch.utils.data.Dataset):
    """(cached image embedding, caption) pairs: one item per caption, so an image may appear several times."""

    def __init__(self, features: np.ndarray, captions: Sequence[Sequence[str]]):
        self.features = features
        self.pairs = [(i, c) for i, caps in enumerate(captions) for c in caps]

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, key) -> dict:
        i = key[0] if isinstance(key, tuple) else key
        row, caption = self.pairs[i]
        return {"index": i, "feature": torch.from_numpy(np.array(self.features[row], dtype=np.float32)), "caption": caption}


def pair_collate(tokenizer) -> Callable:
    def collate(items: list[dict]) -> dict:
        return {"index": torch.tensor([it["index"] for it in items]),
                "feature": torch.stack([it["feature"] for it in items]),
                "tokens": tokenizer([it["caption"] for it in items])}
    return collate


def image_caption_collate(tokenizer) -> Callable:
    """For CLIP pre-training: one caption per image (the first)."""
    def collate(items: list[dict]) -> dict:
        return {"index": torch.tensor([it["index"] for it in items]),
                "image": torch.stack([it["image"] for it in items]),
                "tokens": tokenizer([it["captions"][0] for it in items])}
    return collate
