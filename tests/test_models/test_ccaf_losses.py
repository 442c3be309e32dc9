"""CLIP-ReID / CCAF losses (docs/methods/ccaf.md §4, §5, §7, §8): each
against a loop written straight from the formula, plus hand cases."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmreid_clip.models.losses import (BatchHardTripletLoss, CentroidAlignLoss,
                                       ClothesAdversarialLoss,
                                       ClothesOrthogonalLoss, SupConLoss,
                                       scaled_cosine_logits)
from mmreid_clip.registry import MODELS


def _rand(*shape, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(*shape, generator=g, dtype=dtype)


def _val(t) -> float:
    return float(t.detach()) if torch.is_tensor(t) else float(t)


def _pk_labels(p=4, k=3):
    return torch.arange(p).repeat_interleave(k)


# ------------------------------------------------------------------ SupCon
def _supcon_loop(a, b, la, lb, tau):
    """ccaf.md §4: -(1/|A|) sum_i (1/|P_i|) sum_{j in P_i} log softmax_j."""
    total = 0.
    for i in range(len(a)):
        logits = [_val(a[i] @ b[j]) / tau for j in range(len(b))]
        log_z = math.log(sum(math.exp(x) for x in logits))
        pos = [j for j in range(len(b)) if int(lb[j]) == int(la[i])]
        total += sum(logits[j] - log_z for j in pos) / len(pos)
    return -total / len(a)


@pytest.mark.parametrize('tau', [1.0, 0.5])
def test_supcon_matches_formula(tau):
    # image anchors with repeated labels, text candidates of other labels too
    a, b = _rand(8, 5, seed=1), _rand(6, 5, seed=2)
    la = torch.tensor([0, 0, 1, 1, 2, 2, 3, 3])
    lb = torch.tensor([3, 0, 1, 2, 0, 3])
    loss = MODELS.build(dict(type='SupConLoss', temperature=tau))
    assert _val(loss(a, b, la, lb)) == pytest.approx(
        _supcon_loop(a, b, la, lb, tau), abs=1e-6)
    # t2i direction: the roles swap, so it is a different number
    assert _val(loss(b, a, lb, la)) == pytest.approx(
        _supcon_loop(b, a, lb, la, tau), abs=1e-6)


def test_supcon_one_positive_per_row_is_cross_entropy():
    a, b = _rand(5, 4, seed=3), _rand(5, 4, seed=4)
    y = torch.tensor([4, 2, 0, 1, 3])
    ce = F.cross_entropy(a @ b.t(), torch.arange(5))
    assert _val(SupConLoss()(a, b, y, y)) == pytest.approx(_val(ce), abs=1e-9)


def test_supcon_hand_value_and_no_normalisation():
    a = torch.tensor([[1., 0.]])
    b = torch.tensor([[1., 0.], [0., 1.]])
    la, lb = torch.tensor([0]), torch.tensor([0, 1])
    loss = SupConLoss()
    # -log(e / (e + 1))
    assert _val(loss(a, b, la, lb)) == pytest.approx(
        math.log(1 + math.exp(-1)), abs=1e-6)
    # no L2 normalisation: scaling the anchor changes the logits
    assert _val(loss(3 * a, b, la, lb)) == pytest.approx(
        math.log(1 + math.exp(-3)), abs=1e-6)


def test_supcon_stable_grad_weight_and_errors():
    a = _rand(6, 8, seed=5, dtype=torch.float32).mul(100).requires_grad_()
    b = _rand(6, 8, seed=6, dtype=torch.float32)
    y = torch.tensor([0, 0, 1, 1, 2, 2])
    value = SupConLoss()(a, b, y, y)
    value.backward()
    assert math.isfinite(_val(value)) and torch.isfinite(a.grad).all()
    assert a.grad.abs().sum() > 0
    a2, b2 = a.detach() / 100, b
    base = _val(SupConLoss()(a2, b2, y, y))
    assert _val(SupConLoss(loss_weight=0.5)(a2, b2, y, y)) == pytest.approx(
        0.5 * base, rel=1e-6)
    with pytest.raises(ValueError, match='anchor 4 \\(label 2\\)'):
        SupConLoss()(a2, b2, y, torch.tensor([0, 0, 1, 1, 3, 3]))
    with pytest.raises(ValueError, match='labels'):
        SupConLoss()(a2, b2, y[:5], y)
    with pytest.raises(ValueError, match='temperature'):
        SupConLoss(temperature=0)


# ----------------------------------------------------------------- Triplet
def _triplet_loop(x, y, margin, normalize=False):
    """ccaf.md §5 batch-hard triplet, entry by entry."""
    if normalize:
        x = x / x.norm(dim=1, keepdim=True)
    terms = []
    for i in range(len(x)):
        pos = [
            _val((x[i] - x[j]).norm()) for j in range(len(x))
            if j != i and int(y[j]) == int(y[i])
        ]
        neg = [
            _val((x[i] - x[j]).norm()) for j in range(len(x))
            if int(y[j]) != int(y[i])
        ]
        if not pos or not neg:
            continue
        diff = max(pos) - min(neg)
        terms.append(
            math.log1p(math.exp(diff)) if margin is
            None else max(0., margin + diff))
    return sum(terms) / len(terms)


@pytest.mark.parametrize('margin,normalize', [(0.3, False), (None, False),
                                              (0.3, True), (5.0, False)])
def test_triplet_matches_formula(margin, normalize):
    x, y = _rand(12, 6, seed=7), _pk_labels(4, 3)
    loss = MODELS.build(
        dict(type='BatchHardTripletLoss', margin=margin, normalize=normalize))
    assert _val(loss(x, y)) == pytest.approx(
        _triplet_loop(x, y, margin, normalize), abs=1e-6)


def test_triplet_known_distances():
    x = torch.tensor([[0.], [1.], [3.], [5.]])
    y = torch.tensor([0, 0, 1, 1])
    # (d_ap, d_an) per anchor: (1, 3), (1, 2), (2, 2), (2, 4)
    assert _val(BatchHardTripletLoss()(x, y)) == pytest.approx(
        0.3 / 4, abs=1e-6)
    soft = sum(math.log1p(math.exp(d)) for d in (-2, -1, 0, -2)) / 4
    assert _val(BatchHardTripletLoss(margin=None)(x, y)) == pytest.approx(
        soft, abs=1e-6)
    # fp32 path (the training dtype) gives the same numbers
    assert _val(BatchHardTripletLoss(margin=1.5)(x.float(), y)) == \
        pytest.approx((0 + 0.5 + 1.5 + 0) / 4, abs=1e-6)


def test_triplet_anchors_without_positive_are_skipped():
    x = torch.tensor([[0.], [1.], [3.], [1.5]])
    y = torch.tensor([0, 0, 1, 2])  # anchors 2 and 3 have no positive
    # anchor 0: (1, 1.5) -> 0; anchor 1: (1, 0.5) -> 0.8
    assert _val(BatchHardTripletLoss()(x, y)) == pytest.approx(0.4, abs=1e-6)
    with pytest.raises(ValueError, match='no anchor'):
        BatchHardTripletLoss()(x, torch.tensor([0, 1, 2, 3]))
    with pytest.raises(ValueError, match='no anchor'):
        BatchHardTripletLoss()(x, torch.zeros(4, dtype=torch.long))
    with pytest.raises(ValueError, match='labels'):
        BatchHardTripletLoss()(x, torch.tensor([0, 0, 1]))


def test_triplet_grad_finite_with_duplicates_and_weight():
    x = _rand(8, 4, seed=8, dtype=torch.float32)
    x[1] = x[0]  # zero distance inside a positive pair
    x.requires_grad_()
    y = _pk_labels(2, 4)
    value = BatchHardTripletLoss(margin=10.)(x, y)
    value.backward()
    assert torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    base = _val(BatchHardTripletLoss()(x, y))
    assert _val(BatchHardTripletLoss(loss_weight=2.)(x, y)) == pytest.approx(
        2 * base, rel=1e-6)


# ---------------------------------------------------------------- Centroid
def _centroid_loop(f, g, y):
    """ccaf.md §7 I2I: (1/P) sum_p MSE(mean f, mean g) over the batch's ids."""
    ids = sorted({int(v) for v in y})
    total = 0.
    for p in ids:
        idx = [i for i in range(len(y)) if int(y[i]) == p]
        c = sum(f[i] for i in idx) / len(idx)
        cs = sum(g[i] for i in idx) / len(idx)
        total += _val(((c - cs)**2).sum()) / f.shape[1]
    return total / len(ids)


def test_centroid_matches_formula_and_hand_case():
    f, g = _rand(9, 5, seed=9), _rand(9, 5, seed=10)
    y = torch.tensor([2, 7, 2, 0, 7, 7, 0, 2, 5])  # unsorted, uneven K
    loss = MODELS.build(dict(type='CentroidAlignLoss'))
    assert _val(loss(f, g, y)) == pytest.approx(
        _centroid_loop(f, g, y), abs=1e-6)
    f = torch.tensor([[0., 0.], [2., 2.], [1., 1.]])
    g = torch.tensor([[1., 1.], [1., 1.], [1., 3.]])
    # id 0: centroids equal -> 0; id 1: (0 + 4) / 2 = 2; mean over ids = 1
    assert _val(loss(f, g, torch.tensor([0, 0, 1]))) == pytest.approx(1.0)


def test_centroid_zero_when_equal_and_gradient_routing():
    f = _rand(8, 4, seed=11, dtype=torch.float32)
    y = _pk_labels(2, 4)
    assert _val(CentroidAlignLoss()(f, f.clone(), y)) == 0.

    raw = f.clone().requires_grad_()
    shield = _rand(8, 4, seed=12, dtype=torch.float32).requires_grad_()
    CentroidAlignLoss()(raw, shield, y).backward()
    assert raw.grad.abs().sum() > 0 and shield.grad.abs().sum() > 0
    # mutual: the two branches get opposite gradients
    torch.testing.assert_close(raw.grad, -shield.grad)

    raw.grad = None
    shield.grad = None
    detached = CentroidAlignLoss(detach_target=True, loss_weight=3.)
    value = detached(raw, shield, y)
    value.backward()
    assert raw.grad.abs().sum() > 0 and shield.grad is None
    assert _val(value) == pytest.approx(
        3 * _val(CentroidAlignLoss()(raw, shield, y)), rel=1e-6)
    with pytest.raises(ValueError, match='one shape'):
        CentroidAlignLoss()(raw, shield[:4], y)
    with pytest.raises(ValueError, match='labels'):
        CentroidAlignLoss()(raw, shield, y[:4])


# ------------------------------------------------------------- Adversarial
def _adv_loop(z, c, y, p2c, eps):
    """ccaf.md §8 step B, sample by sample and class by class."""
    total = 0.
    n_clo = z.shape[1]
    for i in range(len(z)):
        own = [k for k in range(n_clo) if bool(p2c[int(y[i]), k])]
        others = [j for j in range(n_clo) if j not in own]
        for k in own:
            q = (1 - eps) * (k == int(c[i])) + eps / len(own)
            denom = math.exp(_val(z[i, k])) + sum(
                math.exp(_val(z[i, j])) for j in others)
            total -= q * math.log(math.exp(_val(z[i, k])) / denom)
    return total / len(z)


def _cc_setup(seed=13):
    # 4 identities wearing 3, 1, 2, 2 clothes ids (8 clothes classes)
    owner = torch.tensor([0, 0, 0, 1, 2, 2, 3, 3])
    p2c = torch.zeros(4, 8, dtype=torch.bool)
    p2c[owner, torch.arange(8)] = True
    c = torch.tensor([0, 2, 1, 3, 4, 5, 6, 7, 7, 3])
    y = owner[c]
    z = 16 * torch.tanh(_rand(len(c), 8, seed=seed))
    return z, c, y, p2c


@pytest.mark.parametrize('eps', [0.1, 0.0, 0.5])
def test_adversarial_matches_formula(eps):
    z, c, y, p2c = _cc_setup()
    loss = MODELS.build(dict(type='ClothesAdversarialLoss', epsilon=eps))
    assert _val(loss(z, c, y, p2c)) == pytest.approx(
        _adv_loop(z, c, y, p2c, eps), abs=1e-6)
    # metainfo stores pid2clothes as a numpy bool array
    assert _val(loss(z, c, y, p2c.numpy())) == pytest.approx(
        _val(loss(z, c, y, p2c)), abs=1e-12)


@pytest.mark.parametrize('eps', [0.0, 0.1])
def test_adversarial_is_cross_entropy_with_one_outfit_per_identity(eps):
    # identity p wears clothes perm[p] only; q collapses to onehot(c)
    perm = torch.tensor([2, 0, 4, 1, 3])
    p2c = torch.zeros(5, 5, dtype=torch.bool)
    p2c[torch.arange(5), perm] = True
    y = torch.tensor([0, 1, 2, 3, 4, 2, 0])
    c = perm[y]
    z = _rand(7, 5, seed=14)
    ce = F.cross_entropy(z, c)
    assert _val(ClothesAdversarialLoss(epsilon=eps)(z, c, y, p2c)) == \
        pytest.approx(_val(ce), abs=1e-9)


def test_adversarial_does_not_push_down_own_other_outfits():
    z, c, y, p2c = _cc_setup()
    z = z.float().requires_grad_()
    ClothesAdversarialLoss()(z, c, y, p2c).backward()
    z_ce = z.detach().clone().requires_grad_()
    F.cross_entropy(z_ce, c).backward()
    # sample 0: identity 0, wears clothes 0; clothes 1 and 2 are also its own
    for k in (1, 2):
        assert z_ce.grad[0, k] > 0  # CE lowers the logit
        assert z.grad[0, k] < 0  # CAL raises it (descent on -grad)
    # other identities' clothes are pushed down as in CE
    assert (z.grad[0, 3:] > 0).all()
    assert torch.isfinite(z.grad).all()


def test_adversarial_weight_degenerate_and_errors():
    z, c, y, p2c = _cc_setup()
    base = _val(ClothesAdversarialLoss()(z, c, y, p2c))
    assert _val(ClothesAdversarialLoss(loss_weight=0.25)(
        z, c, y, p2c)) == pytest.approx(
            0.25 * base, rel=1e-9)
    # a single identity owning every outfit: nothing to be adversarial
    # against, the loss is 0 and the gradient stays finite
    zz = z.clone().requires_grad_()
    one = torch.ones(1, 8, dtype=torch.bool)
    value = ClothesAdversarialLoss()(zz, c, torch.zeros_like(y), one)
    value.backward()
    assert _val(value) == 0. and torch.isfinite(zz.grad).all()

    bad_c = c.clone()
    bad_c[2] = 4  # identity 0 does not wear clothes 4
    with pytest.raises(ValueError, match=r'sample 2 .*pid2clothes\[0, 4\]'):
        ClothesAdversarialLoss()(z, bad_c, y, p2c)
    with pytest.raises(ValueError, match='N_id x 8'):
        ClothesAdversarialLoss()(z, c, y, p2c[:, :7])
    with pytest.raises(ValueError, match='pids must be in'):
        ClothesAdversarialLoss()(z, c, y + 4, p2c)
    with pytest.raises(ValueError, match='epsilon'):
        ClothesAdversarialLoss(epsilon=1.5)


def test_scaled_cosine_logits():
    f, u = _rand(3, 4, seed=15), _rand(5, 4, seed=16)
    z = scaled_cosine_logits(f, u)
    for i in range(3):
        for k in range(5):
            cos = _val(f[i] @ u[k]) / _val(f[i].norm() * u[k].norm())
            assert _val(z[i, k]) == pytest.approx(16 * cos, abs=1e-9)
    assert _val(scaled_cosine_logits(f, f, scale=2.)[1, 1]) == \
        pytest.approx(2.)
    with pytest.raises(ValueError, match='prototypes'):
        scaled_cosine_logits(f, u[:, :3])


# -------------------------------------------------------------- Orthogonal
def test_orthogonal_matches_formula_and_hand_cases():
    f, u = _rand(6, 5, seed=17), _rand(4, 5, seed=18)
    c = torch.tensor([3, 0, 0, 2, 1, 3])
    ref = sum((_val(f[i] @ u[c[i]]) / _val(f[i].norm() * u[c[i]].norm()))**2
              for i in range(6)) / 6
    loss = MODELS.build(dict(type='ClothesOrthogonalLoss'))
    assert _val(loss(f, u, c)) == pytest.approx(ref, abs=1e-6)
    e = torch.eye(2)
    # parallel, antiparallel: cos^2 = 1; orthogonal: 0
    assert _val(loss(torch.stack([e[0], -e[1]]), e,
                     torch.tensor([0, 1]))) == pytest.approx(1.)
    assert _val(loss(e, e, torch.tensor([1, 0]))) == pytest.approx(0.)


def test_orthogonal_stop_gradient_and_weight():
    f = _rand(6, 5, seed=19, dtype=torch.float32).requires_grad_()
    u = _rand(4, 5, seed=20, dtype=torch.float32).requires_grad_()
    c = torch.tensor([3, 0, 0, 2, 1, 3])
    value = ClothesOrthogonalLoss(loss_weight=2.)(f, u, c)
    value.backward()
    assert f.grad.abs().sum() > 0 and torch.isfinite(f.grad).all()
    assert u.grad is None  # sg[u]
    assert _val(value) == pytest.approx(
        2 * _val(ClothesOrthogonalLoss()(f, u, c)), rel=1e-6)
    ClothesOrthogonalLoss(detach_prototypes=False)(f, u, c).backward()
    assert u.grad is not None and u.grad.abs().sum() > 0
    with pytest.raises(ValueError, match='clothes_ids must be in'):
        ClothesOrthogonalLoss()(f, u, torch.tensor([0, 1, 2, 3, 4, 0]))


# ----------------------------------------------------------- CE with label
# smoothing: ours and mmpretrain's LabelSmoothLoss are CLIP-ReID's CE_ls
@pytest.mark.parametrize('eps', [0.1, 0.0])
@pytest.mark.parametrize('loss_type',
                         ['LabelSmoothCrossEntropyLoss', 'LabelSmoothLoss'])
def test_label_smooth_loss_is_spec_ce_ls(eps, loss_type):
    z, y = _rand(6, 5, seed=21), torch.tensor([0, 4, 2, 2, 1, 3])
    extra = dict(num_classes=5) if loss_type == 'LabelSmoothLoss' else {}
    loss = MODELS.build(
        dict(
            type=loss_type,
            label_smooth_val=float(eps),
            loss_weight=0.25,
            **extra))
    ref = 0.
    for i in range(6):
        log_z = math.log(sum(math.exp(_val(v)) for v in z[i]))
        for k in range(5):
            q = (1 - eps) * (k == int(y[i])) + eps / 5
            ref -= q * (_val(z[i, k]) - log_z) / 6
    assert _val(loss(z, y)) == pytest.approx(0.25 * ref, abs=1e-6)
    assert _val(F.cross_entropy(z, y, label_smoothing=eps)) == \
        pytest.approx(ref, abs=1e-9)
    np.testing.assert_allclose(_val(loss(z.float(), y)), 0.25 * ref, atol=1e-6)


def test_label_smooth_ce_refuses_bad_shapes_and_labels():
    loss = MODELS.build(dict(type='LabelSmoothCrossEntropyLoss'))
    with pytest.raises(ValueError, match='B x N logits and B labels'):
        loss(torch.zeros(4, 3), torch.zeros(3, dtype=torch.long))
    with pytest.raises(IndexError):
        loss(torch.zeros(2, 3), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match='label_smooth_val'):
        MODELS.build(dict(type='LabelSmoothCrossEntropyLoss',
                          label_smooth_val=1.0))
