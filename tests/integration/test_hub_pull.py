"""`pixfind models pull hf:ORG/REPO` from a real local Hub server (HF_ENDPOINT), through the
console script: a pixfind pack repository, an Immich CLIP repository exported the way Immich
exports (random-weight open_clip ViT-B-32; converted on install, with parity against the torch
model), a multilingual Immich M-CLIP repository (XLM-R-style text tower, trained Unigram
tokenizer, non-Latin queries), an interrupted download that resumes, missing and corrupted
files refused with nothing installed, and a `models pack --zip` that re-imports."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest

from tests.http_server import serving
from tests.hub_server import Repo, serving_hub
from tests.model_cli import error_line, installed, leftovers, pixfind

pytest.importorskip("open_clip")
pytest.importorskip("transformers")

ROOT = Path(__file__).resolve().parents[2]
SAMPLES = ROOT / "desktop_app" / "resources" / "sample-photos"
# fp32 graphs exported from the same weights differ from torch only by float rounding: the
# issue's bar for a converted pack is a cosine of at least 0.9999 on both towers.
PARITY = 0.9999
CAPTIONS = ["a photo of a cat", "A dog running on the BEACH at sunset!", "a cup of coffee", "an astronaut in space"]


def cosines(a, b):
    import numpy as np

    return (np.asarray(a) * np.asarray(b)).sum(axis=1)


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def immich_vitb32(tmp_path_factory):
    from tests.fixtures_builders.immich_repo import build_openclip_repo

    return build_openclip_repo(tmp_path_factory.mktemp("immich") / "ViT-B-32__openai", "ViT-B-32", seed=0)


@pytest.fixture(scope="module")
def immich_multilingual(tmp_path_factory):
    import open_clip

    from tests.conftest import TINY_CONFIG
    from tests.fixtures_builders.immich_repo import build_mclip_repo

    open_clip.add_model_config(TINY_CONFIG)
    return build_mclip_repo(tmp_path_factory.mktemp("immich-ml") / "XLM-Roberta-Tiny", TINY_CONFIG.stem, seed=0)


def pack_repo(pack: Path, repo_id: str) -> Repo:
    return Repo(repo_id, {p.name: p.read_bytes() for p in pack.iterdir() if p.is_file() and not p.name.startswith(".")})


# ------------------------------------------------------------------ a pixfind pack on the Hub


def test_pixfind_pack_repo_pulls_indexes_searches_and_zips_back(tiny_pack, tmp_path):
    home = tmp_path / "home"
    with serving_hub(pack_repo(tiny_pack, "someorg/tiny-pack")) as hub:
        code, out, err = pixfind(home, "models", "pull", "hf:someorg/tiny-pack", hub=hub)
        assert code == 0, err
        assert "installed model tiny-pack (64-d" in out
        # only the files pack.json lists were asked for, each once
        gets = [e["path"].rsplit("/", 1)[-1] for e in hub.requests("GET", "/resolve/")]
        assert sorted(gets) == sorted(["pack.json", "visual.onnx", "textual.onnx", "tokenizer.json"])
    # HF_HUB_OFFLINE: the server is gone, the cached files install again
    assert pixfind(home, "models", "remove", "tiny-pack")[0] == 0
    code, out, err = pixfind(home, "models", "pull", "hf:someorg/tiny-pack", offline=True)
    assert code == 0, err
    assert "offline" in out and "installed model tiny-pack" in out

    code, out, err = pixfind(home, "index", str(SAMPLES))
    assert code == 0, err
    code, out, err = pixfind(home, "search", "a cup of coffee", "--json", "--limit", "3", "--all")
    assert code == 0, err
    assert len(json.loads(out)) == 3

    # publishing: the zip re-imports, and pulls from a URL
    archive = tmp_path / "published" / "tiny-pack.zip"
    code, out, err = pixfind(home, "models", "pack", "tiny-pack", "--zip", str(archive))
    assert code == 0, err
    printed = re.search(r"sha256 ([0-9a-f]{64})", out).group(1)
    assert printed == hashlib.sha256(archive.read_bytes()).hexdigest()
    other = tmp_path / "other-home"
    code, out, err = pixfind(other, "models", "import", str(archive), "--name", "from-zip")
    assert code == 0, err
    with serving(archive.read_bytes(), path="/packs/tiny-pack.zip") as server:
        code, out, err = pixfind(other, "models", "pull", server.url, "--sha256", printed, "--name", "from-url")
    assert code == 0, err
    assert installed(other) == ["from-url", "from-zip"]
    code, out, err = pixfind(other, "models", "verify", "from-url")
    assert code == 0, err


# ------------------------------------------------------------------ Immich's layout


def test_immich_repo_resumes_converts_with_parity_indexes_and_searches(immich_vitb32, tmp_path):
    import numpy as np
    import open_clip
    import torch
    from PIL import Image

    from desktop_app.encoder import Encoder

    home = tmp_path / "home"
    repo = Repo.from_folder("immich-app/ViT-B-32__openai", immich_vitb32.path)
    with serving_hub(repo) as hub:
        # the connection drops once, 25 MB into the text tower (more than huggingface_hub's 10 MB chunks)
        hub.cut_after["immich-app/ViT-B-32__openai/textual/model.onnx"] = [25_000_000]
        code, out, err = pixfind(home, "models", "pull", "hf:immich-app/ViT-B-32__openai", "--name", "vitb32", hub=hub)
        assert code == 0, err
        resumed = [e for e in hub.requests("GET", "textual/model.onnx") if e["range"]]
        assert resumed and int(re.match(r"bytes=(\d+)-", resumed[0]["range"]).group(1)) > 0, hub.log
        served = sum(e["sent"] for e in hub.requests("GET", "textual/model.onnx"))
        assert served < 2 * len(repo.files["textual/model.onnx"])  # resumed, not downloaded twice
        # the layout's files only (no README, no other variants)
        assert {e["path"].split("/resolve/")[1].split("/", 1)[1] for e in hub.requests("GET", "/resolve/")} == {
            "config.json",
            "visual/model.onnx",
            "visual/preprocess_cfg.json",
            "textual/model.onnx",
            "textual/tokenizer.json",
            "textual/tokenizer_config.json",
        }
    pack_dir = home / "data" / "models" / "vitb32"
    manifest = json.loads((pack_dir / "pack.json").read_text())
    assert manifest["format_version"] == 2
    text = manifest["text"]
    assert (text["ids_dtype"], text["mask_input"], text["context_length"], text["clean"]) == ("int32", None, 77, "lower")
    assert text["pad_id"] == 49407  # tokenizer_config.json's pad token <|endoftext|>, as Immich pads
    assert manifest["source"]["batch"]["visual"].startswith("fixed")  # torch folded the batch size into the graph

    # parity with the torch model the graphs came from
    model = immich_vitb32.model
    preprocess = open_clip.image_transform(224, is_train=False)
    tokenizer = open_clip.get_tokenizer("ViT-B-32")
    photos = sorted(SAMPLES.glob("*.jpg"))[:4]
    encoder = Encoder(pack_dir, providers=["CPUExecutionProvider"])
    with torch.no_grad():
        ref_images = model.encode_image(torch.stack([preprocess(Image.open(p).convert("RGB")) for p in photos]), normalize=True)
        ref_texts = model.encode_text(tokenizer(CAPTIONS), normalize=True)
    image_cos = cosines(encoder.encode_images(photos), ref_images.numpy())
    text_cos = cosines(encoder.encode_texts(CAPTIONS), ref_texts.numpy())
    print(f"parity ViT-B-32 (Immich layout): image min {image_cos.min():.6f}, text min {text_cos.min():.6f}")
    assert image_cos.min() >= PARITY and text_cos.min() >= PARITY
    assert np.all(np.isfinite(image_cos))

    code, out, err = pixfind(home, "index", str(SAMPLES))
    assert code == 0, err
    code, out, err = pixfind(home, "search", "a cup of coffee", "--json", "--limit", "3", "--all")
    assert code == 0, err
    assert len(json.loads(out)) == 3
    code, out, err = pixfind(home, "models", "list", "--available")
    assert code == 0, err


def test_missing_or_corrupted_files_are_refused_and_nothing_is_installed(immich_vitb32, tmp_path):
    home = tmp_path / "home"
    complete = Repo.from_folder("immich-app/complete", immich_vitb32.path)
    no_tokenizer = Repo("immich-app/no-tokenizer", {k: v for k, v in complete.files.items() if k != "textual/tokenizer.json"})
    not_served = Repo("immich-app/not-served", dict(complete.files), hidden={"visual/preprocess_cfg.json"})
    corrupted = Repo("immich-app/corrupted", dict(complete.files))
    bad = bytearray(complete.files["textual/model.onnx"])
    bad[len(bad) // 2] ^= 0xFF
    corrupted.served["textual/model.onnx"] = bytes(bad)
    with serving_hub(no_tokenizer, not_served, corrupted) as hub:
        code, _, err = pixfind(home, "models", "pull", "hf:immich-app/no-tokenizer", hub=hub)
        assert "textual/tokenizer.json" in error_line(err) and code == 1
        code, _, err = pixfind(home, "models", "pull", "hf:immich-app/not-served", hub=hub)
        assert "hf:immich-app/not-served" in error_line(err) and code == 1
        code, _, err = pixfind(home, "models", "pull", "hf:immich-app/corrupted", hub=hub)
        line = error_line(err)
        assert code == 1 and "textual/model.onnx" in line and "sha256" in line and "nothing was installed" in line
        code, _, err = pixfind(home, "models", "pull", "hf:immich-app/nonexistent", hub=hub)
        assert "no such repository" in error_line(err)
    assert installed(home) == [] and leftovers(home) == []
    cache = home / "cache" / "huggingface" / "models--immich-app--corrupted" / "blobs"
    bad_blob = hashlib.sha256(complete.files["textual/model.onnx"]).hexdigest()
    assert not (cache / bad_blob).exists()  # the bad download is not kept to be trusted later


# ------------------------------------------------------------------ multilingual (M-CLIP layout)


def test_multilingual_immich_repo_with_non_latin_queries(immich_multilingual, tmp_path):
    import open_clip
    import torch
    from PIL import Image

    from desktop_app.encoder import Encoder

    home = tmp_path / "home"
    repo = Repo.from_folder("immich-app/XLM-Roberta-Tiny", immich_multilingual.path)
    with serving_hub(repo) as hub:
        code, out, err = pixfind(home, "models", "pull", "hf:immich-app/XLM-Roberta-Tiny", "--name", "mclip", hub=hub)
    assert code == 0, err
    pack_dir = home / "data" / "models" / "mclip"
    text = json.loads((pack_dir / "pack.json").read_text())["text"]
    assert (text["ids_dtype"], text["mask_input"], text["clean"]) == ("int32", "attention_mask", "whitespace")
    assert text["pad_id"] == immich_multilingual.hf_tokenizer.pad_token_id

    queries = ["кошка на диване", "猫がソファで寝ている", "كلب يركض على الشاطئ", "ein Hund am Strand", "a cup of coffee"]
    tok = immich_multilingual.hf_tokenizer(
        queries, padding="max_length", truncation=True, max_length=immich_multilingual.context_length, return_tensors="pt"
    )
    with torch.no_grad():
        ref = immich_multilingual.model["text"](tok["input_ids"].int(), tok["attention_mask"].int()).numpy()
    encoder = Encoder(pack_dir, providers=["CPUExecutionProvider"])
    text_cos = cosines(encoder.encode_texts(queries), ref)
    clip = immich_multilingual.model["clip"]
    size = clip.visual.image_size
    photos = sorted(SAMPLES.glob("*.jpg"))[:3]
    with torch.no_grad():
        pixels = torch.stack([open_clip.image_transform(size, is_train=False)(Image.open(p).convert("RGB")) for p in photos])
        ref_images = clip.encode_image(pixels, normalize=True).numpy()
    image_cos = cosines(encoder.encode_images(photos), ref_images)
    print(f"parity M-CLIP layout: text (XLM-R-style, non-Latin) min {text_cos.min():.6f}, image min {image_cos.min():.6f}")
    assert text_cos.min() >= PARITY and image_cos.min() >= PARITY

    code, out, err = pixfind(home, "index", str(SAMPLES))
    assert code == 0, err
    for query in queries[:3]:
        code, out, err = pixfind(home, "search", query, "--json", "--limit", "2", "--all")
        assert code == 0, err
        assert len(json.loads(out)) == 2
