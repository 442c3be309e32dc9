import numpy as np
import pytest
import torch

from mmreid_clip.evaluation.functional import rank_queries, summarize


def brute_force(scores, q_labels, g_labels, junk=None, topk=(1, 5, 10)):
    """Per-query loop over a full stable sort: the reference definition."""
    firsts, aps, inps = [], [], []
    for q in range(scores.shape[0]):
        keep = np.ones(scores.shape[1], bool) if junk is None else ~junk[q]
        idx = np.nonzero(keep)[0]
        # stable descending: sort by (-score, index)
        order = idx[np.lexsort((idx, -scores[q, idx]))]
        hits = g_labels[order] == q_labels[q]
        if not hits.any():
            continue
        ranks = np.nonzero(hits)[0] + 1
        firsts.append(ranks[0])
        aps.append(np.mean(np.arange(1, len(ranks) + 1) / ranks))
        inps.append(len(ranks) / ranks[-1])
    firsts = np.array(firsts)
    out = {f'R@{k}': 100 * np.mean(firsts <= k) for k in topk}
    out['mAP'] = 100 * np.mean(aps)
    out['mINP'] = 100 * np.mean(inps)
    out['num_valid'] = len(firsts)
    return out


def test_hand_computed_case():
    # 2 queries, 5 gallery items.
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5],
                           [0.1, 0.9, 0.3, 0.8, 0.2]])
    q = torch.tensor([1, 2])
    g = torch.tensor([0, 1, 0, 1, 2])
    # query 0 (label 1): ranking 0,1,2,3,4 -> positives at ranks 2 and 4:
    #   AP = (1/2 + 2/4)/2 = 0.5, INP = 2/4 = 0.5, first = 2
    # query 1 (label 2): ranking 1,3,2,4,0 -> positive at rank 4:
    #   AP = 1/4, INP = 1/4, first = 4
    ranks = rank_queries(scores=scores, query_labels=q, gallery_labels=g)
    assert ranks.first_rank.tolist() == [2, 4]
    assert ranks.ap.tolist() == pytest.approx([0.5, 0.25])
    assert ranks.inp.tolist() == pytest.approx([0.5, 0.25])
    m = summarize(ranks, topk=(1, 2, 4))
    assert m['R@1'] == 0 and m['R@2'] == 50 and m['R@4'] == 100
    assert m['mAP'] == pytest.approx(37.5)
    assert m['mINP'] == pytest.approx(37.5)


def test_ties_keep_gallery_order():
    # every score equal: the positive at index 3 ranks 4th
    scores = torch.zeros(1, 5)
    ranks = rank_queries(scores=scores, query_labels=torch.tensor([7]),
                         gallery_labels=torch.tensor([0, 1, 2, 7, 3]))
    assert ranks.first_rank.tolist() == [4]
    assert ranks.ap.tolist() == pytest.approx([0.25])


def test_query_without_positive_is_skipped():
    scores = torch.tensor([[0.5, 0.4], [0.3, 0.9]])
    ranks = rank_queries(scores=scores, query_labels=torch.tensor([1, 5]),
                         gallery_labels=torch.tensor([1, 2]))
    assert ranks.valid.tolist() == [True, False]
    m = summarize(ranks)
    assert m['R@1'] == 100 and m['num_invalid'] == 1
    with pytest.raises(ValueError, match='no query'):
        summarize(rank_queries(scores=scores[1:], query_labels=torch.tensor(
            [5]), gallery_labels=torch.tensor([1, 2])))


def test_junk_is_removed_from_the_ranking():
    scores = torch.tensor([[0.9, 0.8, 0.7]])
    q, g = torch.tensor([1]), torch.tensor([1, 0, 1])
    junk = torch.tensor([[True, False, False]])
    # without junk: first positive at rank 1; with item 0 junked the
    # ranking is (1, 2): positive at rank 2, and the junked positive is gone
    ranks = rank_queries(scores=scores, query_labels=q, gallery_labels=g,
                         junk_fn=lambda rows: junk[rows])
    assert ranks.first_rank.tolist() == [2]
    assert ranks.num_pos.tolist() == [1]
    assert ranks.ap.tolist() == pytest.approx([0.5])


@pytest.mark.parametrize('chunk', [1, 3, 17, 1000])
def test_matches_brute_force_with_many_ties(chunk):
    rng = np.random.default_rng(chunk)
    scores = rng.integers(0, 4, size=(40, 60)).astype(np.float32) / 4
    q = rng.integers(0, 6, 40)
    g = rng.integers(0, 6, 60)
    junk = rng.random((40, 60)) < 0.1
    ref = brute_force(scores, q, g, junk, topk=(1, 5, 10))
    ranks = rank_queries(scores=torch.from_numpy(scores),
                         query_labels=torch.from_numpy(q),
                         gallery_labels=torch.from_numpy(g),
                         junk_fn=lambda rows: torch.from_numpy(junk[rows]),
                         chunk_size=chunk)
    got = summarize(ranks)
    for key in ('R@1', 'R@5', 'R@10', 'mAP', 'mINP', 'num_valid'):
        assert got[key] == pytest.approx(ref[key], abs=1e-9), key


def test_features_path_equals_scores_path():
    torch.manual_seed(0)
    qf, gf = torch.randn(50, 16), torch.randn(80, 16)
    ql, gl = torch.randint(0, 10, (50, )), torch.randint(0, 10, (80, ))
    a = rank_queries(qf, gf, ql, gl, normalize=True, chunk_size=7)
    qn = torch.nn.functional.normalize(qf, dim=1)
    gn = torch.nn.functional.normalize(gf, dim=1)
    b = rank_queries(scores=qn @ gn.t(), query_labels=ql, gallery_labels=gl)
    assert torch.equal(a.first_rank, b.first_rank)
    assert torch.allclose(a.ap, b.ap)
    ref = brute_force((qn @ gn.t()).numpy(), ql.numpy(), gl.numpy())
    assert summarize(a)['mAP'] == pytest.approx(ref['mAP'], abs=1e-9)


def test_bad_shapes():
    with pytest.raises(ValueError, match='-d'):
        rank_queries(torch.randn(2, 3), torch.randn(4, 5),
                     torch.zeros(2), torch.zeros(4))
    with pytest.raises(ValueError, match='labels'):
        rank_queries(scores=torch.zeros(2, 3), query_labels=torch.zeros(2),
                     gallery_labels=torch.zeros(2))
