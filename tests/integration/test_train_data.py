"""Data sources: ImageFolder, CSV/JSONL manifests, WebDataset shards, mixing, feature cache, pseudo-captions."""

from __future__ import annotations

import io
import json
import tarfile

import numpy as np
import pytest
from PIL import Image

from desktop_app.errors import PixfindError
from model_training.data import sources

pytest.importorskip("torch")


def png(path, colour=(200, 10, 10)):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", (8, 8), colour).save(path)
    return path


def test_image_folder_and_mixing_keep_label_spaces_disjoint(tmp_path):
    for cls in ("cat", "dog"):
        for i in range(2):
            png(tmp_path / "a" / cls / f"{i}.png")
    png(tmp_path / "b" / "cat" / "0.png")
    (tmp_path / "b" / "cat" / "notes.txt").write_text("not an image")
    a, b = sources.image_folder(tmp_path / "a"), sources.image_folder(tmp_path / "b")
    assert a.classes == ["cat", "dog"] and a.labels == [0, 0, 1, 1] and len(b.paths) == 1
    mixed = sources.mix_labelled([a, b], ["pets", "more"])
    # "cat" of set b is another class than "cat" of set a
    assert mixed.classes == ["pets/cat", "pets/dog", "more/cat"] and mixed.labels == [0, 0, 1, 1, 2]


def test_manifests_csv_and_jsonl(tmp_path):
    png(tmp_path / "img" / "x.png")
    png(tmp_path / "img" / "y.png")
    (tmp_path / "labels.csv").write_text("path,label\nimg/x.png,b\nimg/y.png,a\n")
    listing = sources.labelled_manifest(tmp_path / "labels.csv")
    assert listing.classes == ["a", "b"] and listing.labels == [1, 0] and listing.paths[0] == tmp_path / "img" / "x.png"
    rows = [{"path": "x.png", "caption": "a red square"}, {"path": "y.png", "captions": ["one", "two"]},
            {"path": "y.png", "captions": []}]
    (tmp_path / "caps.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    caps = sources.caption_manifest(tmp_path / "caps.jsonl", root=tmp_path / "img")
    assert caps.captions == [["a red square"], ["one", "two"], []] and caps.paths[1] == tmp_path / "img" / "y.png"
    with pytest.raises(PixfindError, match="needs 'path' and 'label'"):
        sources.labelled_manifest(tmp_path / "caps.jsonl")
    (tmp_path / "bad.jsonl").write_text("{not json")
    with pytest.raises(PixfindError, match="bad.jsonl: unreadable manifest"):
        sources.caption_manifest(tmp_path / "bad.jsonl")


def _tar(path, samples):
    with tarfile.open(path, "w") as tar:
        for key, colour, caption in samples:
            buf = io.BytesIO()
            Image.new("RGB", (8, 8), colour).save(buf, format="JPEG")
            for name, data in ((f"{key}.jpg", buf.getvalue()), (f"{key}.txt", caption.encode())):
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))


def test_webdataset_shards_read_by_offset(tmp_path):
    from model_training.data.datasets import load_rgb
    from model_training.pipelines import caption_listing

    _tar(tmp_path / "00000.tar", [("000000", (255, 0, 0), "a red thing"), ("000001", (0, 0, 255), "a blue thing")])
    _tar(tmp_path / "00001.tar", [("000002", (0, 255, 0), "a green thing")])
    (tmp_path / "m.csv").write_text("path,caption\n" + str(png(tmp_path / "p.png")) + ",a plain one\n")
    images, captions = caption_listing([{"webdataset": str(tmp_path / "{00000..00001}.tar")}, {"manifest": str(tmp_path / "m.csv")}])
    assert captions == [["a red thing"], ["a blue thing"], ["a green thing"], ["a plain one"]]
    assert load_rgb(images[1]).getpixel((4, 4))[2] > 200 and load_rgb(images[2]).getpixel((4, 4))[1] > 200
    with pytest.raises(PixfindError, match="00002.tar: shard not found"):
        caption_listing([{"webdataset": str(tmp_path / "{00000..00002}.tar")}])


def test_feature_cache_resumes_and_refuses_another_model(tmp_path):
    import open_clip

    from model_training import synthetic
    from model_training.data.datasets import ImageDataset
    from model_training.feature_cache import build_feature_cache, load_feature_cache
    from model_training.open_clip_models import eval_transform, resolve_arch
    from tests.conftest import TINY_CONFIG

    clip = open_clip.create_model(resolve_arch(str(TINY_CONFIG))[0])
    data = synthetic.make_set(synthetic.all_classes()[:1], per_class=5, seed=0)
    items = ImageDataset(data.images, eval_transform(clip))
    out = tmp_path / "cache"
    feats = np.asarray(build_feature_cache(clip, items, out, fingerprint="m1", batch_size=2, chunk_size=2))
    assert feats.shape == (5, 64) and feats.dtype == np.float16
    assert np.allclose(np.linalg.norm(feats.astype(np.float32), axis=1), 1, atol=1e-3)
    chunks = sorted(out.glob("features_*.npy"))
    assert len(chunks) == 3  # 2 + 2 + 1 images
    kept = {p.name: p.stat().st_mtime_ns for p in chunks}
    chunks[1].unlink()  # as if the run died while writing chunk 1
    again = build_feature_cache(clip, items, out, fingerprint="m1", batch_size=2, chunk_size=2)
    assert np.array_equal(np.asarray(again), feats) and np.array_equal(load_feature_cache(out)[3], feats[3])
    for name in ("features_00000.npy", "features_00002.npy"):
        assert (out / name).stat().st_mtime_ns == kept[name]  # not recomputed
    with pytest.raises(PixfindError, match="another model"):
        build_feature_cache(clip, items, out, fingerprint="m2", chunk_size=2)


def test_pseudo_captions_top_k_threshold_and_resume(tmp_path):
    from model_training.pseudo_captions import dedupe, retrieve, write_pseudo_captions

    assert dedupe(["a  dog", "a dog", "", "a cat"]) == ["a dog", "a cat"]
    corpus = ["east", "north", "west"]
    corpus_f = np.array([[1, 0], [0, 1], [-1, 0]], np.float32)
    images = {"p0": [1.0, 0.0], "p1": [0.6, 0.8], "p2": [0.0, -1.0]}
    # p0: east 1.0, north 0, west -1 -> threshold 0.5 keeps east; p1: north .8, east .6; p2: nothing above 0.5
    assert retrieve(np.array(list(images.values()), np.float32), corpus_f, top_k=2, threshold=0.5) == [
        [(0, 1.0)], [(1, 0.8), (0, 0.6)], []]
    calls = []

    def embed(batch):
        calls.append(list(batch))
        return np.array([images[p] for p in batch], np.float32)

    out = tmp_path / "pc.jsonl"
    out.write_text(json.dumps({"path": "p0", "captions": ["east"], "scores": [1.0]}) + "\n" + '{"path": "p1", "capt')
    write_pseudo_captions(out, list(images), embed, corpus, corpus_f, top_k=2, threshold=0.5, chunk=10)
    assert calls == [["p1", "p2"]]  # p0 was done; the torn last line was redone
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["captions"] for r in rows] == [["east"], ["north", "east"], []]


def test_corpus_features_are_cached_resumably_and_searched_block_by_block(tmp_path):
    from model_training.feature_cache import build_text_feature_cache
    from model_training.pseudo_captions import retrieve

    rng = np.random.default_rng(0)
    corpus = [f"caption {i}" for i in range(10)]
    table = rng.normal(size=(10, 8)).astype(np.float32)
    table /= np.linalg.norm(table, axis=1, keepdims=True)
    encoded = []

    def encode(texts):
        encoded.extend(texts)
        return table[[int(t.split()[1]) for t in texts]]

    cache = build_text_feature_cache(encode, corpus, tmp_path / "corpus", fingerprint="m", chunk_size=3)
    assert len(cache.chunks) == 4 and encoded == corpus
    (tmp_path / "corpus" / "features_00002.npy").unlink()  # as if killed while writing chunk 2
    seen = []
    cache = build_text_feature_cache(encode, corpus, tmp_path / "corpus", fingerprint="m", chunk_size=3,
                                     progress=lambda done, total: seen.append((done, total)))
    assert encoded[10:] == corpus[6:9] and seen == [(3, 10), (6, 10), (9, 10), (10, 10)]
    images = rng.normal(size=(5, 8)).astype(np.float32)
    # the running top-k over 4 memory-mapped blocks finds what one matrix product over the float16 rows finds
    exact = images @ np.asarray(cache, np.float32).T
    hits = retrieve(images, cache, top_k=4, threshold=-1.0)
    assert [[i for i, _ in row] for row in hits] == np.argsort(-exact, axis=1)[:, :4].tolist()
    assert retrieve(images, cache, top_k=4, threshold=0.3) == retrieve(images, np.asarray(cache), top_k=4, threshold=0.3)
