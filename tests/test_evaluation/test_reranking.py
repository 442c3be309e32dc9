"""k-reciprocal re-ranking against hand computation and a set-based
reference written from the paper's equations."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmreid_clip.evaluation.functional import (DEFAULT_RERANK_MAX_ITEMS,
                                               k_reciprocal_rerank,
                                               rank_queries, summarize)


def reference(qf, gf, k1, k2, lambda_value):
    """Zhong et al. 2017, Eqs. 3-12, with Python sets, one item at a time.

    N(p, k) = p, then its k nearest other items (distance, then index).
    """
    x = F.normalize(torch.cat([qf, gf]).double(), dim=1)
    n, num_q = x.size(0), qf.size(0)
    d = (2 - 2 * x @ x.t()).clamp(min=0).tolist()
    for i in range(n):
        d[i][i] = 0.0
    k = min(k1, n - 1)
    half = min((k1 + 1) // 2, k)

    def nearest(p, size):
        others = sorted((j for j in range(n) if j != p),
                        key=lambda j: (d[p][j], j))
        return [p] + others[:size]

    def recip(p, size):
        return {g for g in nearest(p, size) if p in nearest(g, size)}

    r_full = [recip(p, k) for p in range(n)]
    r_half = [recip(p, half) for p in range(n)]
    v = []
    for p in range(n):
        star = set(r_full[p])
        for q in r_full[p]:
            if len(r_full[p] & r_half[q]) >= 2 / 3 * len(r_half[q]):
                star |= r_half[q]
        v.append({g: math.exp(-d[p][g]) for g in star})
    if k2 > 1:
        expanded = []
        for p in range(n):
            nbrs = nearest(p, n)[:k2]
            row = {}
            for g in nbrs:
                for j, w in v[g].items():
                    row[j] = row.get(j, 0.0) + w / len(nbrs)
            expanded.append(row)
        v = expanded
    out = torch.empty(num_q, n - num_q, dtype=torch.float64)
    for p in range(num_q):
        for g in range(num_q, n):
            cols = set(v[p]) | set(v[g])
            lo = sum(min(v[p].get(j, 0.0), v[g].get(j, 0.0)) for j in cols)
            hi = sum(max(v[p].get(j, 0.0), v[g].get(j, 0.0)) for j in cols)
            out[p, g - num_q] = ((1 - lambda_value) * (1 - lo / hi) +
                                 lambda_value * d[p][g])
    return out


def unit(degrees):
    rad = math.radians(degrees)
    return [math.cos(rad), math.sin(rad)]


def test_hand_computed_case():
    # 2-D unit vectors at 0, 10, 30 and 100 degrees: a (query), b, c, d.
    # k1 = 1: N(a) = [a, b], N(b) = [b, a], N(c) = [c, b], N(d) = [d, c],
    # so R(a) = {a, b}, R(b) = {b, a}, R(c) = {c}, R(d) = {d}; no
    # expansion adds anything (k1/2 rounds up to 1) and k2 = 1 keeps V:
    # V_a = {a: 1, b: e}, V_b = {b: 1, a: e}, e = exp(-d(a, b)).
    # d_J(a, b) = 1 - 2e / 2 = 1 - e; c and d share nothing with a: 1.
    qf = torch.tensor([unit(0)])
    gf = torch.tensor([unit(10), unit(30), unit(100)])
    dist = [2 - 2 * math.cos(math.radians(t)) for t in (10, 30, 100)]
    e = math.exp(-dist[0])
    want = [
        0.7 * (1 - e) + 0.3 * dist[0], 0.7 + 0.3 * dist[1], 0.7 + 0.3 * dist[2]
    ]
    got = k_reciprocal_rerank(qf, gf, k1=1, k2=1, lambda_value=0.3)
    assert got.shape == (1, 3) and got.dtype == torch.float32
    assert got[0].tolist() == pytest.approx(want, abs=1e-6)
    torch.testing.assert_close(
        got.double(), reference(qf, gf, 1, 1, 0.3), rtol=0, atol=1e-6)


@pytest.mark.parametrize('k1,k2,lambda_value', [(3, 1, 0.3), (4, 3, 0.3),
                                                (5, 6, 0.0), (20, 6, 0.3),
                                                (6, 4, 1.0)])
def test_matches_set_based_reference(k1, k2, lambda_value):
    gen = torch.Generator().manual_seed(k1 * 10 + k2)
    centres = torch.randn(5, 8, generator=gen)
    gp = torch.randint(5, (22, ), generator=gen)
    qp = torch.randint(5, (9, ), generator=gen)
    gf = centres[gp] + 0.7 * torch.randn(22, 8, generator=gen)
    qf = centres[qp] + 0.7 * torch.randn(9, 8, generator=gen)
    got = k_reciprocal_rerank(qf, gf, k1, k2, lambda_value)
    want = reference(qf, gf, k1, k2, lambda_value)
    torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-5)


def test_expansion_of_eq4_changes_the_sets():
    # a case where R*(p) != R(p) for some p, checked against the
    # reference (guards against an expansion that never fires)
    gen = torch.Generator().manual_seed(3)
    x = torch.randn(40, 6, generator=gen)
    got = k_reciprocal_rerank(x[:10], x[10:], k1=6, k2=1)
    want = reference(x[:10], x[10:], 6, 1, 0.3)
    torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-5)
    plain = reference_without_expansion(x[:10], x[10:], 6)
    assert (want - plain).abs().max() > 1e-3


def reference_without_expansion(qf, gf, k1):
    """Jaccard distances from R(p, k1) alone (no Eq. 4), lambda = 0.3."""
    x = F.normalize(torch.cat([qf, gf]).double(), dim=1)
    n, num_q = x.size(0), qf.size(0)
    d = (2 - 2 * x @ x.t()).clamp(min=0)
    d.fill_diagonal_(0)
    order = [[i] + sorted(
        (j
         for j in range(n) if j != i), key=lambda j: (float(d[i, j]), j))[:k1]
             for i in range(n)]
    v = torch.zeros(n, n, dtype=torch.float64)
    for p in range(n):
        for g in order[p]:
            if p in order[g]:
                v[p, g] = math.exp(-float(d[p, g]))
    lo = torch.minimum(v[:num_q, None], v[None, num_q:]).sum(2)
    hi = torch.maximum(v[:num_q, None], v[None, num_q:]).sum(2)
    return 0.7 * (1 - lo / hi) + 0.3 * d[:num_q, num_q:]


def test_identical_features_rank_first_and_lambda_one_is_original():
    gen = torch.Generator().manual_seed(0)
    gf = torch.randn(30, 16, generator=gen)
    qf = torch.cat([gf[[4, 17]], torch.randn(3, 16, generator=gen)])
    got = k_reciprocal_rerank(qf, gf)
    assert got.shape == (5, 30)
    # a query's exact copy in the gallery: same neighbours, same V rows,
    # so d_J = 0 and d = 0: the smallest distance of the row
    assert got[0, 4] == pytest.approx(0, abs=1e-6)
    assert got[1, 17] == pytest.approx(0, abs=1e-6)
    assert int(got[0].argmin()) == 4 and int(got[1].argmin()) == 17
    assert (got >= -1e-7).all()

    only_original = k_reciprocal_rerank(qf, gf, lambda_value=1.0)
    cos = F.normalize(qf, dim=1) @ F.normalize(gf, dim=1).t()
    torch.testing.assert_close(
        only_original, (2 - 2 * cos).clamp(min=0), rtol=0, atol=1e-6)


def test_jaccard_part_is_symmetric_in_query_and_gallery():
    # with lambda = 0 only d_J is left, which is symmetric: swapping the
    # roles of queries and gallery transposes the result (the pool is the
    # same set of items, only its order changes)
    gen = torch.Generator().manual_seed(1)
    qf = torch.randn(12, 10, generator=gen)
    gf = torch.randn(25, 10, generator=gen)
    a = k_reciprocal_rerank(qf, gf, k1=5, k2=3, lambda_value=0.0)
    b = k_reciprocal_rerank(gf, qf, k1=5, k2=3, lambda_value=0.0)
    torch.testing.assert_close(a, b.t(), rtol=0, atol=1e-6)
    assert ((a >= 0) & (a <= 1 + 1e-6)).all()
    # d_J is 1 exactly where the two V rows share no non-zero
    assert (a > 1 - 1e-6).any() and (a < 1 - 1e-3).any()


def clustered_views(seed):
    """Identities made of several 'views' (sub-clusters) far apart: a
    query sees its own view, the other views of its identity are reached
    through their neighbours (the manifold structure re-ranking uses)."""
    gen = torch.Generator().manual_seed(seed)
    ids, per, views, dim = 30, 12, 3, 32
    centre = torch.randn(ids, dim, generator=gen)
    view = torch.randn(ids, views, dim, generator=gen)
    gp = torch.arange(ids).repeat_interleave(per)
    gv = torch.randint(views, (gp.numel(), ), generator=gen)
    gf = centre[gp] + view[gp, gv] + 0.6 * torch.randn(
        gp.numel(), dim, generator=gen)
    qp = torch.arange(ids)
    qv = torch.randint(views, (ids, ), generator=gen)
    qf = centre[qp] + view[qp, qv] + 0.6 * torch.randn(ids, dim, generator=gen)
    return qf, gf, qp, gp


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_reranking_improves_map_on_a_manifold(seed):
    qf, gf, qp, gp = clustered_views(seed)
    plain = summarize(rank_queries(qf, gf, qp, gp, normalize=True))
    dist = k_reciprocal_rerank(qf, gf)
    rerank = summarize(
        rank_queries(scores=-dist, query_labels=qp, gallery_labels=gp))
    assert rerank['mAP'] > plain['mAP'] + 3.0
    assert rerank['mINP'] > plain['mINP']


def test_numpy_input_and_small_pools():
    # a pool smaller than k1 + 1: every item sees all the others
    qf = np.array([[1.0, 0.0], [0.0, 1.0]], dtype=np.float32)
    gf = np.array([[1.0, 0.1], [0.1, 1.0], [-1.0, 0.0]], dtype=np.float32)
    got = k_reciprocal_rerank(qf, gf)
    want = reference(torch.from_numpy(qf), torch.from_numpy(gf), 20, 6, 0.3)
    torch.testing.assert_close(got.double(), want, rtol=0, atol=1e-5)
    assert got.argmin(1).tolist() == [0, 1]


def test_errors_are_clear():
    q, g = torch.randn(3, 4), torch.randn(5, 4)
    with pytest.raises(ValueError, match='4-d but gallery features are 5-d'):
        k_reciprocal_rerank(q, torch.randn(5, 5))
    with pytest.raises(ValueError, match='2-D'):
        k_reciprocal_rerank(q[0], g)
    with pytest.raises(TypeError, match='floating point'):
        k_reciprocal_rerank(q.long(), g)
    with pytest.raises(ValueError, match='0 queries'):
        k_reciprocal_rerank(q[:0], g)
    with pytest.raises(ValueError, match='k1 must be a positive integer'):
        k_reciprocal_rerank(q, g, k1=0)
    with pytest.raises(ValueError, match=r'k2 must be .*\[1, 4\]'):
        k_reciprocal_rerank(q, g, k1=3, k2=5)
    with pytest.raises(ValueError, match='lambda_value'):
        k_reciprocal_rerank(q, g, lambda_value=1.5)
    with pytest.raises(ValueError, match='NaN'):
        k_reciprocal_rerank(torch.full((3, 4), float('nan')), g)
    with pytest.raises(
            ValueError,
            match='3 queries \\+ 5 gallery items = 8 pool items '
            'is above max_items=7'):
        k_reciprocal_rerank(q, g, max_items=7)
    assert k_reciprocal_rerank(q, g, max_items=None).shape == (3, 5)
    assert DEFAULT_RERANK_MAX_ITEMS >= 20_000
