"""The benchmark's ReID peers (``.dev_scripts/bench_reid_peers.py``)
against the project's evaluation: the same values on small synthetic sets
with exact score ties, queries without a positive and every junk rule, and
the released re-ranking peer equal to ``convention='released'``."""
import numpy as np
import pytest
from helpers.tool_loader import load_tool

from mmreid_clip.evaluation import reid_label_junk_fn
from mmreid_clip.evaluation.functional import (k_reciprocal_rerank,
                                               rank_queries, summarize)

PEERS = load_tool('.dev_scripts/bench_reid_peers.py')
BENCH = load_tool('.dev_scripts/benchmark.py')
#: The modes in which each kind of set has positives (PRCC's cam-C
#: queries all change clothes, its cam-B ones never do).
MODES = {
    'ltcc': ('general', 'cloth-changing', 'same-clothes'),
    'prcc_cc': ('general', 'cloth-changing'),
    'prcc_sc': ('general', 'same-clothes'),
}


def ours(data, mode):
    """R@1/5/10, mAP, mINP and valid queries of the library."""
    clothes = (data['qo'], data['go']) if mode != 'general' else ()
    out = summarize(
        rank_queries(
            scores=data['scores'],
            query_labels=data['qp'],
            gallery_labels=data['gp'],
            label_junk_fn=reid_label_junk_fn(mode, data['qc'], data['gc'],
                                             *clothes)))
    return out


def small_data(kind, seed):
    """An LTCC- or PRCC-like set with exact ties, 6 queries without any
    gallery item of their identity and the score matrix."""
    data = BENCH.make_reid_data(kind, 60, 400, seed=seed)
    data['qp'][:6] = 1000
    data['scores'] = (data['qf'] @ data['gf'].t()).contiguous()
    return data


def test_stable_argsort_is_numpy_stable_order():
    rng = np.random.default_rng(0)
    dist = rng.integers(-3, 4, (20, 300)).astype(np.float32) / 2
    dist[0, :5] = -0.0  # equal to +0.0: must tie with it, by index
    dist[0, 5:9] = 0.0
    dist[1, :3] = np.inf
    dist[2, :3] = -np.inf
    dist[3] = rng.standard_normal(300).astype(np.float32)
    want = np.argsort(dist, axis=1, kind='stable')
    assert np.array_equal(PEERS.stable_argsort(dist), want)


@pytest.mark.parametrize('kind,seed', [('ltcc', 0), ('ltcc', 1),
                                       ('prcc_cc', 2), ('prcc_sc', 3)])
def test_vectorised_peers_equal_ours(kind, seed):
    data = small_data(kind, seed)
    # exact ties: duplicated gallery rows give equal scores in every row
    assert (data['scores'][0].unique().numel() < data['scores'].size(1))
    for mode in MODES[kind]:
        want = ours(data, mode)
        peers = [
            PEERS.run_reid_ccreid(data, mode),
            BENCH.run_reid_peer(data, mode)
        ]
        if mode == 'general':
            peers.append(PEERS.run_reid_clipreid(data, mode))
        for got in peers:
            assert got['num_valid'] == want['num_valid'] <= 54
            for key in ('R@1', 'R@5', 'R@10', 'mAP', 'mINP'):
                assert got[key] == pytest.approx(want[key], abs=2e-6), key


def test_clipreid_peer_has_the_general_rule_only():
    with pytest.raises(ValueError, match='general protocol'):
        PEERS.run_reid_clipreid(small_data('ltcc', 0), 'cloth-changing')


def test_released_rerank_peer_equals_ours():
    """Exact (multiples of 2**-7) unit features with duplicated rows: the
    dense peer and the blocked, sparse 'released' convention give the same
    float32 distances bit for bit."""
    data = BENCH.make_reid_data('ltcc', 30, 120, seed=4)
    for k1, k2, lam in ((20, 6, 0.3), (7, 1, 0.5)):
        want = k_reciprocal_rerank(
            data['qf'], data['gf'], k1, k2, lam, normalize=False,
            convention='released').numpy()
        got = PEERS.run_rerank_released(data['qf'].numpy(),
                                        data['gf'].numpy(), k1, k2, lam)
        assert got.dtype == np.float32 and got.shape == (30, 120)
        assert np.array_equal(got, want)
    # and a setting where the final distances really are re-ranked
    plain = 2 - 2 * (data['qf'] @ data['gf'].t()).numpy()
    assert not np.allclose(got, plain)


def test_peer_metrics_reads_the_curve():
    curve = np.linspace(0.1, 1.0, 10)
    out = PEERS.peer_metrics(curve, 0.5, 0.25, 7)
    assert out == {
        'R@1': pytest.approx(10.0),
        'R@5': pytest.approx(50.0),
        'R@10': pytest.approx(100.0),
        'mAP': 50.0,
        'mINP': 25.0,
        'num_valid': 7
    }
