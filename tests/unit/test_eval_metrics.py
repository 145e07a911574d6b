"""Each metric on tiny hand-made cases whose answers are worked out in the comments."""

from __future__ import annotations

import math
import zipfile

import numpy as np
import pytest

from model_training.evaluation import metrics


def unit(*deg: float) -> np.ndarray:
    return np.array([[math.cos(math.radians(d)), math.sin(math.radians(d))] for d in deg], np.float32)


def test_average_precision_by_hand():
    # hits at ranks 1 and 3: (1/1 + 2/3) / 2
    assert metrics.average_precision(np.array([1, 0, 1, 0])) == pytest.approx((1 + 2 / 3) / 2)
    assert metrics.average_precision(np.array([0, 1])) == pytest.approx(0.5)
    assert metrics.average_precision(np.array([0, 0])) == 0.0


def test_all_vs_all_map_counts_the_self_match_as_the_gpr1200_authors_do():
    # points on a circle at 0, 10 (class a) and 20, 180 (class b)
    f, labels = unit(0, 10, 20, 180), ["a", "a", "b", "b"]
    # query 0: ranking 0,10,20,180 -> rel 1,1,0,0 -> AP 1
    # query 10: ranking 10, then 0 and 20 tie at 10 degrees (stable: 0 first), 180 -> 1,1,0,0 -> AP 1
    # query 20: ranking 20,10,0,180 -> 1,0,0,1 -> (1 + 2/4)/2 = 0.75
    # query 180: ranking 180, 20, 10, 0 -> 1,1,0,0 -> 1
    assert metrics.all_vs_all_map(f, labels) == pytest.approx((1 + 1 + 0.75 + 1) / 4)
    # without the self-match: q0: 10,20,180 -> 1,0,0 -> 1; q10: 0,20,180 -> 1; q20: 10,0,180 -> 0,0,1 -> 1/3;
    # q180: 20,10,0 -> 1,0,0 -> 1
    assert metrics.all_vs_all_map(f, labels, include_self=False) == pytest.approx((1 + 1 + 1 / 3 + 1) / 4)
    # chunking the queries must not change anything
    assert metrics.all_vs_all_map(f, labels, chunk=1) == metrics.all_vs_all_map(f, labels)


def test_recall_at_1_excludes_the_query():
    # nearest other: 0->10 (a, hit), 10->0 (hit), 20->10 (a != b, miss), 180->20 (hit)
    assert metrics.recall_at_1(unit(0, 10, 20, 180), [0, 0, 1, 1]) == pytest.approx(0.75)


def test_knn_weighted_vote_by_hand():
    gallery = unit(0, 5, 40, 45, 50)
    g_labels = [0, 0, 1, 1, 1]
    query = unit(20)
    # k = 5, T = 0.1: class 0 gets w(20) + w(15) = 27731, class 1 w(20) + w(25) + w(30) = 26465 -> class 0;
    # T = 1: 5.19 against 7.41 -> class 1 (the two closer votes no longer outweigh three)
    def w(d, t):
        return math.exp(math.cos(math.radians(d)) / t)
    assert w(20, 0.1) + w(15, 0.1) > w(20, 0.1) + w(25, 0.1) + w(30, 0.1)
    assert w(20, 1) + w(15, 1) < w(20, 1) + w(25, 1) + w(30, 1)
    assert metrics.knn_accuracy(query, [0], gallery, g_labels, k=5) == 1.0
    assert metrics.knn_accuracy(query, [1], gallery, g_labels, k=5, temperature=1.0) == 1.0
    # k = 2: the two nearest are 5 (15 deg) and 0 or 40 (20 deg tie, stable -> 0): class 0 wins
    assert metrics.knn_accuracy(query, [0], gallery, g_labels, k=2) == 1.0
    # k larger than the gallery is clipped to the gallery
    assert metrics.knn_accuracy(query, [0], gallery, g_labels, k=21) == 1.0


def test_knn_temperature_changes_the_winner():
    # one very close neighbour of class 0 against two far ones of class 1
    gallery, g_labels, query = unit(0, 60, -60), [0, 1, 1], unit(0)
    # T = 0.1: exp(10) = 22026 vs 2 exp(5) = 297 -> class 0; T = 100: ~1.01 vs ~2.01 -> class 1
    assert metrics.knn_accuracy(query, [0], gallery, g_labels, k=3, temperature=0.1) == 1.0
    assert metrics.knn_accuracy(query, [1], gallery, g_labels, k=3, temperature=100) == 1.0


def test_zero_shot_accuracy_by_hand():
    classifier = unit(0, 90)
    images = unit(10, 80, 50, 30)  # predicted 0, 1, 1, 0
    assert metrics.zero_shot_accuracy(images, [0, 1, 0, 0], classifier) == pytest.approx(0.75)


def test_text_to_image_recall_by_hand():
    images = unit(0, 30, 60, 90)
    texts = unit(0, 85)
    # text 0 ranks images 0,1,2,3; relevant {2}: R@1 0, R@3 1. text 1 ranks 3,2,1,0; relevant {3}: hits at 1
    r = metrics.text_to_image_recall(texts, images, [[2], [3]], ks=(1, 3))
    assert r == {1: 0.5, 3: 1.0}


def test_caption_queries_merge_identical_texts():
    texts, relevant = metrics.caption_queries(["a dog", "a cat", "a dog"])
    assert texts == ["a dog", "a cat"] and relevant == [[0, 2], [1]]


def test_gpr1200_reader_takes_the_class_from_the_file_name(tmp_path):
    from PIL import Image

    from model_training.evaluation.gpr1200 import read_gpr1200

    zpath = tmp_path / "GPR1200.zip"
    with zipfile.ZipFile(zpath, "w") as z:
        for name in ("images/7_b.jpg", "images/7_a.jpg", "images/12_x.jpg"):
            img = tmp_path / "tmp.jpg"
            Image.new("RGB", (8, 8), (10, 20, 30)).save(img)
            z.write(img, name)
    items, labels = read_gpr1200(zpath)
    assert labels == ["12", "7", "7"]
    assert items[0].load().size == (8, 8)
