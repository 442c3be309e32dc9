"""The chunked ranking core against hand-computed cases and a full sort."""
import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmreid_clip.evaluation.functional import (DEFAULT_MEMORY_BUDGET,
                                               QueryRanks, auto_chunk_size,
                                               rank_queries, summarize)
from mmreid_clip.evaluation.functional import ranking as ranking_module
from mmreid_clip.evaluation.functional.rank_kernel import HAS_NUMBA

BACKENDS = ['torch'] + (['numba'] if HAS_NUMBA else [])


@pytest.fixture(autouse=True, params=BACKENDS)
def backend(request, monkeypatch):
    """Run every test of this module with each CPU backend.

    ``backend='auto'`` (what the tests and the metrics pass) is pointed at
    the backend under test; CUDA inputs keep the torch backend.
    """
    resolve = ranking_module._resolve_backend

    def forced(name, device):
        if name == 'auto' and device.type == 'cpu':
            return resolve(request.param, device)
        return resolve(name, device)

    monkeypatch.setattr(ranking_module, '_resolve_backend', forced)
    return request.param


def reference(scores, q_labels, g_labels, junk=None):
    """The definition, one query at a time, with a full stable sort.

    Junk items are removed before sorting (a boolean-mask selection keeps
    index order, so ties still break by ascending gallery index).
    """
    scores, q_labels, g_labels = map(torch.as_tensor,
                                     (scores, q_labels, g_labels))
    first, ap, inp, num_pos = [], [], [], []
    for q in range(scores.size(0)):
        keep = (
            torch.ones(scores.size(1), dtype=torch.bool)
            if junk is None else ~torch.as_tensor(junk[q]))
        order = torch.sort(
            scores[q][keep], descending=True, stable=True).indices
        hits = (g_labels[keep][order] == q_labels[q]).nonzero().flatten() + 1
        m = hits.numel()
        num_pos.append(m)
        if m == 0:
            first.append(0), ap.append(0.), inp.append(0.)
            continue
        first.append(int(hits[0]))
        ap.append(float((torch.arange(1, m + 1) / hits.double()).mean()))
        inp.append(m / float(hits[-1]))
    return QueryRanks(
        torch.tensor(first, dtype=torch.long),
        torch.tensor(ap, dtype=torch.float64),
        torch.tensor(inp, dtype=torch.float64),
        torch.tensor(num_pos, dtype=torch.long))


def assert_same(got: QueryRanks, want: QueryRanks):
    assert got.first_rank.dtype == torch.int64
    assert got.num_pos.dtype == torch.int64
    assert got.ap.dtype == got.inp.dtype == torch.float64
    assert got.first_rank.tolist() == want.first_rank.tolist()
    assert got.num_pos.tolist() == want.num_pos.tolist()
    torch.testing.assert_close(got.ap, want.ap, rtol=0, atol=1e-12)
    torch.testing.assert_close(got.inp, want.inp, rtol=0, atol=1e-12)


# --------------------------------------------------------------------------
# hand-computed cases


def test_hand_computed_distinct_scores():
    g = [0, 1, 0, 2, 1, 0]  # gallery labels, indices 0..5
    scores = torch.tensor([
        [0.1, 0.9, 0.8, 0.7, 0.3, 0.2],  # q0, label 0
        [0.5, 0.6, 0.1, 0.2, 0.9, 0.3],  # q1, label 1
        [0.6, 0.5, 0.4, 0.3, 0.2, 0.1],  # q2, label 2
        [0.6, 0.5, 0.4, 0.3, 0.2, 0.1],  # q3, label 7: absent
    ])
    q = [0, 1, 2, 7]
    # q0: order 1,2,3,4,5,0 -> labels 1,0,2,1,0,0: positives at ranks 2,5,6
    #     first 2; AP = (1/2 + 2/5 + 3/6) / 3 = 1.4/3; INP = 3/6
    # q1: order 4,1,0,5,3,2 -> positives at ranks 1,2
    #     first 1; AP = (1/1 + 2/2) / 2 = 1; INP = 2/2 = 1
    # q2: order 0..5 -> the only positive (index 3) at rank 4
    #     first 4; AP = 1/4; INP = 1/4
    # q3: no positive -> invalid, all zeros
    ranks = rank_queries(scores=scores, query_labels=q, gallery_labels=g)
    assert ranks.first_rank.tolist() == [2, 1, 4, 0]
    assert ranks.num_pos.tolist() == [3, 2, 1, 0]
    assert ranks.valid.tolist() == [True, True, True, False]
    assert ranks.ap.tolist() == pytest.approx([1.4 / 3, 1.0, 0.25, 0.0])
    assert ranks.inp.tolist() == pytest.approx([0.5, 1.0, 0.25, 0.0])

    # over the 3 valid queries, in percent:
    #   R@1 = 1/3 (q1); R@2 = 2/3 (q0, q1); R@5 = R@10 = 3/3
    #   mAP = (1.4/3 + 1 + 0.25) / 3 = 57.222...%
    #   mINP = (0.5 + 1 + 0.25) / 3 = 58.333...%
    m = summarize(ranks, topk=(1, 2, 5, 10))
    assert m['R@1'] == pytest.approx(100 / 3)
    assert m['R@2'] == pytest.approx(200 / 3)
    assert m['R@5'] == m['R@10'] == 100.0
    assert m['mAP'] == pytest.approx(100 * (1.4 / 3 + 1.25) / 3)
    assert m['mINP'] == pytest.approx(100 * 1.75 / 3)
    assert m['num_valid'] == 3 and m['num_invalid'] == 1
    assert list(m) == [
        'R@1', 'R@2', 'R@5', 'R@10', 'mAP', 'mINP', 'num_valid', 'num_invalid'
    ]
    assert_same(ranks, reference(scores, q, g))


def test_all_equal_scores_rank_by_gallery_index():
    # every score ties: the ranking is the gallery order 0,1,2,3, so the
    # positives (indices 1 and 3) rank after the negatives before them:
    # ranks 2 and 4 -> first 2, AP = (1/2 + 2/4)/2 = 0.5, INP = 2/4
    scores = torch.full((1, 4), 0.5)
    ranks = rank_queries(
        scores=scores, query_labels=[0], gallery_labels=[1, 0, 1, 0])
    assert ranks.first_rank.tolist() == [2]
    assert ranks.ap.tolist() == [0.5]
    assert ranks.inp.tolist() == [0.5]


def test_partial_ties_and_signed_zero():
    # order: 0 (0.9), then the tie 1,2,3 in index order, then 4 (0.1);
    # positives (label 1) at indices 1,3,4 -> ranks 2,4,5
    # AP = (1/2 + 2/4 + 3/5)/3 = 1.6/3; INP = 3/5; first 2
    scores = torch.tensor([[0.9, 0.5, 0.5, 0.5, 0.1]])
    ranks = rank_queries(
        scores=scores, query_labels=[1], gallery_labels=[0, 1, 0, 1, 1])
    assert ranks.first_rank.tolist() == [2]
    assert ranks.ap.tolist() == pytest.approx([1.6 / 3])
    assert ranks.inp.tolist() == pytest.approx([0.6])
    # -0.0 == +0.0: a tie, so the positive at index 1 ranks second
    for dtype in (torch.float32, torch.float64):
        zeros = torch.tensor([[-0.0, 0.0], [0.0, -0.0]], dtype=dtype)
        ranks = rank_queries(
            scores=zeros, query_labels=[1, 1], gallery_labels=[0, 1])
        assert ranks.first_rank.tolist() == [2, 2]


def test_infinite_scores_are_ordered():
    inf = float('inf')
    scores = torch.tensor([[-inf, inf, 0.0, inf, -inf]])
    # order: 1, 3 (tied +inf), 2, 0, 4 (tied -inf); label-1 items 3 and 4
    # rank 2 and 5: AP = (1/2 + 2/5)/2 = 0.45, INP = 2/5
    for dtype in (torch.float32, torch.float64):
        ranks = rank_queries(
            scores=scores.to(dtype),
            query_labels=[1],
            gallery_labels=[0, 0, 0, 1, 1])
        assert ranks.first_rank.tolist() == [2]
        assert ranks.ap.tolist() == pytest.approx([0.45])
        assert ranks.inp.tolist() == pytest.approx([0.4])


def test_junk_is_removed_from_the_ranking():
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5]] * 3)
    g = [0, 1, 0, 1, 1]
    junk = torch.tensor([
        [True, False, False, True, False],  # a negative and a positive
        [False, True, False, True, True],  # every positive
        [False] * 5,  # nothing
    ])
    # q0 without junk: labels 0,1,0,1,1 -> ranks 2,4,5. Junk removes index
    #     0 (a negative: everything moves up) and index 3 (a positive: it
    #     is no longer counted): ranking 1,2,4 -> positives at ranks 1,3
    #     first 1; AP = (1/1 + 2/3)/2 = 5/6; INP = 2/3; 2 positives
    # q1: all positives are junk -> no positive, skipped
    # q2: ranks 2,4,5 -> AP = (1/2 + 2/4 + 3/5)/3 = 1.6/3, INP = 3/5
    seen = []

    def junk_fn(rows):
        seen.append((rows.start, rows.stop))
        return junk[rows]

    ranks = rank_queries(
        scores=scores,
        query_labels=[1, 1, 1],
        gallery_labels=g,
        junk_fn=junk_fn,
        chunk_size=2)
    assert seen == [(0, 2), (2, 3)]
    assert ranks.first_rank.tolist() == [1, 0, 2]
    assert ranks.num_pos.tolist() == [2, 0, 3]
    assert ranks.ap.tolist() == pytest.approx([5 / 6, 0.0, 1.6 / 3])
    assert ranks.inp.tolist() == pytest.approx([2 / 3, 0.0, 0.6])
    assert_same(ranks, reference(scores, [1, 1, 1], g, junk))


def test_junk_callback_may_return_none_and_is_validated():
    scores = torch.rand(4, 6)
    labels = [0, 1, 0, 1]
    g = [0, 1, 2, 0, 1, 2]
    plain = rank_queries(scores=scores, query_labels=labels, gallery_labels=g)
    none = rank_queries(
        scores=scores,
        query_labels=labels,
        gallery_labels=g,
        junk_fn=lambda rows: None,
        chunk_size=3)
    assert_same(none, plain)
    with pytest.raises(ValueError, match='bool tensor of shape'):
        rank_queries(
            scores=scores,
            query_labels=labels,
            gallery_labels=g,
            junk_fn=lambda rows: torch.zeros(
                rows.stop - rows.start, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match='bool tensor'):
        rank_queries(
            scores=scores,
            query_labels=labels,
            gallery_labels=g,
            junk_fn=lambda rows: torch.zeros(rows.stop - rows.start, 6))


def test_reid_style_junk_same_camera():
    # Market-1501 rule: same pid and same camera is junk
    torch.manual_seed(0)
    q_pid, g_pid = torch.randint(0, 6, (40, )), torch.randint(0, 6, (90, ))
    q_cam, g_cam = torch.randint(0, 3, (40, )), torch.randint(0, 3, (90, ))
    scores = torch.randint(0, 5, (40, 90)).float()

    def junk_fn(rows):
        return ((q_pid[rows, None] == g_pid[None]) &
                (q_cam[rows, None] == g_cam[None]))

    full_junk = junk_fn(slice(0, 40))
    want = reference(scores, q_pid, g_pid, full_junk)
    for chunk in (1, 7, 40):
        got = rank_queries(
            scores=scores,
            query_labels=q_pid,
            gallery_labels=g_pid,
            junk_fn=junk_fn,
            chunk_size=chunk)
        assert_same(got, want)


def test_label_junk_equals_the_dense_mask():
    """Junk given per own-label item gives the ranks of the dense mask,
    alone, combined with a dense junk_fn, and under ties."""
    gen = torch.Generator().manual_seed(3)
    q_pid = torch.randint(0, 5, (30, ), generator=gen)
    g_pid = torch.randint(0, 5, (120, ), generator=gen)
    q_cam = torch.randint(0, 3, (30, ), generator=gen)
    g_cam = torch.randint(0, 3, (120, ), generator=gen)
    scores = torch.randint(-3, 4, (30, 120), generator=gen).float()
    calls = []

    def label_junk_fn(rows, cols):
        calls.append(tuple(cols.shape))
        return q_cam[rows, None] == g_cam[cols]

    dense = (q_pid[:, None] == g_pid[None]) & (q_cam[:, None] == g_cam[None])
    for chunk in (1, 8, 30):
        got = rank_queries(
            scores=scores,
            query_labels=q_pid,
            gallery_labels=g_pid,
            label_junk_fn=label_junk_fn,
            chunk_size=chunk)
        assert_same(got, reference(scores, q_pid, g_pid, dense))
    # every call saw (rows, M) columns, M the chunk's largest own-pid group
    assert calls[-1] == (30, int(torch.bincount(g_pid)[q_pid].max()))
    # union with a dense rule on other items (every 7th gallery item)
    other = torch.zeros(30, 120, dtype=torch.bool)
    other[:, ::7] = True
    got = rank_queries(
        scores=scores,
        query_labels=q_pid,
        gallery_labels=g_pid,
        junk_fn=lambda rows: other[rows],
        label_junk_fn=label_junk_fn,
        chunk_size=8)
    assert_same(got, reference(scores, q_pid, g_pid, dense | other))
    with pytest.raises(ValueError, match='shaped like cols'):
        rank_queries(
            scores=scores,
            query_labels=q_pid,
            gallery_labels=g_pid,
            label_junk_fn=lambda rows, cols: torch.zeros(2, 2).bool())


# --------------------------------------------------------------------------
# agreement with the full sort


@pytest.mark.parametrize('dtype', [torch.float32, torch.float64, torch.half])
@pytest.mark.parametrize('levels', [2, 5, None])
def test_matches_full_sort_with_many_ties(dtype, levels):
    gen = torch.Generator().manual_seed(levels or 0)
    num_q, num_g = 37, 53
    if levels is None:
        scores = torch.randn(num_q, num_g, generator=gen)
    else:  # a few distinct values: ties everywhere
        scores = torch.randint(
            0, levels, (num_q, num_g), generator=gen).float() / levels
    scores = scores.to(dtype)
    # labels 0..7 on queries, 0..5 on the gallery: some queries have none
    q = torch.randint(0, 8, (num_q, ), generator=gen)
    g = torch.randint(0, 6, (num_g, ), generator=gen)
    junk = torch.rand(num_q, num_g, generator=gen) < 0.2
    for use_junk in (False, True):
        want = reference(scores, q, g, junk if use_junk else None)
        for chunk in (1, 4, num_q, num_q + 10, None):
            got = rank_queries(
                scores=scores,
                query_labels=q,
                gallery_labels=g,
                junk_fn=(lambda rows: junk[rows]) if use_junk else None,
                chunk_size=chunk)
            assert_same(got, want)


def test_medium_random_shape_matches_full_sort():
    gen = torch.Generator().manual_seed(1)
    num_q, num_g = 400, 700
    scores = torch.randn(num_q, num_g, generator=gen)
    scores[:, ::7] = scores[:, :1]  # plenty of exact ties with column 0
    q = torch.randint(0, 150, (num_q, ), generator=gen)
    g = torch.randint(0, 150, (num_g, ), generator=gen)
    want = reference(scores, q, g)
    assert_same(
        rank_queries(
            scores=scores, query_labels=q, gallery_labels=g, chunk_size=64),
        want)
    # numpy input, float64, and auto chunking
    assert_same(
        rank_queries(
            scores=scores.double().numpy(),
            query_labels=q.numpy(),
            gallery_labels=g.numpy()), want)


def _sparse_unit_features(num, dim, gen):
    """Rows with four entries of +-1: L2 norm 2, so the normalised entries
    are +-0.5 and every dot product is an exact multiple of 0.25 whatever
    the summation order (many ties, and exact under any BLAS blocking)."""
    feats = torch.zeros(num, dim)
    cols = torch.rand(num, dim, generator=gen).argsort(dim=1)[:, :4]
    signs = torch.randint(0, 2, (num, 4), generator=gen).float() * 2 - 1
    return feats.scatter_(1, cols, signs)


@pytest.mark.parametrize('normalize', [False, True])
def test_features_match_full_sort(normalize):
    gen = torch.Generator().manual_seed(2)
    qf = _sparse_unit_features(90, 6, gen)
    gf = _sparse_unit_features(120, 6, gen)
    q = torch.randint(0, 10, (90, ), generator=gen)
    g = torch.randint(0, 10, (120, ), generator=gen)
    scale = 0.5 if normalize else 1.0
    want = reference((qf * scale) @ (gf * scale).t(), q, g)
    for chunk in (1, 13, 200, None):
        got = rank_queries(qf, gf, q, g, normalize=normalize, chunk_size=chunk)
        assert_same(got, want)
    # float64 features go through the float64 path
    assert_same(
        rank_queries(
            qf.double(), gf.double(), q, g, normalize=normalize, chunk_size=7),
        want)


@settings(max_examples=60, deadline=None)
@given(
    num_q=st.integers(1, 12),
    num_g=st.integers(1, 15),
    levels=st.integers(1, 4),
    num_labels=st.integers(1, 4),
    chunk=st.integers(1, 14),
    junk_rate=st.sampled_from([0.0, 0.3]),
    double=st.booleans(),
    seed=st.integers(0, 2**31 - 1))
def test_property_matches_full_sort(num_q, num_g, levels, num_labels, chunk,
                                    junk_rate, double, seed):
    gen = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, levels, (num_q, num_g), generator=gen) - 1.0
    scores = scores.double() if double else scores
    q = torch.randint(0, num_labels, (num_q, ), generator=gen)
    g = torch.randint(0, num_labels, (num_g, ), generator=gen)
    junk = torch.rand(num_q, num_g, generator=gen) < junk_rate
    got = rank_queries(
        scores=scores,
        query_labels=q,
        gallery_labels=g,
        junk_fn=lambda rows: junk[rows],
        chunk_size=chunk)
    assert_same(got, reference(scores, q, g, junk))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_cuda_matches_cpu():
    gen = torch.Generator().manual_seed(3)
    scores = torch.randint(0, 6, (300, 500), generator=gen).float()
    q = torch.randint(0, 40, (300, ), generator=gen)
    g = torch.randint(0, 40, (500, ), generator=gen)
    junk = torch.rand(300, 500, generator=gen) < 0.1
    want = reference(scores, q, g, junk)
    junk_cuda = junk.cuda()
    got = rank_queries(
        scores=scores.cuda(),
        query_labels=q.cuda(),
        gallery_labels=g.cuda(),
        junk_fn=lambda rows: junk_cuda[rows],
        chunk_size=64)
    assert got.first_rank.is_cuda
    assert_same(QueryRanks(*(t.cpu() for t in got)), want)


# --------------------------------------------------------------------------
# chunking, edge cases and errors


def test_chunks_follow_the_memory_budget(backend):
    assert auto_chunk_size(19848) == DEFAULT_MEMORY_BUDGET // (20 * 19848)
    assert auto_chunk_size(
        19848, dtype=torch.float64) == (
            DEFAULT_MEMORY_BUDGET // (36 * 19848))
    # the compiled kernel keeps only the scores and the junk mask
    assert auto_chunk_size(
        19848, backend='numba') == DEFAULT_MEMORY_BUDGET // (6 * 19848)
    assert auto_chunk_size(
        19848, dtype=torch.float64, backend='numba') == (
            DEFAULT_MEMORY_BUDGET // (10 * 19848))
    assert auto_chunk_size(10**9) == 1
    seen = []

    def record(rows):
        seen.append(rows.stop - rows.start)

    scores = torch.rand(10, 50)
    rank_queries(
        scores=scores,
        query_labels=torch.zeros(10, dtype=torch.long),
        gallery_labels=torch.zeros(50, dtype=torch.long),
        junk_fn=record,
        memory_budget=3 * 20 * 50)
    # 3 rows of 50 cells at 20 bytes (torch), 10 rows at 6 bytes (numba)
    assert seen == ([3, 3, 3, 1] if backend == 'torch' else [10])


def test_empty_inputs():
    ranks = rank_queries(
        scores=torch.zeros(3, 0), query_labels=[1, 2, 3], gallery_labels=[])
    assert ranks.num_pos.tolist() == [0, 0, 0]
    assert ranks.first_rank.tolist() == [0, 0, 0]
    ranks = rank_queries(
        torch.zeros(0, 4), torch.ones(5, 4), [], [1, 1, 1, 1, 1])
    assert ranks.num_pos.numel() == 0
    with pytest.raises(ValueError, match='none of the 3 queries'):
        summarize(
            rank_queries(
                scores=torch.rand(3, 2),
                query_labels=[1, 2, 3],
                gallery_labels=[4, 5]))


def test_errors_are_clear():
    with pytest.raises(ValueError, match='either both'):
        rank_queries(query_labels=[0], gallery_labels=[0])
    with pytest.raises(ValueError, match='either both'):
        rank_queries(
            torch.rand(1, 2),
            query_labels=[0],
            gallery_labels=[0],
            scores=torch.rand(1, 1))
    with pytest.raises(ValueError, match='required'):
        rank_queries(scores=torch.rand(2, 2))
    with pytest.raises(ValueError, match='3-d but gallery features are 5-d'):
        rank_queries(
            torch.randn(2, 3), torch.randn(4, 5), [0, 1], [0, 1, 2, 3])
    with pytest.raises(ValueError, match='gallery_labels must be 1-D with 3'):
        rank_queries(
            scores=torch.rand(2, 3), query_labels=[0, 1], gallery_labels=[0])
    with pytest.raises(TypeError, match='integer labels'):
        rank_queries(
            scores=torch.rand(2, 3),
            query_labels=torch.zeros(2),
            gallery_labels=[0, 1, 2])
    with pytest.raises(TypeError, match='floating point'):
        rank_queries(
            scores=torch.ones(2, 3, dtype=torch.long),
            query_labels=[0, 1],
            gallery_labels=[0, 1, 2])
    with pytest.raises(ValueError, match='chunk_size'):
        rank_queries(
            scores=torch.rand(2, 3),
            query_labels=[0, 1],
            gallery_labels=[0, 1, 2],
            chunk_size=0)
    nan = torch.rand(4, 3)
    nan[2, 1] = math.nan
    with pytest.raises(ValueError, match='NaN scores for queries 2..3'):
        rank_queries(
            scores=nan,
            query_labels=[0] * 4,
            gallery_labels=[0, 1, 2],
            chunk_size=2)
    # +inf and -inf in one chunk make the sum NaN but are legal scores:
    # order 0 (+inf), 2 (0.0), 1 (-inf), so the positive 2 ranks second
    infs = torch.tensor([[float('inf'), -float('inf'), 0.0]])
    assert rank_queries(
        scores=infs, query_labels=[0],
        gallery_labels=np.array([1, 1, 0])).first_rank.tolist() == [2]
    with pytest.raises(ValueError, match='backend must be one of'):
        rank_queries(scores=infs, query_labels=[0], gallery_labels=[0, 0, 1],
                     backend='cython')


@pytest.mark.skipif(not HAS_NUMBA, reason='needs numba')
def test_backends_agree_on_a_tie_heavy_reid_shape():
    """Both backends, explicitly, on one input with junk and many ties."""
    gen = torch.Generator().manual_seed(7)
    scores = torch.randint(-4, 5, (40, 300), generator=gen).float() / 4
    q = torch.randint(0, 6, (40, ), generator=gen)
    g = torch.randint(0, 6, (300, ), generator=gen)
    junk = torch.rand(40, 300, generator=gen) < 0.1
    args = dict(scores=scores, query_labels=q, gallery_labels=g,
                junk_fn=lambda rows: junk[rows], chunk_size=16)
    got = rank_queries(backend='numba', **args)
    assert_same(got, rank_queries(backend='torch', **args))
    assert_same(got, reference(scores, q, g, junk))


@pytest.mark.skipif(not torch.cuda.is_available(), reason='needs CUDA')
def test_numba_backend_refuses_cuda_inputs():
    with pytest.raises(ValueError, match='CPU only'):
        rank_queries(scores=torch.rand(2, 3, device='cuda'),
                     query_labels=[0, 1], gallery_labels=[0, 1, 2],
                     backend='numba')


def test_many_positives_outliers_and_shared_buckets():
    """Rows with hundreds of positives, tied and clustered positive scores,
    an outlier that stretches the score range and +-inf: the compiled
    kernel's bucket table puts many positives in one bucket here."""
    gen = torch.Generator().manual_seed(5)
    g_labels = torch.randint(0, 2, (600, ), generator=gen)
    q_labels = torch.tensor([0, 1, 0, 1])
    scores = torch.randint(0, 6, (4, 600), generator=gen).float() / 1000
    scores[0, (g_labels == 0).nonzero()[0]] = 50.0  # a far outlier positive
    scores[1, :5] = float('inf')
    scores[2, 10:20] = -float('inf')
    scores[3] = torch.randn(600, generator=gen) * 1e-30  # subnormal range
    junk = torch.rand(4, 600, generator=gen) < 0.05
    want = reference(scores, q_labels, g_labels, junk)
    got = rank_queries(
        scores=scores,
        query_labels=q_labels,
        gallery_labels=g_labels,
        junk_fn=lambda rows: junk[rows])
    assert_same(got, want)
    assert int(got.num_pos.min()) > 200


@pytest.mark.skipif(not HAS_NUMBA, reason='needs numba')
@pytest.mark.parametrize('m,buckets,outlier', [
    (5, 300, False), (17, 255, False), (300, 4000, False),
    (3000, 150000, False), (300, 19200, True), (3000, 150000, True)])
def test_kernel_sorts_positives_like_a_full_sort(m, buckets, outlier):
    """The positives' radix sort on their bucket plus exact insertion steps
    give the order of a full sort (bucket, descending score, ascending
    index) from any input order, with tied buckets and scores, and with
    one to three 8-bit radix passes. With an outlier, every other positive
    shares one bucket: past _INSERTION_STEPS_PER_POSITIVE steps per
    positive, the merge-sort path."""
    from mmreid_clip.evaluation.functional.rank_kernel import (
        _INSERTION_STEPS_PER_POSITIVE, _sort_positives)
    rng = np.random.default_rng(m)
    raw = np.empty((3, m))
    raw[1] = rng.integers(0, m // 2 + 2, m) / 4  # many tied scores
    raw[2] = rng.permutation(10 * m)[:m]  # distinct gallery indices
    scale = 3.0
    if outlier:
        raw[1, rng.integers(m)] = 1e9
        scale = buckets / 1e9
    # a monotone bucket map with ties: higher score, lower bucket
    raw[0] = 1 + np.floor(
        (raw[1].max() - raw[1]) * scale).clip(0, buckets - 1)
    if outlier:  # a run's random order: about run**2 / 4 insertion steps
        run = np.unique(raw[0], return_counts=True)[1].max()
        assert run**2 / 4 > 2 * _INSERTION_STEPS_PER_POSITIVE * m
    want = np.lexsort((raw[2], -raw[1], raw[0]))
    out = np.zeros((3, m))
    _sort_positives(m, raw.copy(), np.empty((3, m)), np.empty(256, np.int64),
                    buckets, out)
    assert np.array_equal(out, raw[:, want])


@pytest.mark.skipif(not HAS_NUMBA, reason='needs numba')
def test_kernel_checks_its_inputs():
    """The compiled code does not bounds-check: rank_rows does it first."""
    from mmreid_clip.evaluation.functional.rank_kernel import rank_rows
    scores = np.zeros((2, 4), np.float32)
    state = np.ones((2, 1), np.int8)
    with pytest.raises(ValueError, match='index the 4 gallery columns'):
        rank_rows(scores, np.array([[0], [4]]), state)
    with pytest.raises(ValueError, match='must be'):
        rank_rows(scores, np.zeros((3, 1), np.int64), state)
    with pytest.raises(ValueError, match='shape of scores'):
        rank_rows(scores, np.zeros((2, 1), np.int64), state,
                  junk=np.zeros((2, 3), bool))
    first, ap, inp, num_pos, num_nan = rank_rows(
        np.array([[0.1, 0.9, np.nan, 0.5]], np.float32),
        np.array([[3]]), np.ones((1, 1), np.int8))
    assert num_pos.tolist() == [1]
    assert num_nan.tolist() == [1]  # reported, for the caller to raise
    assert first.tolist() == [0]  # a row with NaN scores is not ranked
    # a NaN positive (a NaN query feature) used to give rank 0 and divide
    # by it
    first, ap, inp, num_pos, num_nan = rank_rows(
        np.full((1, 4), np.nan, np.float32), np.array([[3]]),
        np.ones((1, 1), np.int8))
    assert num_nan.tolist() == [4] and ap.tolist() == [0.0]


@pytest.mark.skipif(not HAS_NUMBA, reason='needs numba')
def test_kernel_compiles_without_a_disk_cache():
    """Where numba has nowhere to cache (here: a function without a source
    file, which numba refuses to cache), the kernel is jitted uncached
    instead of breaking the import."""
    from mmreid_clip.evaluation.functional import rank_kernel
    namespace = {}
    exec('def twice(x):\n    return 2 * x\n', namespace)
    import numba
    with pytest.raises(RuntimeError, match='cannot cache'):
        numba.njit(cache=True)(namespace['twice'])
    assert rank_kernel._jit(namespace['twice'])(21) == 42


# --------------------------------------------------------------------------
# the fast paths of the CPU backend (kernel passes, threads, NumPy label
# bookkeeping, summarize) pinned to the definition


@pytest.mark.skipif(not HAS_NUMBA, reason='needs numba')
@pytest.mark.parametrize('in_range', ['few', 'most'])
def test_kernel_branches_and_threads_match_full_sort(in_range):
    """Rows where under a quarter of the gallery scores at least the last
    positive (the kernel compacts them first) and rows where most items
    do, with ties, own-label junk (state 2), a dense junk mask and
    queries without positives; every thread count gives the same ranks."""
    from mmreid_clip.evaluation.functional.rank_kernel import rank_rows
    gen = torch.Generator().manual_seed(17)
    num_q, num_g = 150, 400
    q_pid = torch.randint(0, 12, (num_q, ), generator=gen)
    q_pid[:5] = 99  # no positive in the gallery
    g_pid = torch.randint(0, 12, (num_g, ), generator=gen)
    scores = torch.randint(-8, 9, (num_q, num_g), generator=gen).float() / 8
    same = q_pid[:, None] == g_pid[None]
    # positives on top ('few' items in range) or at the bottom ('most')
    scores += (3.0 if in_range == 'few' else -3.0) * same
    own_junk = same & (torch.rand(num_q, num_g, generator=gen) < 0.3)
    other_junk = ~same & (torch.rand(num_q, num_g, generator=gen) < 0.05)
    for junk_fn in (None, lambda rows: other_junk[rows]):
        dense = own_junk | (other_junk if junk_fn else False)
        got = rank_queries(
            scores=scores,
            query_labels=q_pid,
            gallery_labels=g_pid,
            junk_fn=junk_fn,
            label_junk_fn=lambda rows, cols: own_junk[rows].gather(1, cols),
            chunk_size=64)
        assert_same(got, reference(scores, q_pid, g_pid, dense))
    assert int((got.num_pos == 0).sum()) >= 5
    # the kernel alone, one and several threads (blocks of 64 rows)
    cols = torch.nonzero(same)
    width = int(same.sum(1).max())
    pos_cols = np.zeros((num_q, width), np.int64)
    state = np.zeros((num_q, width), np.int8)
    fill = np.zeros(num_q, np.int64)
    for q, g in cols.tolist():
        pos_cols[q, fill[q]] = g
        state[q, fill[q]] = 2 if own_junk[q, g] else 1
        fill[q] += 1
    one = rank_rows(scores.numpy(), pos_cols, state, num_threads=1)
    assert_same(QueryRanks(*map(torch.from_numpy, one[:4])),
                reference(scores, q_pid, g_pid, own_junk))
    for threads in (2, 3, 7):
        many = rank_rows(scores.numpy(), pos_cols, state,
                         num_threads=threads)
        for a, b in zip(one, many):
            assert np.array_equal(a, b)
    # the positives in any column order (the lookup gives them ascending;
    # ties among them still break by gallery index)
    perm = np.argsort(np.random.default_rng(3).random(pos_cols.shape), 1)
    shuffled = rank_rows(scores.numpy(),
                         np.take_along_axis(pos_cols, perm, 1),
                         np.take_along_axis(state, perm, 1))
    for a, b in zip(one, shuffled):
        assert np.array_equal(a, b)


def test_gallery_index_lookup_on_cpu_is_the_definition():
    """Each query's own-label gallery items, ascending, padded with item
    0 and flagged invalid; labels missing from the gallery give none."""
    from mmreid_clip.evaluation.functional.rank_labels import _GalleryIndex
    g = torch.tensor([5, 2, 5, 9, 2, 5, 7])
    q = torch.tensor([5, 3, 9, 2, 100, -1])
    cols, valid = _GalleryIndex(g).lookup(q)
    assert cols.dtype == torch.int64 and valid.dtype == torch.bool
    assert cols.shape == valid.shape == (6, 3)
    for i, label in enumerate(q.tolist()):
        want = (g == label).nonzero().flatten().tolist()
        assert cols[i][valid[i]].tolist() == want
        assert cols[i][~valid[i]].tolist() == [0] * (3 - len(want))


def test_summarize_is_the_definition():
    """R@K, mAP and mINP averaged over the queries with a positive only."""
    ranks = QueryRanks(
        torch.tensor([1, 0, 3, 12, 5]),
        torch.tensor([1.0, 0.0, 0.5, 0.25, 0.2], dtype=torch.float64),
        torch.tensor([1.0, 0.0, 0.4, 0.1, 0.2], dtype=torch.float64),
        torch.tensor([1, 0, 2, 3, 1]))
    out = summarize(ranks, topk=(1, 3, 5, 10))
    valid = 4
    assert out['num_valid'] == valid and out['num_invalid'] == 1
    assert out['R@1'] == 100.0 * 1 / valid
    assert out['R@3'] == 100.0 * 2 / valid
    assert out['R@5'] == out['R@10'] == 100.0 * 3 / valid
    assert out['mAP'] == pytest.approx(100.0 * 1.95 / valid, abs=1e-12)
    assert out['mINP'] == pytest.approx(100.0 * 1.7 / valid, abs=1e-12)
    assert all(isinstance(out[k], float) for k in ('R@1', 'mAP', 'mINP'))
    assert isinstance(out['num_valid'], int)
