"""CFine losses: CMPM (docs/methods/cfine.md §7.1), CMPC (§7.2), diversity
(§7.3) and the triplet ranking loss (§7.4)."""
import math

import pytest
import torch
import torch.nn.functional as F

from mmreid_clip.models.losses import (CMPCLoss, CMPMLoss, DiversityLoss,
                                       TripletRankingLoss)
from mmreid_clip.registry import MODELS


def _val(t: torch.Tensor) -> float:
    return float(t.detach())


def _rand(*shape, seed=0):
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# --------------------------------------------------------------------- CMPM
def _cmpm_loop(v, t, pids, norm='l2'):
    """cfine.md §7.1 for one level, entry by entry."""
    b = len(pids)
    total = 0.
    for x, y in ((v, t), (t, v)):
        for i in range(b):
            logits = torch.stack(
                [x[i] @ (y[j] / y[j].norm()) for j in range(b)])
            p = logits.softmax(0)
            for j in range(b):
                same = [_val(pids[j] == pids[k]) for k in range(b)]
                denom = (
                    math.sqrt(sum(
                        s * s for s in same)) if norm == 'l2' else sum(same))
                q = _val(pids[i] == pids[j]) / denom
                total += _val(p[j] * (p[j].log() - math.log(q + 1e-8))) / b
    return total


@pytest.mark.parametrize('norm', ['l2', 'l1'])
def test_cmpm_matches_the_equation(norm):
    v, t = _rand(6, 8, seed=1) * 2, _rand(6, 8, seed=2) * 2
    pids = torch.tensor([0, 3, 3, 1, 3, 2])  # one identity three times
    loss = MODELS.build(
        dict(type='CMPMLoss', label_norm=norm, level_weights=None))
    assert loss.loss_name == 'loss_cmpm'
    assert _val(loss(v, t, pids)) == pytest.approx(
        _cmpm_loop(v, t, pids, norm), rel=1e-4)


def test_cmpm_l1_and_l2_agree_on_unique_identities_only():
    v, t = _rand(6, 8, seed=1), _rand(6, 8, seed=2)
    l1, l2 = CMPMLoss(label_norm='l1'), CMPMLoss(label_norm='l2')
    unique = torch.arange(6)
    assert _val(l1(v, t, unique)) == pytest.approx(_val(l2(v, t, unique)))
    shared = torch.tensor([0, 0, 1, 1, 2, 3])
    assert abs(_val(l1(v, t, shared)) - _val(l2(v, t, shared))) > 1e-3


def test_cmpm_image_side_is_unnormalised_and_no_temperature():
    t = _rand(5, 8, seed=2)
    pids = torch.arange(5)
    loss = CMPMLoss(level_weights=None)
    # the anchors are not normalised and there is no temperature: scaling
    # the aligned image features sharpens p^{v->t} towards Q = I
    aligned = F.normalize(t, dim=1)
    small = _val(loss(10 * aligned, aligned, pids))
    large = _val(loss(aligned, aligned, pids))
    assert small < large


def test_cmpm_level_weights_live_in_the_loss():
    v, t = _rand(4, 3, 8, seed=1), _rand(4, 3, 8, seed=2)
    pids = torch.tensor([0, 1, 1, 2])
    loss = CMPMLoss(loss_weight=2.0)  # default level weights (1, 1, 0.1)
    per = [_cmpm_loop(v[:, level], t[:, level], pids) for level in range(3)]
    torch.testing.assert_close(
        loss.per_level(v, t, pids), torch.tensor(per), rtol=1e-4, atol=1e-5)
    expected = 2.0 * (per[0] + per[1] + 0.1 * per[2])
    assert _val(loss(v, t, pids)) == pytest.approx(expected, rel=1e-4)
    with pytest.raises(ValueError):
        CMPMLoss(level_weights=(1, 1))(v, t, pids)
    with pytest.raises(ValueError):
        CMPMLoss(label_norm='l3')


# --------------------------------------------------------------------- CMPC
def test_cmpc_at_init_is_chance_level_six_ln_c():
    torch.manual_seed(0)
    c, d = 11003, 768  # CUHK-PEDES classifier at CFine's width
    loss = MODELS.build(dict(type='CMPCLoss', in_channels=d, num_classes=c))
    assert loss.loss_name == 'loss_cmpc'
    # BN-necked features at init: ~N(0, 1) per dimension
    v, t = _rand(32, 3, d, seed=1), _rand(32, 3, d, seed=2)
    pids = torch.randint(0, c, (32, ))
    value = _val(loss(v, t, pids))
    assert CMPCLoss.chance_level(c, 3) == pytest.approx(6 * math.log(c))
    assert value == pytest.approx(6 * math.log(c), rel=5e-3)  # 55.8


def test_cmpc_one_shared_xavier_classifier_gets_a_gradient():
    loss = CMPCLoss(in_channels=16, num_classes=10)
    params = list(loss.named_parameters())
    assert [n for n, _ in params] == ['cmpc_W']
    assert loss.cmpc_W.shape == (16, 10)
    bound = math.sqrt(6 / (16 + 10))
    assert loss.cmpc_W.abs().max() <= bound
    assert loss.cmpc_W.std() > bound / 4  # not a near-zero init
    v = _rand(4, 3, 16, seed=1).requires_grad_(True)
    t = _rand(4, 3, 16, seed=2).requires_grad_(True)
    loss(v, t, torch.tensor([0, 3, 3, 9])).backward()
    for p in (loss.cmpc_W, v, t):
        assert p.grad is not None and p.grad.abs().sum() > 0


def test_cmpc_matches_a_per_sample_reference():
    loss = CMPCLoss(in_channels=8, num_classes=5, level_weights=(1, 0.5))
    with torch.no_grad():
        loss.cmpc_W.mul_(3)  # column norms != 1, so normalisation matters
    v, t = _rand(4, 2, 8, seed=1), _rand(4, 2, 8, seed=2)
    pids = torch.tensor([0, 4, 2, 2])
    w = loss.cmpc_W / loss.cmpc_W.norm(dim=0, keepdim=True)
    expected = 0.
    for level, weight in ((0, 1.0), (1, 0.5)):
        for a, b in ((v, t), (t, v)):
            ce = 0.
            for i in range(4):
                x, other = a[i, level], b[i, level]
                proj = (x @ other / other.norm()) * other / other.norm()
                logits = proj @ w
                ce += _val(-logits.log_softmax(0)[pids[i]])
            expected += weight * ce / 4
    assert _val(loss(v, t, pids)) == pytest.approx(expected, rel=1e-5)
    # column scale is irrelevant
    before = _val(loss(v, t, pids))
    with torch.no_grad():
        loss.cmpc_W.mul_(torch.linspace(0.5, 4, 5))
    assert _val(loss(v, t, pids)) == pytest.approx(before, rel=1e-5)


def test_cmpc_learns_and_checks_labels():
    torch.manual_seed(0)
    loss = CMPCLoss(in_channels=16, num_classes=4)
    pids = torch.tensor([0, 1, 2, 3, 0, 1, 2, 3])
    centers = _rand(4, 16, seed=3) * 3
    v = centers[pids].unsqueeze(1) + _rand(8, 3, 16, seed=1)  # 3 levels
    t = v + 0.1 * _rand(8, 3, 16, seed=2)  # well-paired captions
    img_acc, _ = loss.accuracy(v, t, pids)
    assert _val(img_acc) < 1
    opt = torch.optim.Adam(loss.parameters(), lr=0.1)
    first = _val(loss(v, t, pids))
    for _ in range(30):  # only W is trained
        opt.zero_grad()
        loss(v, t, pids).backward()
        opt.step()
    assert _val(loss(v, t, pids)) < 0.05 * first
    img_acc, text_acc = loss.accuracy(v, t, pids)
    assert _val(img_acc) == 1.0 and _val(text_acc) == 1.0
    with pytest.raises(ValueError):
        loss(v, t, torch.tensor([0, 1, 2, 4, 0, 1, 2, 3]))
    with pytest.raises(ValueError):
        loss(v, t, torch.tensor([0, 1, 2, -1, 0, 1, 2, 3]))


# ---------------------------------------------------------------- diversity
def test_diversity_hand_case():
    # image: levels 1, 2 at 45 degrees -> ||G||_F = sqrt(2 * 0.5) = 1, /4
    img = torch.tensor([[[9., 9.], [1., 0.], [1., 1.]]])
    # text: orthogonal levels -> 0; level 0 (global) is not used
    txt = torch.tensor([[[1., 0.], [0., 2.], [3., 0.]]])
    loss = MODELS.build(dict(type='DiversityLoss', loss_weight=1.0))
    assert loss.loss_name == 'loss_div'
    assert _val(loss.single(img)) == pytest.approx(0.25)
    assert _val(loss.single(txt)) == pytest.approx(0.0, abs=1e-7)
    assert _val(loss(img, txt)) == pytest.approx(0.25)
    # collinear levels: sqrt(2) / 4; default weight 0.2, batch mean
    same = torch.tensor([[[0., 1.], [2., 0.], [-1., 0.]],
                         [[0., 1.], [1., 0.], [0., 1.]]])
    expected = 0.2 * (math.sqrt(2) / 4 + 0.0) / 2
    assert _val(DiversityLoss()(same)) == pytest.approx(expected)


def test_diversity_formula_and_gradient():
    f = _rand(5, 3, 16, seed=1).requires_grad_(True)
    loss = DiversityLoss(loss_weight=1.0)
    value = loss(f)
    cos = F.cosine_similarity(f[:, 1], f[:, 2], dim=-1)
    expected = (math.sqrt(2) * cos.abs() / 4).mean()
    assert _val(value) == pytest.approx(_val(expected), rel=1e-5)
    value.backward()
    assert f.grad[:, 0].abs().max() == 0 and f.grad[:, 1:].abs().sum() > 0
    with pytest.raises(ValueError):
        DiversityLoss(levels=(1, ))


# ------------------------------------------------------------------ triplet
def test_triplet_hardest_violating_negative_sum_and_margin():
    s = torch.tensor([[1.0, 2.0, 0.5, 1.1], [0.0, 1.0, 3.0, 0.2],
                      [0.2, 1.5, 1.0, 0.9], [0.3, 0.4, 0.1, 1.0]],
                     requires_grad=True)
    pids = torch.tensor([0, 1, 2, 3])
    loss = MODELS.build(dict(type='TripletRankingLoss', loss_weight=1.0))
    assert loss.loss_name == 'loss_triplet' and loss.margin == 0.2
    # image anchors (rows): 0 -> col 1 (2.0), 1 -> col 2 (3.0),
    # 2 -> col 1 (1.5), 3 -> none (all below 1.0)
    rows = (0.2 - 1 + 2.0) + (0.2 - 1 + 3.0) + (0.2 - 1 + 1.5)
    # text anchors (cols): 0 -> none, 1 -> row 0 (2.0 beats 1.5),
    # 2 -> row 1 (3.0), 3 -> row 0 (1.1)
    cols = (0.2 - 1 + 2.0) + (0.2 - 1 + 3.0) + (0.2 - 1 + 1.1)
    value = loss(s, pids)
    assert _val(value) == pytest.approx(rows + cols)
    value.backward()
    grad = torch.zeros(4, 4)
    for i, j in ((0, 1), (1, 2), (2, 1)):  # rows
        grad[i, j] += 1
        grad[i, i] -= 1
    for i, j in ((0, 1), (1, 2), (0, 3)):  # cols: (row, col)
        grad[i, j] += 1
        grad[j, j] -= 1
    torch.testing.assert_close(s.grad, grad)
    # default weight 10
    assert _val(TripletRankingLoss()(s, pids)) == pytest.approx(
        10 * (rows + cols), rel=1e-6)


def test_triplet_ignores_same_identity_columns():
    s = torch.tensor([[1.0, 5.0, 0.0], [5.0, 1.0, 0.0], [0.0, 0.0, 1.0]])
    loss = TripletRankingLoss(loss_weight=1.0)
    assert _val(loss(s, torch.tensor([7, 7, 8]))) == pytest.approx(0.0)
    assert _val(loss(s, torch.tensor([7, 6,
                                      8]))) == pytest.approx(4 * (0.2 - 1 + 5))


def test_triplet_within_margin_counts_only_for_vsepp_mining():
    s = torch.tensor([[1.0, 0.9, 0.0], [0.0, 1.0, 0.2], [0.0, 0.5, 1.0]])
    pids = torch.arange(3)
    faithful = TripletRankingLoss(loss_weight=1.0, dummy_triplet=False)
    assert _val(faithful(s, pids)) == 0.0
    vsepp = TripletRankingLoss(loss_weight=1.0, mining='hardest')
    # rows: 0.1, 0, 0 ; cols: 0, 0.1 (row 0), 0 -> 0.2
    assert _val(vsepp(s, pids)) == pytest.approx(0.2, abs=1e-6)
    with pytest.raises(ValueError):
        TripletRankingLoss(mining='semi-hard')


def test_triplet_dummy_when_no_violation():
    s = torch.tensor([[1.0, 0.9], [0.95, 1.0]])
    pids = torch.tensor([0, 1])
    loss = TripletRankingLoss(loss_weight=1.0)
    # image side: last anchor 1, first negative col 0: 0.2 - 1 + 0.95
    # text side: last anchor col 1, first negative row 0: 0.2 - 1 + 0.9
    assert _val(loss(s, pids)) == pytest.approx(0.15 + 0.1, abs=1e-6)
    assert _val(TripletRankingLoss(dummy_triplet=False)(s, pids)) == 0.0
    far = torch.tensor([[1.0, -1.0], [-1.0, 1.0]])
    assert _val(loss(far, pids)) == 0.0  # dummy, but relu clips it
    # a single identity: no negative anywhere
    assert _val(loss(s, torch.tensor([3, 3]))) == 0.0


def test_triplet_one_sided_violation_keeps_the_other_sides_dummy():
    # row 0 violates (col 1); no column has a violating row -> text dummy
    s = torch.tensor([[1.0, 1.2, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 1.0]])
    loss = TripletRankingLoss(loss_weight=1.0)
    image_side = 0.2 - 1.0 + 1.2
    # text dummy: anchor col 2, first negative row 0: relu(0.2 - 1 + 0)
    assert _val(loss(s, torch.arange(3))) == pytest.approx(image_side)
    with pytest.raises(ValueError):
        loss(s[:2], torch.arange(2))
