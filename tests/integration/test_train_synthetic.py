"""The synthetic benchmark's data has the paper's problem by construction."""

from __future__ import annotations

import numpy as np

from model_training import synthetic


def test_captions_name_colour_and_shape_only():
    data = synthetic.make_set(synthetic.all_classes()[:12], per_class=3, seed=0)
    for i, caption in enumerate(data.captions):
        cls = data.classes[data.labels[i]]
        assert cls.colour in caption and cls.shape in caption
        assert not any(p in caption for p in synthetic.PATTERNS[1:])
    assert all(not any(p in c for p in synthetic.PATTERNS[1:]) for c in synthetic.caption_corpus())


def test_held_out_pairs_are_disjoint_and_bring_every_pattern():
    train, val, test = synthetic.split_classes(0, 3, 10)
    assert (len(train), len(val), len(test)) == (162, 18, 60)
    def pairs(classes):
        return {c.caption_class for c in classes}
    assert not (pairs(train) & pairs(test)) and not (pairs(val) & pairs(test)) and not (pairs(train) & pairs(val))
    for pair in pairs(test):
        assert sorted(c.pattern for c in test if c.caption_class == pair) == sorted(synthetic.PATTERNS)


def test_drawing_is_seeded_and_patterns_differ_visibly():
    a = synthetic.make_set(synthetic.all_classes()[:6], per_class=2, seed=4)
    b = synthetic.make_set(synthetic.all_classes()[:6], per_class=2, seed=4)
    assert np.array_equal(a.images, b.images) and a.captions == b.captions
    solid = synthetic.FineClass("red", "square", "solid")
    stripes = synthetic.FineClass("red", "square", "vertical stripes")
    rng = np.random.default_rng(0)
    s, v = synthetic.draw(solid, rng).astype(float), synthetic.draw(stripes, np.random.default_rng(0)).astype(float)
    centre = (slice(12, 20), slice(12, 20))
    # stripes alternate between the colour and its dark variant along x; the solid fill does not
    assert v[centre][..., 0].std(axis=1).mean() > 3 * s[centre][..., 0].std(axis=1).mean()
