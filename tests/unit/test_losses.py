"""Every loss against a value computed by hand (scalar math, no torch ops in the reference)."""

from __future__ import annotations

import math

import pytest

torch = pytest.importorskip("torch")
import torch.nn.functional as F

from model_training.losses import (
    ArcFaceLoss,
    ClipLoss,
    MCIPLoss,
    MultiCaptionArcFaceLoss,
    SigLipLoss,
    positives_from_owner,
)


def unit(deg: float) -> list[float]:
    return [math.cos(math.radians(deg)), math.sin(math.radians(deg))]


def nll(logits: list[float], target: int) -> float:
    return -(logits[target] - math.log(sum(math.exp(v) for v in logits)))


def arcface(proxies_deg, x_deg, s=30.0, m=0.1):
    loss = ArcFaceLoss(len(proxies_deg), 2, scale=s, margin=m)
    with torch.no_grad():
        loss.proxies.copy_(torch.tensor([unit(d) for d in proxies_deg]) * 3.0)  # norms must not matter
    return loss


def test_arcface_adds_the_angular_margin_to_the_target_only():
    s, m = 30.0, 0.1
    loss = arcface([0, 90], None)
    x = torch.tensor([unit(30)]) * 5.0
    got = loss(x, torch.tensor([0])).item()
    want = nll([s * math.cos(math.radians(30) + m), s * math.cos(math.radians(60))], 0)
    assert got == pytest.approx(want, rel=1e-5)
    got1 = loss(x, torch.tensor([1])).item()
    want1 = nll([s * math.cos(math.radians(30)), s * math.cos(math.radians(60) + m)], 1)
    assert got1 == pytest.approx(want1, rel=1e-5)


def test_arcface_beyond_pi_minus_m_falls_back_to_the_monotone_branch():
    s, m = 30.0, 0.1
    loss = arcface([0, 90], None, s, m)
    x = torch.tensor([unit(180)])  # theta = pi > pi - m
    want = nll([s * (-1.0 - math.sin(math.pi - m) * m), s * math.cos(math.radians(90))], 0)
    assert loss(x, torch.tensor([0])).item() == pytest.approx(want, rel=1e-5)


def test_arcface_mean_over_batch_and_custom_scale():
    s, m = 10.0, 0.3
    loss = arcface([0, 120, 240], None, s, m)
    xs = torch.tensor([unit(10), unit(200)])
    want = 0
    for deg, target in ((10, 0), (200, 2)):
        logits = [s * math.cos(math.radians(abs(deg - p))) for p in (0, 120, 240)]
        theta = math.radians(abs(deg - (0, 120, 240)[target]))
        logits[target] = s * math.cos(theta + m)
        want += nll(logits, target) / 2
    assert loss(xs, torch.tensor([0, 2])).item() == pytest.approx(want, rel=1e-5)


def test_arcface_proxies_are_xavier_initialised_and_trainable():
    loss = ArcFaceLoss(1000, 64)
    bound = math.sqrt(6 / (1000 + 64))
    assert loss.proxies.requires_grad and loss.proxies.abs().max().item() <= bound
    assert loss.proxies.std().item() == pytest.approx(bound / math.sqrt(3), rel=0.05)


def test_multi_caption_arcface_by_hand():
    """Image 0 owns captions 0 and 1, image 1 owns caption 2, image 2 owns none."""
    s, m, h = 30.0, 0.1, 0.1
    img = [10, 100, 45]
    cap = [0, 30, 90]
    owner = [0, 0, 1]
    loss = MultiCaptionArcFaceLoss(s, m, h)
    positives = positives_from_owner(torch.tensor(owner), 3)
    got = loss(torch.tensor([unit(d) for d in img]), torch.tensor([unit(d) for d in cap]) * 2, positives).item()

    rows = []
    for i, d in enumerate(img):
        logits = []
        for j, c in enumerate(cap):
            theta = math.radians(abs(d - c))
            logits.append(s * (math.cos(theta + m) if owner[j] == i else math.cos(theta)))
        lse = math.log(sum(math.exp(v) for v in logits))
        nlls = [lse - v for v in logits]
        pos = [nlls[j] for j in range(3) if owner[j] == i]
        neg = [nlls[j] for j in range(3) if owner[j] != i]
        rows.append(sum(pos) / len(pos) + h * max(neg) if pos else 0.0)
    assert got == pytest.approx(sum(rows) / 3, rel=1e-5)


def test_multi_caption_equals_the_authors_formula_with_one_caption_per_image():
    """Where the authors' soft-target code and ours must agree: every image has exactly one caption."""
    torch.manual_seed(0)
    img, cap = torch.randn(6, 8), torch.randn(6, 8)
    ours = MultiCaptionArcFaceLoss()(img, cap, torch.eye(6, dtype=torch.bool)).item()

    cos = F.normalize(img) @ F.normalize(cap).t()
    sine = torch.sqrt((1 - cos**2).clamp(0, 1))
    phi = cos * math.cos(0.1) - sine * math.sin(0.1)
    phi = torch.where(cos > math.cos(math.pi - 0.1), phi, cos - math.sin(math.pi - 0.1) * 0.1)
    target = torch.eye(6)
    out = 30 * (target * phi + (1 - target) * cos)
    logp = F.log_softmax(out, dim=-1)
    theirs = (torch.sum(-target * logp, dim=-1) + torch.max(-(1 - target) * logp, dim=-1)[0] * 0.1).mean().item()
    assert ours == pytest.approx(theirs, rel=1e-5)


def test_a_caption_shared_by_two_images_is_positive_for_both():
    """Image 0 has captions {0, 1}, image 1 has {1}: caption 1 is one column, positive in both rows."""
    s, m, h = 30.0, 0.1, 0.1
    img, cap = [0, 50], [10, 40]
    positives = torch.tensor([[True, True], [False, True]])
    got = MultiCaptionArcFaceLoss(s, m, h)(torch.tensor([unit(d) for d in img]), torch.tensor([unit(d) for d in cap]), positives).item()
    rows = []
    for i, d in enumerate(img):
        logits = [s * (math.cos(math.radians(abs(d - c)) + m) if positives[i, j] else math.cos(math.radians(abs(d - c))))
                  for j, c in enumerate(cap)]
        lse = math.log(sum(math.exp(v) for v in logits))
        pos = [lse - logits[j] for j in range(2) if positives[i, j]]
        neg = [lse - logits[j] for j in range(2) if not positives[i, j]]
        rows.append(sum(pos) / len(pos) + (h * max(neg) if neg else 0.0))
    assert got == pytest.approx(sum(rows) / 2, rel=1e-5)


def test_multi_caption_without_any_caption_is_zero_and_keeps_the_graph():
    x = torch.randn(3, 4, requires_grad=True)
    value = MultiCaptionArcFaceLoss()(x, torch.zeros(0, 4), torch.zeros(3, 0, dtype=torch.bool))
    value.backward()
    assert value.item() == 0.0 and x.grad is not None


def test_mcip_mixes_three_quarters_class_and_one_quarter_caption_loss():
    torch.manual_seed(1)
    loss = MCIPLoss(num_classes=5, dim=4)
    x, labels = torch.randn(3, 4), torch.tensor([0, 4, 2])
    caps, positives = torch.randn(4, 4), positives_from_owner(torch.tensor([0, 0, 1, 2]), 3)
    out = loss(x, labels, caps, positives)
    a = loss.arcface(x, labels).item()
    b = MultiCaptionArcFaceLoss()(x, caps, positives).item()
    assert out["loss"].item() == pytest.approx(0.75 * a + 0.25 * b, rel=1e-6)
    assert out["class_loss"].item() == pytest.approx(a) and out["caption_loss"].item() == pytest.approx(b)


def test_clip_infonce_by_hand():
    img = [unit(0), unit(90)]
    txt = [unit(30), unit(100)]
    t = 10.0
    got = ClipLoss()(torch.tensor(img), torch.tensor(txt), torch.tensor(t)).item()
    def dot(a, b):
        return a[0] * b[0] + a[1] * b[1]
    logits = [[t * dot(i, x) for x in txt] for i in img]
    i2t = (nll(logits[0], 0) + nll(logits[1], 1)) / 2
    cols = [[logits[0][j], logits[1][j]] for j in range(2)]
    t2i = (nll(cols[0], 0) + nll(cols[1], 1)) / 2
    assert got == pytest.approx((i2t + t2i) / 2, rel=1e-6)


def test_siglip_sigmoid_by_hand():
    img = [unit(0), unit(90)]
    txt = [unit(20), unit(60)]
    t, b = 10.0, -5.0
    got = SigLipLoss()(torch.tensor(img), torch.tensor(txt), torch.tensor(t), torch.tensor(b)).item()
    def dot(a, c):
        return a[0] * c[0] + a[1] * c[1]
    total = 0.0
    for i in range(2):
        for j in range(2):
            z = 1 if i == j else -1
            total += -math.log(1 / (1 + math.exp(-z * (t * dot(img[i], txt[j]) + b))))
    assert got == pytest.approx(total / 2, rel=1e-6)
