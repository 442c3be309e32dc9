"""ReIDMetric's presets of the standard image ReID benchmarks (Market-1501,
MSMT17, DukeMTMC-reID, Occluded-Duke): a brute-force check of the junk rule
(same pid and same camera) with Market-1501's distractors, and the rule on
items of the Market1501 loader."""
import math
import os.path as osp
import random

import pytest
import torch
from helpers.std_reid_fixtures import write_market_layout

from mmreid_clip.datasets import Market1501
from mmreid_clip.evaluation import ReIDMetric

PRESETS = ('market1501', 'msmt17', 'dukemtmc', 'occluded_duke')
TOPK = (1, 3, 10)


def brute_force(records):
    """R@K, mAP, mINP (%) of the standard protocol by its definition
    (Zheng et al., ICCV 2015): per query, sort the gallery by score
    (descending, ties by gallery index), drop the items with the query's
    pid and camera (junk), then every remaining item of the query's pid is
    a match and every other item (distractors, pid 0, included) a
    mismatch; queries without a match are skipped."""
    queries = [r for r in records if r['subset'] == 'query']
    gallery = [r for r in records if r['subset'] == 'gallery']
    firsts, aps, inps = [], [], []
    for q in queries:
        scores = [float(q['img_feat'] @ g['img_feat']) for g in gallery]
        order = sorted(range(len(gallery)), key=lambda j: (-scores[j], j))
        matches = []
        for j in order:
            g = gallery[j]
            if g['pid'] == q['pid'] and g['camid'] == q['camid']:
                continue  # junk: neither a match nor a mismatch
            matches.append(g['pid'] == q['pid'])
        ranks = [r + 1 for r, hit in enumerate(matches) if hit]
        if not ranks:
            continue
        firsts.append(ranks[0])
        aps.append(sum((i + 1) / r for i, r in enumerate(ranks)) / len(ranks))
        inps.append(len(ranks) / ranks[-1])
    n = len(firsts)
    out = {f'general/R@{k}': 100 * sum(f <= k for f in firsts) / n
           for k in TOPK}
    out['general/mAP'] = 100 * sum(aps) / n
    out['general/mINP'] = 100 * sum(inps) / n
    out['general/num_valid_queries'] = n
    return out


def random_records(seed, n_query=30, n_gallery=120):
    """A Market-like example: query pids 1..6, gallery pids 0..8 where 0
    (distractors) is frequent and 7, 8 never queried; 6 cameras; features
    are multiples of 1/4 in D = 5, so every dot product is exact in float32
    and many scores tie (duplicated gallery rows too)."""
    rng = random.Random(seed)

    def feat():
        return torch.tensor([rng.randrange(-4, 5) / 4 for _ in range(5)])

    records = [
        dict(
            img_feat=feat(),
            pid=rng.randrange(1, 7),
            camid=rng.randrange(6),
            subset='query') for _ in range(n_query)
    ]
    for _ in range(n_gallery):
        pid = 0 if rng.random() < 0.3 else rng.randrange(1, 9)
        records.append(
            dict(
                img_feat=feat(),
                pid=pid,
                camid=rng.randrange(6),
                subset='gallery'))
    gallery = records[n_query:]
    for _ in range(10):  # exact duplicates in the gallery: tied scores
        src, dst = rng.randrange(n_gallery), rng.randrange(n_gallery)
        gallery[dst] = dict(gallery[src])
    # pid 9 is seen only by the query's own camera: no match, skipped
    records = records[:n_query] + gallery + [
        dict(img_feat=feat(), pid=9, camid=2, subset='query'),
        dict(img_feat=feat(), pid=9, camid=2, subset='gallery'),
    ]
    rng.shuffle(records)
    return records


def evaluate(settings, records, **kwargs):
    metric = ReIDMetric(settings=settings, topk=TOPK, **kwargs)
    metric.process(None, [dict(r) for r in records])
    return metric.compute_metrics(metric.results)


def test_presets_are_the_standard_rule():
    for name in PRESETS:
        assert ReIDMetric.preset(name) == [
            dict(name='general', mode='general')
        ]
        full = ReIDMetric.resolve_settings(name)
        assert full[0]['camera_key'] == 'camid' and full[0]['cameras'] is None
        assert (full[0]['query'], full[0]['gallery']) == ('query', 'gallery')
    with pytest.raises(KeyError, match='occluded_duke'):
        ReIDMetric.preset('occluded-duke')


@pytest.mark.parametrize('seed', [0, 1, 2, 3])
def test_random_example_matches_brute_force(seed):
    records = random_records(seed)
    want = brute_force(records)
    # the example exercises every case of the rule
    queries = [r for r in records if r['subset'] == 'query']
    gallery = [r for r in records if r['subset'] == 'gallery']
    pairs = [(q, g) for q in queries for g in gallery]
    assert any(g['pid'] == 0 for g in gallery)
    assert any(q['pid'] == g['pid'] and q['camid'] == g['camid']
               for q, g in pairs)
    assert want['general/num_valid_queries'] == len(queries) - 1
    for name in PRESETS:
        got = evaluate(name, records, normalize=False)
        assert set(got) == set(want)
        for key, value in want.items():
            if key.endswith('num_valid_queries'):
                assert got[key] == value
            else:
                assert got[key] == pytest.approx(value, abs=1e-6), (name, key)


def test_rule_differs_from_counting_junk_or_dropping_distractors():
    """The brute force is not trivially satisfied: treating junk as
    matches, or distractors as junk, changes the numbers on these data."""
    records = random_records(0)
    got = evaluate('market1501', records, normalize=False)
    no_junk = [
        dict(r, camid=100 + i) if r['subset'] == 'query' else r
        for i, r in enumerate(records)
    ]
    no_distractors = [
        r for r in records if not (r['subset'] == 'gallery' and r['pid'] == 0)
    ]
    assert brute_force(no_junk)['general/mAP'] != pytest.approx(
        got['general/mAP'])
    assert brute_force(no_distractors)['general/mAP'] != pytest.approx(
        got['general/mAP'])


def _unit(degrees):
    rad = math.radians(degrees)
    return torch.tensor([math.cos(rad), math.sin(rad)])


def test_market_items_junk_and_distractors(tmp_path):
    """The loader's items through the preset: query 0003 (camera c1) sees
    its own camera's 0003 image first (junk, removed), then a distractor
    (a mismatch), then its match from c2; query 0005's match is first."""
    root = write_market_layout(str(tmp_path / 'Market-1501-v15.09.15'))
    ds = Market1501(data_root=root, split='test')
    angles = {
        '0003_c1s1_001051_00.jpg': 0,  # query 0003, c1
        '0005_c4s2_000976_00.jpg': 90,  # query 0005, c4
        '0003_c1s1_001101_02.jpg': 5,  # same pid, same camera: junk
        '0000_c1s1_000151_01.jpg': 10,  # distractor
        '0003_c2s1_000151_01.jpg': 20,  # match of 0003
        '0000_c3s2_000411_04.jpg': 180,  # distractor
        '0005_c5s3_000151_01.jpg': 90,  # match of 0005
    }
    samples = []
    for i in range(len(ds)):
        info = ds.get_data_info(i)
        samples.append(
            dict(
                img_feat=_unit(angles[osp.basename(info['img_path'])]),
                pid=info['pid'],
                camid=info['camid'],
                subset=info['subset'],
                img_path=info['img_path']))
    metric = ReIDMetric(settings='market1501', topk=(1, 2))
    metric.process(None, samples)
    out = metric.compute_metrics(metric.results)
    # query 0003: match at rank 2 (AP 1/2); query 0005: rank 1 (AP 1)
    assert out['general/R@1'] == pytest.approx(50.0)
    assert out['general/R@2'] == pytest.approx(100.0)
    assert out['general/mAP'] == pytest.approx(75.0)
    assert out['general/num_valid_queries'] == 2
