"""The paper's retrieval sets in `pixfind eval`: revisited Oxford/Paris, INSTRE and CUB, on hand-made cases."""

from __future__ import annotations

import json
import math
import pickle

import numpy as np
import pytest
from PIL import Image

from model_training.evaluation.labelled_sets import read_cub_test, read_instre
from model_training.evaluation.revisited import read_revisited, revisited_ap, revisited_map


def unit(*deg: float) -> np.ndarray:
    return np.array([[math.cos(math.radians(d)), math.sin(math.radians(d))] for d in deg], np.float32)


def test_revisited_ap_is_the_toolkits_trapezoid():
    # positives at 0-based ranks 1 and 2: (0/1 + 1/2)/2 = 0.25 and (1/2 + 2/3)/2, mean over the 2 positives
    assert revisited_ap(np.array([1, 2]), 2) == pytest.approx((0.25 + (0.5 + 2 / 3) / 2) / 2)
    assert revisited_ap(np.array([0]), 1) == pytest.approx(1.0)
    # a positive never retrieved counts as 0: one of two found at rank 0 -> 0.5
    assert revisited_ap(np.array([0]), 2) == pytest.approx(0.5)


def test_revisited_medium_and_hard_ignore_junk():
    database = unit(0, 10, 20, 30, 40)
    queries = unit(0, 40)
    truth = [
        # ranking 0,1,2,3,4. Medium: positives 2,4; junk 0,3 drops out -> positives move to ranks 1 and 2:
        # AP = ((0 + 1/2)/2 + (1/2 + 2/3)/2) / 2 = 0.41667. Hard: positive 4, junk 0,2,3 -> rank 1: (0 + 1/2)/2 = 0.25
        {"easy": [2], "hard": [4], "junk": [0, 3]},
        # ranking 4,3,2,1,0. Medium: positive 4 at rank 0 -> 1. No hard positives: left out of the Hard mean.
        {"easy": [4], "hard": [], "junk": []},
    ]
    result = revisited_map(queries, database, truth)
    assert result["medium"] == pytest.approx((5 / 12 + 1) / 2)
    assert result["hard"] == pytest.approx(0.25)


def _photo(path, seed: int, size=(40, 30)):
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)


def _revisited_layout(root, name="gnd_roxford5k.pkl"):
    (root / "jpg").mkdir(parents=True)
    for i in range(6):
        _photo(root / "jpg" / f"db_{i}.jpg", i)
    # each query is a full-image crop of a database photo: the model must put that photo first
    gnd = [{"bbx": [0, 0, 40, 30], "easy": [0], "hard": [1], "junk": [2]},
           {"bbx": [0.0, 0.0, 40.0, 30.0], "easy": [], "hard": [3], "junk": []}]
    for q, i in (("q_0", 0), ("q_1", 3)):
        _photo(root / "jpg" / f"{q}.jpg", i)
    with open(root / name, "wb") as f:
        pickle.dump({"imlist": [f"db_{i}" for i in range(6)], "qimlist": ["q_0", "q_1"], "gnd": gnd}, f)
    return root


def test_revisited_reader_crops_queries_and_refuses_code_in_the_pickle(tmp_path):
    data = read_revisited(_revisited_layout(tmp_path / "roxford5k"))
    assert data.name == "roxford5k" and len(data.database) == 6
    assert data.queries[0].load().size == (40, 30)
    assert data.ground_truth[1] == {"easy": [], "hard": [3], "junk": []}

    evil = tmp_path / "evil"
    (evil / "jpg").mkdir(parents=True)

    class Boom:
        def __reduce__(self):
            return (print, ("pwned",))

    (evil / "gnd_rparis6k.pkl").write_bytes(pickle.dumps({"imlist": [Boom()]}))
    with pytest.raises(Exception, match="refusing to load builtins.print"):
        read_revisited(evil)
    (evil / "gnd_rparis6k.pkl").write_bytes(b"\x80\x04garbage")
    with pytest.raises(Exception, match="gnd_rparis6k.pkl: not a revisited ground-truth file"):
        read_revisited(evil)


def _class_folders(root, names, copies=2):
    for k, name in enumerate(names):
        (root / name).mkdir(parents=True)
        for c in range(copies):
            _photo(root / name / f"{c}.jpg", k)  # identical copies: each image's nearest other is its copy
    return root


def test_instre_labels_are_leaf_folders(tmp_path):
    root = tmp_path / "INSTRE"
    _class_folders(root / "INSTRE-S1", ["01a_book", "02a_cup"])
    _class_folders(root / "INSTRE-M", ["01_book_cup"])
    (root / "readme.jpg").write_bytes(b"not in a class")
    listing = read_instre(root)
    assert listing.classes == ["INSTRE-M/01_book_cup", "INSTRE-S1/01a_book", "INSTRE-S1/02a_cup"]
    assert len(listing.paths) == 6


def test_cub_takes_the_test_half(tmp_path):
    images = _class_folders(tmp_path / "CUB_200_2011" / "images", [f"{k:03d}.Bird_{k}" for k in range(1, 201)], copies=1)
    listing = read_cub_test(tmp_path / "CUB_200_2011")
    assert listing.classes[0] == "101.Bird_101" and len(listing.classes) == 100
    assert read_cub_test(images).classes == listing.classes
    with pytest.raises(Exception, match="expected CUB-200-2011's 200 numbered class folders"):
        read_cub_test(tmp_path)


def test_pixfind_eval_scores_a_pack_on_all_three(tmp_path, tiny_pack, capsys):
    pytest.importorskip("open_clip")
    from desktop_app.cli import main

    revisited = _revisited_layout(tmp_path / "rparis", "gnd_rparis6k.pkl")
    instre = _class_folders(tmp_path / "instre" / "S1", ["a", "b", "c"]).parent
    cub = _class_folders(tmp_path / "cub", [f"{k:03d}.B{k}" for k in range(1, 201)])
    args = ["eval", "--pack", str(tiny_pack), "--revisited", str(revisited), "--instre", str(instre), "--cub", str(cub),
            "--json", str(tmp_path / "m.json")]
    assert main(args) == 0, capsys.readouterr().err
    m = json.loads((tmp_path / "m.json").read_text())
    # every image's copy (or, for queries, its uncropped original) is its nearest neighbour
    assert m["instre_map"] == pytest.approx(1.0) and m["cub_r1"] == pytest.approx(1.0)
    # query 1's only positive (3) comes first: AP 1 in both; query 0's Medium has photo 0 first: AP >= 1/2
    assert 0.75 <= m["rparis6k_medium_map"] <= 1.0 and 0.5 < m["rparis6k_hard_map"] <= 1.0
    assert "rparis6k_medium_map" in capsys.readouterr().out
