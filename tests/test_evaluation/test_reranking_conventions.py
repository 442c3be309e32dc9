"""The 'released' re-ranking convention against golden values of the
authors' released code (tools/fidelity/make_rerank_golden.py; provenance
in tests/data/fidelity/PROVENANCE.md), and its plumbing through
ReIDMetric."""
import os

import numpy as np
import pytest
import torch

from mmreid_clip.evaluation import ReIDMetric
from mmreid_clip.evaluation.functional import (RERANK_CONVENTIONS,
                                               k_reciprocal_rerank,
                                               rank_queries, summarize)
from mmreid_clip.evaluation.functional import rerank_chunks, reranking
from mmreid_clip.evaluation.metrics.reid_metric import reid_label_junk_fn

GOLDEN = os.path.join(
    os.path.dirname(__file__), '..', 'data', 'fidelity',
    'rerank_released.npz')


def load_golden():
    """``(case features, outputs)``: outputs are ``(case, k1, k2, lambda,
    distances)`` in file order."""
    with np.load(GOLDEN) as z:
        data = {key: z[key] for key in z.files}
    outputs = []
    i = 0
    while f'out{i}/dist' in data:
        k1, k2, lam = data[f'out{i}/setting'].tolist()
        outputs.append((str(data[f'out{i}/case']), int(k1), int(k2), lam,
                        data[f'out{i}/dist']))
        i += 1
    return data, outputs


DATA, OUTPUTS = load_golden()
IDS = [f'{c}-{k1}-{k2}-{lam}' for c, k1, k2, lam, _ in OUTPUTS]


def features(case):
    return (torch.from_numpy(DATA[f'{case}/query']),
            torch.from_numpy(DATA[f'{case}/gallery']))


def test_golden_file_is_complete():
    # the settings the brief asks for, and a tie case with k1 > pool size
    settings = {(c, k1, k2, lam) for c, k1, k2, lam, _ in OUTPUTS}
    assert ('main', 20, 6, 0.3) in settings
    assert ('main', 50, 15, 0.3) in settings
    assert DATA['main/query'].shape == (30, 16)
    assert DATA['main/gallery'].shape == (80, 16)
    ties = np.concatenate([DATA['ties/query'], DATA['ties/gallery']])
    assert len(np.unique(ties, axis=0)) < len(ties)
    assert any(c == 'ties' and k1 >= len(ties) for c, k1, *_ in OUTPUTS)
    assert os.path.getsize(GOLDEN) < 200 * 1024


@pytest.mark.parametrize('case,k1,k2,lam,want', OUTPUTS, ids=IDS)
def test_released_matches_golden(case, k1, k2, lam, want):
    qf, gf = features(case)
    got = k_reciprocal_rerank(qf, gf, k1, k2, lam, convention='released')
    assert got.dtype == torch.float32 and got.shape == want.shape
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=0)


@pytest.mark.parametrize('case,k1,k2,lam,want', OUTPUTS, ids=IDS)
def test_paper_convention_differs(case, k1, k2, lam, want):
    qf, gf = features(case)
    paper = k_reciprocal_rerank(qf, gf, k1, k2, lam)
    torch.testing.assert_close(
        paper,
        k_reciprocal_rerank(qf, gf, k1, k2, lam, convention='paper'),
        rtol=0,
        atol=0)
    assert np.abs(paper.numpy() - want).max() > 0.05


def test_released_in_small_blocks_and_groups(monkeypatch):
    # several row blocks, query-expansion groups and Jaccard groups; the
    # golden features make every distance exact, so blocking cannot
    # change a bit
    monkeypatch.setattr(rerank_chunks, '_BLOCK_BYTES', 12 * 110 * 16)
    monkeypatch.setattr(rerank_chunks, '_PAIR_BUDGET', 500)
    monkeypatch.setattr(rerank_chunks, '_ACC_BYTES', 8 * 80 * 7)
    assert len(reranking._row_blocks(110, 12 * 110)) == 7
    for case, k1, k2, lam, want in OUTPUTS[:2]:
        qf, gf = features(case)
        got = k_reciprocal_rerank(qf, gf, k1, k2, lam, convention='released')
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=0)


def test_released_normalizes_like_clip_reid():
    # CLIP-ReID's evaluator L2-normalises before re-ranking; scaled
    # features with normalize=True give the golden values
    case, k1, k2, lam, want = OUTPUTS[0]
    qf, gf = features(case)
    got = k_reciprocal_rerank(
        qf * 2.0, gf * 0.5, k1, k2, lam, convention='released')
    np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=0)
    raw = k_reciprocal_rerank(
        qf * 2.0, gf * 0.5, k1, k2, lam, normalize=False,
        convention='released')
    assert np.abs(raw.numpy() - want).max() > 0.05


def test_unknown_convention_is_rejected():
    qf, gf = features('main')
    assert RERANK_CONVENTIONS == ('paper', 'released')
    with pytest.raises(ValueError, match='unknown re-ranking convention'):
        k_reciprocal_rerank(qf, gf, convention='official')
    with pytest.raises(ValueError, match="convention 'official' in rerank"):
        ReIDMetric(rerank=dict(convention='official'))


def test_released_refuses_a_pool_without_spread():
    # every distance 0: the released code would divide by a zero maximum
    same = torch.ones(4, 8)
    with pytest.raises(ValueError, match='positive distance'):
        k_reciprocal_rerank(same[:2], same[2:], 2, 1, convention='released')


def golden_records():
    qf, gf = features('main')
    records = []
    for subset, feats, side in (('query', qf, 'query'),
                                ('gallery', gf, 'gallery')):
        pids = DATA[f'main/{side}_pids']
        cams = DATA[f'main/{side}_camids']
        for f, pid, cam in zip(feats, pids, cams):
            records.append(
                dict(img_feat=f, pid=int(pid), camid=int(cam), subset=subset))
    return records


def metric_values(rerank):
    metric = ReIDMetric(
        settings=[dict(name='general', mode='general')], rerank=rerank)
    metric.process(None, golden_records())
    return metric.evaluate(len(metric.results))


def test_metric_passes_convention_through():
    case, k1, k2, lam, want = OUTPUTS[1]  # 50 / 15 / 0.3
    assert case == 'main'
    params = dict(k1=k1, k2=k2, lambda_value=lam)
    released = metric_values(dict(params, convention='released'))
    paper = metric_values(params)

    q_cams = torch.from_numpy(DATA['main/query_camids'])
    g_cams = torch.from_numpy(DATA['main/gallery_camids'])
    ranks = rank_queries(
        scores=-torch.from_numpy(want),
        query_labels=torch.from_numpy(DATA['main/query_pids']),
        gallery_labels=torch.from_numpy(DATA['main/gallery_pids']),
        label_junk_fn=reid_label_junk_fn('general', q_cams, g_cams))
    expected = summarize(ranks, (1, 5, 10))
    for key in ('R@1', 'R@5', 'R@10', 'mAP', 'mINP'):
        assert released[f'general/{key}'] == pytest.approx(
            expected[key], abs=1e-9), key
    # the two conventions rank these items differently, so the check
    # above fails if the metric ignored the switch
    assert abs(paper['general/mAP'] - released['general/mAP']) > 0.5
