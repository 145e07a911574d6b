"""Models that `pixfind models pull NAME` knows how to fetch and export."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class KnownModel:
    name: str
    url: str
    arch: str
    description: str
    sha256: str | None = None  # pinned once the published file has been checked; else recorded on first download
    hf_tokenizer: str | None = None  # Hugging Face tokenizer the text side needs, when not bundled in open_clip

    @property
    def filename(self) -> str:
        """The checkpoint's file name: the last segment of the URL's path (never its query string)."""
        return PurePosixPath(unquote(urlsplit(self.url).path)).name or f"{self.name}.pth"

    def resolved_url(self) -> str:
        """``PIXFIND_MODEL_MIRROR`` replaces the host for organisations that mirror checkpoints internally."""
        mirror = os.environ.get("PIXFIND_MODEL_MIRROR")
        return f"{mirror.rstrip('/')}/{self.filename}" if mirror else self.url


KNOWN_MODELS = {
    m.name: m
    for m in (
        KnownModel(
            name="mcip-vit-l-14-336",
            url="https://visual-computing.com/files/MCIP/MCIP-ViT-L-14-336.pth",
            # Fine-tuned from OpenAI's ViT-L/14@336, which uses QuickGELU: the plain ViT-L-14-336 config
            # (nn.GELU) loads the same state dict without complaint and computes different embeddings.
            arch="ViT-L-14-336-quickgelu",
            description="MCIP-optimised OpenAI ViT-L/14 @336, 768-d (Schall et al. 2024)",
        ),
        KnownModel(
            name="mcip-siglip-so400m-384",
            url="https://visual-computing.com/files/MCIP/MCIP-ViT-SO400M-14-SigLIP-384.pth",
            arch="ViT-SO400M-14-SigLIP-384",
            description="MCIP-optimised SigLIP SO400M/14 @384, 1152-d (Schall et al. 2024)",
            hf_tokenizer="timm/ViT-B-16-SigLIP",
        ),
    )
}
