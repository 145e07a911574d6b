"""Near-duplicates that a user can trust: copies of one picture only, no chaining, the best copy kept,
nothing pre-marked unless certain, the threshold calibrated per model. Real photos, the tiny real pack."""

from __future__ import annotations

import json
import os
import shutil

import numpy as np
import pytest
from PIL import Image

from desktop_app import calibration
from desktop_app.services.library import LibraryService
from tests.library_helpers import index_json, run_cli

TEXTURES = ["brick", "grass", "gravel", "checkerboard", "coins", "moon", "text", "page", "camera", "retina", "logo", "cell"]


def _skimage(name: str) -> Image.Image:
    import skimage.data

    a = np.asarray(getattr(skimage.data, name)())
    if a.ndim == 3 and a.shape[2] > 3:
        a = a[..., :3]
    if a.dtype == bool:
        a = a.astype(np.uint8) * 255
    return Image.fromarray(a).convert("RGB")


def _names(group) -> list[str]:
    return [os.path.basename(m.item.path) for m in group.members]


@pytest.fixture
def library(tmp_path, capsys, tiny_model, library_dir):
    """Textures and photos that a weak model scores alike, plus real copies of two photos."""
    root = tmp_path / "photos"
    root.mkdir()
    for name in TEXTURES:
        _skimage(name).save(root / f"{name}.jpg", quality=90)
    cat = _skimage("chelsea")
    cat.save(root / "cat.jpg", quality=95)
    cat.save(root / "cat-recompressed.jpg", quality=30)  # same pixels, smaller, worse file
    cat.resize((cat.width // 2, cat.height // 2)).save(root / "cat-small.jpg", quality=70)
    coffee = _skimage("coffee")
    coffee.save(root / "coffee.jpg", quality=90)
    coffee.save(root / "coffee.png")  # the same picture, lossless: the one to keep
    rocket = _skimage("rocket")
    rocket.save(root / "rocket.jpg", quality=90)
    rocket.rotate(2, resample=Image.Resampling.BICUBIC).save(root / "rocket-rotated.jpg", quality=90)
    index_json(capsys, library_dir, root)
    return root


def test_unrelated_textures_never_group_whatever_the_model_says(library, library_dir):
    with LibraryService(library_dir) as service:
        groups = service.duplicates(0.0)  # the model lets every pair through: only the pictures decide
    grouped = sorted(sorted(_names(g)) for g in groups)
    assert grouped == [
        ["cat-recompressed.jpg", "cat-small.jpg", "cat.jpg"],
        ["coffee.jpg", "coffee.png"],
        ["rocket-rotated.jpg", "rocket.jpg"],
    ]


def test_the_best_copy_leads_and_only_certain_groups_are_pre_marked(library, library_dir):
    with LibraryService(library_dir) as service:
        groups = {_names(g)[0]: g for g in service.duplicates(0.0)}
    cat = groups["cat.jpg"]  # the 95 % JPEG kept over the same size at 30 %: the larger file
    assert _names(cat) == ["cat.jpg", "cat-recompressed.jpg", "cat-small.jpg"]
    assert cat.confident and [m.suggest_trash for m in cat.members] == [False, True, True]
    assert _names(groups["coffee.png"]) == ["coffee.png", "coffee.jpg"]  # PNG over JPEG at the same size
    rotated = groups["rocket.jpg"]  # a rotated copy: the same picture, but not certain enough to pre-mark
    assert 0 < rotated.members[1].hash_distance
    assert not rotated.confident and not any(m.suggest_trash for m in rotated.members)


def test_groups_do_not_chain(tmp_path, capsys, tiny_model, library_dir):
    """A crop of a crop is close to the crop but not to the original: never in the original's group."""
    root = tmp_path / "photos"
    root.mkdir()
    photo = _skimage("astronaut")
    photo.save(root / "original.jpg", quality=95)
    crops = [photo]
    for i in range(1, 4):
        w, h = crops[-1].size
        crops.append(crops[-1].crop((w // 20, h // 20, w - w // 20, h - h // 20)).resize((512, 512)))
        crops[-1].save(root / f"crop{i}.jpg", quality=95 - i)
    sig = [calibration.perceptual_signature(c) for c in crops]
    assert calibration.same_picture(sig[0], sig[1]) and calibration.same_picture(sig[2], sig[3])
    assert not calibration.same_picture(sig[0], sig[3])  # the chain's two ends are different pictures
    index_json(capsys, library_dir, root)
    with LibraryService(library_dir) as service:
        groups = service.duplicates(0.0)
    for g in groups:
        names = set(_names(g))
        lead = sig[0] if _names(g)[0] == "original.jpg" else sig[int(_names(g)[0][4])]
        assert not {"original.jpg", "crop3.jpg"} <= names
        for m in g.members[1:]:
            other = sig[0] if m.item.name == "original.jpg" else sig[int(m.item.name[4])]
            assert calibration.same_picture(lead, other), (_names(g), m.item.name)  # each close to the lead
    assert any("original.jpg" in _names(g) for g in groups)


def test_the_hnswlib_path_finds_the_same_groups_as_the_exact_one(library, library_dir, monkeypatch):
    from desktop_app.library import duplicates

    with LibraryService(library_dir) as service:
        exact = [(_names(g), [round(m.similarity, 4) for m in g.members]) for g in service.duplicates(0.3)]
        monkeypatch.setattr(duplicates, "EXACT_LIMIT", 0)  # as in a library of 20,000+ photos
        approximate = [(_names(g), [round(m.similarity, 4) for m in g.members]) for g in service.duplicates(0.3)]
    assert len(exact) == 3
    assert approximate == exact


def test_cli_shows_the_services_groups_and_the_calibrated_default(library, library_dir, capsys):
    with LibraryService(library_dir) as service:
        service.load_model()
        default = service.duplicate_threshold()
        found = [[m.item.path for m in g.members] for g in service.duplicates(0.0)]
        cal = service.calibration()
    assert cal and cal["method"] == calibration.METHOD and default == cal["duplicate_threshold"]
    code, out, err = run_cli(capsys, "duplicates", "--threshold", "0", "--json", "--library", library_dir)
    assert code == 0 and [[m["path"] for m in g] for g in json.loads(out)] == found
    code, out, err = run_cli(capsys, "duplicates", "--threshold", "0", "--library", library_dir)
    assert code == 0 and "not certain: nothing suggested for the trash" in out
    assert out.count("  trash  ") == 3  # cat's two copies and coffee.jpg; nothing of the rotated rocket
    code, _, err = run_cli(capsys, "duplicates", "--library", library_dir)
    assert code == 0 and f"similarity {default:.3f} (the model's default" in err


def test_pack_json_carries_the_calibration_and_its_schema_is_checked(tiny_pack):
    from desktop_app.errors import PackError
    from desktop_app.pack import PackManifest, read_manifest

    manifest = read_manifest(tiny_pack)
    cal = manifest.calibration
    assert cal["version"] == 1 and cal["photos"] == 9 and cal["captions"] >= 18
    assert -1 <= cal["duplicate_threshold"] <= 1 and -1 <= cal["match_threshold"] <= 1
    data = json.loads((tiny_pack / "pack.json").read_text())
    for bad in ({"duplicate_threshold": 5}, {"duplicate_threshold": "high"}, {"surprise": 1}, []):
        broken = dict(data, calibration=bad if not isinstance(bad, dict) else {**cal, **bad})
        with pytest.raises(PackError, match="calibration"):
            PackManifest.from_dict(broken)
    old = dict(data)
    old.pop("calibration")
    assert PackManifest.from_dict(old).calibration == {}  # a pack from before calibration still reads


def test_an_old_pack_is_calibrated_on_import_into_a_sidecar(tiny_pack, tmp_path, library_dir, capsys):
    from desktop_app import model_store

    old = tmp_path / "old-pack"
    shutil.copytree(tiny_pack, old)
    data = json.loads((old / "pack.json").read_text())
    expected = data.pop("calibration")
    (old / "pack.json").write_text(json.dumps(data))
    installed = model_store.install(old, "old")
    assert installed.manifest.calibration == {}
    sidecar = json.loads((installed.path / calibration.SIDECAR).read_text())
    assert sidecar["calibration"]["duplicate_threshold"] == pytest.approx(expected["duplicate_threshold"], abs=2e-3)
    assert sidecar["files"]["visual.onnx"] == data["files"]["visual.onnx"]
    (installed.path / calibration.SIDECAR).unlink()  # as if installed by an older pixfind: done on first use
    with LibraryService(library_dir) as service:
        service.load_model("old")
        assert service.calibration()["match_threshold"] == pytest.approx(expected["match_threshold"], abs=2e-3)
    assert (installed.path / calibration.SIDECAR).is_file()
