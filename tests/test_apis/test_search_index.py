"""Exact chunked top-k and the faiss indices against a full stable sort."""
import os.path as osp

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from mmreid_clip.apis.search_index import (ExactIndex, build_index,
                                           chunked_topk, load_index,
                                           search_chunk_size, stable_topk)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tool_loader import load_tool  # noqa: E402


def _reference(scores, k):
    values, indices = torch.sort(scores, dim=1, descending=True, stable=True)
    return values[:, :k], indices[:, :k]


def _quantised(n, d, levels, seed):
    """Features on a coarse grid: exact dot products and many ties."""
    g = torch.Generator().manual_seed(seed)
    return torch.randint(-levels, levels + 1, (n, d), generator=g).float() / 4


@pytest.mark.parametrize('k', [1, 3, 7, 20, 64])
@pytest.mark.parametrize('dtype', [torch.float32, torch.float64])
def test_stable_topk_equals_stable_full_sort_with_ties(k, dtype):
    g = torch.Generator().manual_seed(k)
    # few distinct values: many ties, also across the k-th place
    scores = torch.randint(0, 4, (9, 40), generator=g).to(dtype)
    scores[0] = 1.0  # a row that is all one tie
    scores[1, ::2] = float('inf')
    scores[2, :5] = float('-inf')
    values, indices = stable_topk(scores, k)
    ref_v, ref_i = _reference(scores, min(k, 40))
    assert torch.equal(indices, ref_i)
    assert torch.equal(values, ref_v)
    assert values.dtype == dtype


def test_stable_topk_breaks_ties_by_ascending_index():
    scores = torch.tensor([[0.5, 0.9, 0.5, 0.9, 0.5, 0.1, 0.5, 0.5]])
    _, indices = stable_topk(scores, 4)
    # 1 and 3 (0.9) first, then the two leftmost of the 0.5 tie
    assert indices.tolist() == [[1, 3, 0, 2]]


@settings(max_examples=60, deadline=None)
@given(
    rows=st.integers(1, 6),
    cols=st.integers(1, 50),
    k=st.integers(1, 60),
    distinct=st.integers(1, 5),
    seed=st.integers(0, 2**16))
def test_stable_topk_property(rows, cols, k, distinct, seed):
    g = torch.Generator().manual_seed(seed)
    scores = torch.randint(0, distinct, (rows, cols), generator=g).float()
    _, indices = stable_topk(scores, k)
    assert torch.equal(indices, _reference(scores, min(k, cols))[1])


@pytest.mark.parametrize('chunk_size', [1, 3, 16, None])
def test_chunked_topk_equals_full_sort_of_all_scores(chunk_size):
    gallery = _quantised(300, 8, 2, seed=0)
    gallery[17] = gallery[5]  # exact duplicate rows: tied scores
    queries = _quantised(23, 8, 2, seed=1)
    full = queries @ gallery.t()
    for k in (1, 10, 299, 400):
        values, indices = chunked_topk(queries, gallery, k, chunk_size)
        ref_v, ref_i = _reference(full, min(k, 300))
        assert torch.equal(indices, ref_i), k
        assert torch.equal(values, ref_v), k


def test_chunked_topk_chunk_size_follows_the_budget_and_validates():
    assert search_chunk_size(1000, 16 * 1000 * 7) == 7
    assert search_chunk_size(10**9, 1) == 1
    q = torch.randn(3, 4)
    with pytest.raises(ValueError, match='4-d but the gallery is 5-d'):
        chunked_topk(q, torch.randn(10, 5), 2)
    with pytest.raises(ValueError, match='k must be >= 1'):
        chunked_topk(q, torch.randn(10, 4), 0)
    nan = torch.randn(10, 4)
    nan[3, 1] = float('nan')
    with pytest.raises(ValueError, match='NaN scores'):
        chunked_topk(q, nan, 2)
    with pytest.raises(TypeError, match='floating point'):
        chunked_topk(q, torch.ones(10, 4, dtype=torch.long), 2)
    # numpy in, float64 kept
    v, i = chunked_topk(q.double().numpy(), torch.randn(10, 4).double(), 2)
    assert v.dtype == torch.float64 and i.shape == (3, 2)


def test_exact_index_add_search_save_load(tmp_path):
    gallery = torch.nn.functional.normalize(torch.randn(50, 16), dim=1)
    index = build_index('exact', feats=gallery[:30], chunk_size=4)
    index.add(gallery[30:])
    assert len(index) == 50 and index.dim == 16
    queries = gallery[[3, 41]] + 0.01
    scores, ids = index.search(queries, 5)
    assert ids[:, 0].tolist() == [3, 41]
    path = index.save(str(tmp_path / 'g.npz'), meta=dict(note='x'))
    loaded, meta = load_index(path)
    assert isinstance(loaded, ExactIndex) and meta == dict(note='x')
    assert loaded.chunk_size == 4
    s2, i2 = loaded.search(queries, 5)
    assert torch.equal(ids, i2) and torch.equal(scores, s2)
    with pytest.raises(ValueError, match='16-d'):
        index.add(torch.randn(2, 8))


def test_load_index_rejects_other_files(tmp_path):
    other = tmp_path / 'other.npz'
    np.savez(other, features=np.zeros((2, 2), np.float32))
    with pytest.raises(ValueError, match='not a mmreid_clip search index'):
        load_index(str(other))
    with pytest.raises(FileNotFoundError):
        load_index(str(tmp_path / 'absent.npz'))
    with pytest.raises(ValueError, match='unknown index kind'):
        build_index('annoy', dim=4)


def test_faiss_absent_gives_a_clear_import_error(monkeypatch):
    import builtins
    real_import = builtins.__import__

    def no_faiss(name, *args, **kwargs):
        if name == 'faiss':
            raise ImportError('No module named faiss')
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, '__import__', no_faiss)
    with pytest.raises(ImportError, match='pip install faiss-cpu'):
        build_index('flat', dim=4)
    # the exact index needs nothing
    assert len(build_index('exact', feats=torch.randn(3, 4))) == 3


@pytest.fixture
def faiss_module():
    return pytest.importorskip(
        'faiss', reason='faiss-cpu is not installed (optional extra "faiss")')


def _unit(n, d, seed):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.normalize(torch.randn(n, d, generator=g), dim=1)


def test_faiss_flat_equals_exact_path(faiss_module, tmp_path):
    gallery, queries = _unit(400, 32, 0), _unit(25, 32, 1)
    exact_s, exact_i = build_index('exact', feats=gallery).search(queries, 10)
    flat = build_index('flat', feats=gallery)
    flat_s, flat_i = flat.search(queries, 10)
    assert torch.equal(flat_i, exact_i)
    assert torch.allclose(flat_s, exact_s, atol=1e-5)
    loaded, _ = load_index(flat.save(str(tmp_path / 'flat.npz')))
    s2, i2 = loaded.search(queries, 10)
    assert torch.equal(i2, flat_i) and torch.equal(s2, flat_s)


def test_faiss_ivf_full_probe_is_exact_and_hnsw_recalls(
        faiss_module, tmp_path):
    gallery, queries = _unit(800, 16, 2), _unit(30, 16, 3)
    _, exact_i = chunked_topk(queries, gallery, 10)
    ivf = build_index('ivf', feats=gallery, nlist=8, nprobe=8)
    assert ivf.nlist == 8
    _, ivf_i = ivf.search(queries, 10)
    assert torch.equal(ivf_i, exact_i)  # every cell visited: exact
    loaded, _ = load_index(ivf.save(str(tmp_path / 'ivf.npz')))
    assert loaded.kind == 'ivf' and torch.equal(
        loaded.search(queries, 10)[1], ivf_i)
    hnsw = build_index('hnsw', feats=gallery, ef_search=200)
    _, hnsw_i = hnsw.search(queries, 10)
    recall = np.mean([
        len(set(a) & set(b)) / 10
        for a, b in zip(hnsw_i.tolist(), exact_i.tolist())
    ])
    assert recall >= 0.95
    with pytest.raises(ValueError, match='needs at least 8 rows'):
        build_index('ivf', feats=gallery[:5], nlist=8)


@pytest.mark.slow
def test_bench_search_quick_report():
    bench = load_tool('.dev_scripts/bench_search.py')
    report = bench.bench_search(quick=True)
    assert report['setup']['num_gallery'] == 10**4
    assert report['same_results'] is True
    for method in ('exact_chunked', 'full_sort'):
        assert report[method]['time_s'] > 0
    assert report['exact_chunked']['buffer_mb'] <= 256
    if 'skipped' not in report['faiss']:
        assert report['faiss']['flat']['recall_at_k'] == 1.0
        for kind in ('ivf', 'hnsw'):
            assert 0.5 < report['faiss'][kind]['recall_at_k'] <= 1.0
