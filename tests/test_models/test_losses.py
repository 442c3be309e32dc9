import math

import pytest
import torch
import torch.nn.functional as F

from mmreid_clip.registry import MODELS


def _feats(b=6, d=8, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, d, generator=g), torch.randn(b, d, generator=g)


def test_sdm_matches_definition():
    v, t = _feats()
    pids = torch.tensor([0, 0, 1, 2, 2, 2])
    loss = MODELS.build(dict(type='SDMLoss', temperature=0.5))
    s = 2.0 * F.normalize(v, dim=1) @ F.normalize(t, dim=1).t()
    total = 0.
    for logits in (s, s.t()):
        for i in range(6):
            p = logits[i].softmax(0)
            same = (pids == pids[i]).float()
            q = same / same.sum()
            total += float((p * (p.log() - (q + 1e-8).log())).sum()) / 6
    assert float(loss(v, t, pids)) == pytest.approx(total, rel=1e-5)


def test_sdm_is_small_when_aligned_and_positive_otherwise():
    v, _ = _feats()
    pids = torch.arange(6)
    loss = MODELS.build(dict(type='SDMLoss', temperature=0.02))
    assert float(loss(v, v.clone(), pids)) < 1e-3
    assert float(loss(v, torch.randn(6, 8), pids)) > 1.0
    with pytest.raises(ValueError):
        MODELS.build(dict(type='SDMLoss', temperature=0.))


def test_infonce_value_and_learnable_temperature():
    v, t = _feats()
    loss = MODELS.build(dict(type='InfoNCELoss', init_temperature=0.1))
    assert float(loss.scale) == pytest.approx(10.0, rel=1e-5)
    value = loss(v, t, torch.arange(6))
    logits = 10.0 * F.normalize(v, dim=1) @ F.normalize(t, dim=1).t()
    ref = (F.cross_entropy(logits, torch.arange(6)) +
           F.cross_entropy(logits.t(), torch.arange(6))) / 2
    assert float(value) == pytest.approx(float(ref), rel=1e-5)
    value.backward()
    assert loss.log_scale.grad is not None
    fixed = MODELS.build(dict(type='InfoNCELoss', learnable=False))
    assert not any(p.requires_grad for p in fixed.parameters())
    big = MODELS.build(dict(type='InfoNCELoss', init_temperature=1e-4))
    assert float(big.scale) == pytest.approx(100.0)  # clamped


def test_shared_id_head():
    head = MODELS.build(
        dict(type='SharedIDHead', in_channels=8, num_classes=4))
    head.init_weights()
    v, t = _feats()
    pids = torch.tensor([0, 1, 2, 3, 0, 1])
    loss = head.loss(v, t, pids)
    # near-zero init weights: the loss starts at ln(C)
    assert float(loss) == pytest.approx(math.log(4), abs=0.05)
    with pytest.raises(ValueError, match='num_classes'):
        head.loss(v, t, torch.tensor([0, 1, 2, 3, 4, 5]))
