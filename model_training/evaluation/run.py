"""`pixfind eval`: build the embedder (torch model or exported pack) and score the requested sets."""

from __future__ import annotations

from pathlib import Path

from desktop_app.errors import PixfindError

from .embedders import PackEmbedder, TorchEmbedder
from .suite import EvalSets


def evaluate(*, arch=None, pretrained=None, checkpoint=None, pack=None, device="auto", sets: dict) -> dict[str, float]:
    chosen = EvalSets.from_config(sets)
    if chosen.empty:
        raise PixfindError("nothing to evaluate: give --gpr1200, --instre, --cub, --revisited, --folder, --knn-val, "
                           "--zero-shot or --captions")
    if pack:
        embedder = PackEmbedder(Path(pack))
    else:
        import open_clip
        import torch

        from ..open_clip_models import build_model

        dev = ("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else device
        loaded = build_model(arch, pretrained=pretrained, checkpoint=checkpoint)
        embedder = TorchEmbedder(loaded.model.to(dev), open_clip.get_tokenizer(loaded.arch), device=dev)
    return chosen.evaluate(embedder)
