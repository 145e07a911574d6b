"""The models `pixfind models pull NAME` knows, and what `pixfind models list --available` shows.

Each entry names where its files come from, tried in this order by the pull:
1. ``pack_url``: a ready pixfind pack (a .zip or a folder URL), when one is published;
2. ``hub_repo``: a Hugging Face Hub repository holding a pixfind pack or an Immich CLIP model;
3. ``url`` + ``arch``: an open_clip checkpoint, exported here (needs the 'export' extra: torch).

Sizes, licences and languages were looked up on the models' Hugging Face pages (file listings
of the immich-app repositories, the original models' cards); where a number could not be
found it is None and shown as "unknown", never guessed. Embedding sizes are open_clip's
model configs (``embed_dim``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import PurePosixPath
from urllib.parse import unquote, urlsplit


@dataclass(frozen=True)
class KnownModel:
    name: str
    description: str
    url: str = ""  # an open_clip checkpoint exported on this machine (the fallback; needs torch)
    arch: str = ""
    sha256: str | None = None  # of the checkpoint: pinned once the published file has been checked
    hf_tokenizer: str | None = None  # Hugging Face tokenizer the text side needs, when not bundled in open_clip
    pack_url: str = ""  # a published pixfind pack (.zip or folder URL); empty until one is published
    hub_repo: str = ""  # "ORG/REPO[@REVISION]" on the Hugging Face Hub (a pixfind pack or an Immich CLIP model)
    download_bytes: int | None = None  # what a pull fetches; None: unknown
    dim: int | None = None
    languages: str = ""  # "en", or how many languages a multilingual model covers
    licence: str = ""  # "" = unknown
    notes: str = ""  # where the figures above come from

    @property
    def filename(self) -> str:
        """The checkpoint's file name: the last segment of the URL's path (never its query string)."""
        return PurePosixPath(unquote(urlsplit(self.url).path)).name or f"{self.name}.pth"

    def resolved_url(self) -> str:
        """``PIXFIND_MODEL_MIRROR`` replaces the host for organisations that mirror checkpoints internally."""
        mirror = os.environ.get("PIXFIND_MODEL_MIRROR")
        return f"{mirror.rstrip('/')}/{self.filename}" if mirror else self.url

    @property
    def sources(self) -> list[str]:
        """Where a pull can take it from, in the order tried: 'pack', 'hub', 'checkpoint'."""
        return [kind for kind, value in (("pack", self.pack_url), ("hub", self.hub_repo), ("checkpoint", self.url)) if value]


_MB = 1_000_000  # the Hub shows decimal megabytes

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
            dim=768,
            languages="en",
        ),
        KnownModel(
            name="mcip-siglip-so400m-384",
            url="https://visual-computing.com/files/MCIP/MCIP-ViT-SO400M-14-SigLIP-384.pth",
            arch="ViT-SO400M-14-SigLIP-384",
            description="MCIP-optimised SigLIP SO400M/14 @384, 1152-d (Schall et al. 2024)",
            hf_tokenizer="timm/ViT-B-16-SigLIP",
            dim=1152,
            languages="en",
        ),
        KnownModel(
            name="immich-vit-b-32-openai",
            hub_repo="immich-app/ViT-B-32__openai",
            description="OpenAI CLIP ViT-B/32 (Immich's default), 512-d; small and fast",
            # visual/model.onnx 351 MB + textual/model.onnx 254 MB + tokenizer.json 2.22 MB (Hub file listing)
            download_bytes=(351 + 254) * _MB + 2_220_000,
            dim=512,
            languages="en",
            licence="MIT",
            notes="sizes: huggingface.co/immich-app/ViT-B-32__openai tree; licence: the weights' source, github.com/openai/CLIP (MIT)",
        ),
        KnownModel(
            name="immich-vit-l-16-siglip-384",
            hub_repo="immich-app/ViT-L-16-SigLIP-384__webli",
            description="Google SigLIP ViT-L/16 @384 (WebLI), 1024-d",
            dim=1024,
            languages="en",
            licence="Apache-2.0",
            notes="licence: huggingface.co/timm/ViT-L-16-SigLIP-384 (the weights Immich exported); sizes: not found",
        ),
        KnownModel(
            name="immich-vit-so400m-14-siglip-384",
            hub_repo="immich-app/ViT-SO400M-14-SigLIP-384__webli",
            description="Google SigLIP SO400M/14 @384 (WebLI), 1152-d; the base of MCIP's best model",
            dim=1152,
            languages="en",
            licence="Apache-2.0",
            notes="licence: huggingface.co/timm/ViT-SO400M-14-SigLIP-384 (the weights Immich exported); sizes: not found",
        ),
        KnownModel(
            name="immich-xlm-roberta-large-vit-b-16plus",
            hub_repo="immich-app/XLM-Roberta-Large-Vit-B-16Plus",
            description="M-CLIP: XLM-RoBERTa-Large text with OpenCLIP ViT-B/16+ images, 640-d; multilingual",
            dim=640,
            languages="48 languages",
            notes="visual/model.onnx is 469 MB; the text tower's many external-data files were not summed (size unknown); "
            "languages: huggingface.co/M-CLIP/XLM-Roberta-Large-Vit-B-16Plus; licence: not found",
        ),
        KnownModel(
            name="immich-nllb-clip-base-siglip",
            hub_repo="immich-app/nllb-clip-base-siglip__v1",
            description="NLLB-CLIP: NLLB-200 text with SigLIP ViT-B/16 images, 768-d; one language token per query",
            dim=768,
            languages="201 languages (FLORES-200)",
            licence="CC-BY-NC-4.0",
            notes="licence: huggingface.co/visheratin/nllb-clip-base-siglip; languages: the NLLB-CLIP model card; sizes: not found",
        ),
    )
}


def find(name: str) -> KnownModel | None:
    return KNOWN_MODELS.get(name)
