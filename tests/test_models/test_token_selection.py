"""CFine token selection (docs/methods/cfine.md §3)."""
import pytest
import torch

from mmreid_clip.models.utils import (TokenGroups, TokenSelector,
                                      compute_num_selected, select_tokens)
from mmreid_clip.registry import MODELS


def _inputs(b, n, w=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    tokens = torch.randn(b, n, w, generator=g)
    # softmax rows, like a head-averaged attention row: all positive
    scores = torch.randn(b, n, generator=g).softmax(-1)
    return tokens, scores


@pytest.mark.parametrize('n, ratio, k', [(197, 0.1, 19), (100, 0.2, 20),
                                         (193, 0.1, 19), (100, 0.29, 29),
                                         (197, 0.05, 9), (10, 0.3, 3)])
def test_k_is_floor_of_ratio_times_padded_length(n, ratio, k):
    assert compute_num_selected(n, ratio) == k


def test_bad_ratio_or_too_many_groups_raise():
    with pytest.raises(ValueError):
        compute_num_selected(100, 0.)
    with pytest.raises(ValueError):
        compute_num_selected(100, 1.5)
    tokens, scores = _inputs(2, 10)
    # 2 groups of K=5 need 10 non-global tokens; only 9 exist
    with pytest.raises(ValueError):
        select_tokens(tokens, scores, 0.5)
    with pytest.raises(ValueError):  # K = floor(0.05 * 10) = 0
        select_tokens(tokens, scores, 0.05)
    with pytest.raises(ValueError):
        select_tokens(tokens, scores[:, :5], 0.1)


@pytest.mark.parametrize('n, ratio, k', [(197, 0.1, 19), (100, 0.2, 20)])
def test_group_shapes(n, ratio, k):
    tokens, scores = _inputs(3, n)
    sel = select_tokens(tokens, scores, ratio)
    assert isinstance(sel, TokenGroups) and sel.k == k
    assert sel.group1.shape == sel.group2.shape == (3, k, 32)
    assert sel.union.shape == (3, 2 * k, 32)
    assert sel.union_indices.shape == (3, 2 * k)
    assert sel.union_indices.dtype == torch.long
    assert sel.valid is None  # faithful mode: every slot counts
    torch.testing.assert_close(sel.group1, sel.union[:, :k])
    torch.testing.assert_close(sel.group2, sel.union[:, k:])
    torch.testing.assert_close(sel.group_indices(1), sel.union_indices[:, k:])
    with pytest.raises(IndexError):
        sel.group(2)


def test_cls_excluded_even_with_the_largest_attention():
    tokens, scores = _inputs(4, 197)
    scores[:, 0] = 10.0  # CLS: by far the largest raw score
    sel = select_tokens(tokens, scores, 0.1)
    assert not (sel.union_indices == 0).any()
    assert sel.union_indices.min() >= 1


def test_sorted_order_and_gather_match_a_per_sample_reference():
    tokens, scores = _inputs(3, 100, seed=3)
    sel = select_tokens(tokens, scores, 0.2)
    for b in range(3):
        s = scores[b].clone()
        s[0] = 0
        ranked = sorted(range(100), key=lambda i: -float(s[i]))[:40]
        assert sel.union_indices[b].tolist() == ranked
        torch.testing.assert_close(sel.union[b], tokens[b, ranked])
        picked = s[sel.union_indices[b]]
        assert (picked[:-1] >= picked[1:]).all()  # descending
        # group 1 holds the K best, group 2 the next K
        assert picked[19] >= picked[20]


def test_faithful_text_quirk_selects_pad_and_cls_for_short_captions():
    n, length = 100, 8  # [CLS] + 6 words + [SEP], then 92 PAD
    tokens, _ = _inputs(1, n)
    scores = torch.zeros(1, n)
    scores[0, :length] = torch.tensor([.3, .1, .05, .2, .08, .12, .1, .05])
    mask = torch.arange(n).unsqueeze(0) < length
    sel = select_tokens(tokens, scores, 0.2, mask=mask)  # mask ignored
    idx = sel.union_indices[0].tolist()
    # 7 real non-CLS tokens first, by score (ties by position) ...
    assert idx[:7] == [3, 5, 1, 6, 4, 2, 7]
    # ... then the zero-score ties in position order: CLS, then PADs
    assert idx[7:] == [0] + list(range(length, length + 32))
    assert sel.valid is None


def test_exclude_padding_flags_pad_and_cls_slots_invalid():
    n, length = 100, 8
    tokens, _ = _inputs(2, n)
    scores = torch.zeros(2, n)
    scores[:, :length] = torch.tensor([.3, .1, .05, .2, .08, .12, .1, .05])
    mask = torch.ones(2, n, dtype=torch.bool)
    mask[0, length:] = False  # sample 1 is a full-length caption
    scores[1] = torch.linspace(1, 0.01, n)
    sel = select_tokens(tokens, scores, 0.2, mask=mask, exclude_padding=True)
    assert sel.valid.shape == (2, 40)
    assert sel.valid[0].tolist() == [True] * 7 + [False] * 33
    assert sel.union_indices[0, :7].tolist() == [3, 5, 1, 6, 4, 2, 7]
    assert sel.valid[1].all()
    assert sel.union_indices[1].tolist() == list(range(1, 41))
    invalid_positions = sel.union_indices[0][~sel.valid[0]]
    assert ((invalid_positions == 0) | (invalid_positions >= length)).all()
    assert sel.group_valid(0)[0].sum() == 7 and not sel.group_valid(1)[0].any()


def test_global_index_is_the_zeroed_position():
    tokens, scores = _inputs(2, 20)
    eot = torch.tensor([7, 12])
    scores[0, 7] = scores[1, 12] = 5.0
    sel = select_tokens(tokens, scores, 0.2, global_index=eot)
    assert not (sel.union_indices == eot.view(2, 1)).any()
    # position 0 is an ordinary token then, selected when well attended
    scores[:, 0] = 4.0
    sel = select_tokens(tokens, scores, 0.2, global_index=eot)
    assert (sel.union_indices[:, 0] == 0).all()


def test_gradient_flows_to_tokens_only_through_the_gathered_slots():
    tokens, scores = _inputs(2, 197)
    tokens.requires_grad_(True)
    scores.requires_grad_(True)
    sel = select_tokens(tokens, scores, 0.1)
    sel.union.sum().backward()
    assert scores.grad is None
    hit = torch.zeros(2, 197)
    hit.scatter_(1, sel.union_indices, 1.)
    torch.testing.assert_close(tokens.grad[..., 0], hit)


def test_selector_module_is_registered_and_matches_the_function():
    selector = MODELS.build(
        dict(type='TokenSelector', ratio=0.1, num_groups=3))
    assert isinstance(selector, TokenSelector)
    assert selector.num_selected(197) == 19
    tokens, scores = _inputs(2, 197)
    sel = selector(tokens, scores)
    ref = select_tokens(tokens, scores, 0.1, num_groups=3)
    assert sel.union.shape == (2, 57, 32) and sel.num_groups == 3
    torch.testing.assert_close(sel.union_indices, ref.union_indices)
    torch.testing.assert_close(sel.group(2), ref.union[:, 38:])
