"""ReIDMetric: hand-computed cases per mode, a brute-force reference, the
mmengine Evaluator path, re-ranking and errors."""
import json
import math
import os
import random
import socket

import pytest
import torch
from mmengine.evaluator import Evaluator
from mmengine.logging import MMLogger
from mmpretrain.structures import DataSample

from mmreid_clip.evaluation import ReIDMetric, k_reciprocal_rerank
from mmreid_clip.registry import METRICS


def unit(degrees, dim=2):
    """A unit vector at ``degrees`` in the first plane: against a query at
    0 degrees the score is cos(angle), so items rank by their angle."""
    rad = math.radians(degrees)
    return [math.cos(rad), math.sin(rad)] + [0.0] * (dim - 2)


def item(subset, pid, camid, clothes_id, angle, **extra):
    return dict(
        img_feat=torch.tensor(unit(angle)),
        pid=pid,
        camid=camid,
        clothes_id=clothes_id,
        subset=subset,
        **extra)


# Gallery for query A (pid 1, cam 0, clothes 10, at 0 degrees), listed in
# index order; against A the ranking is by angle:
#   g0 10 deg pid 2 (neg) | g1 20 pid 1 cam 0 (same cam: junk everywhere)
#   g2 30 pid 1 cam 1 clo 10 (pos; CC junk, same clothes)
#   g3 40 pid 3 (neg)     | g4 50 pid 1 cam 2 clo 11 (pos; SC junk)
#   g8 55 pid 1 cam 2 clo 10 (pos; CC junk)
#   g5 60 pid 2 (neg)     | g6 70 pid 1 cam 1 clo 11 (pos; SC junk)
#   g7 80 pid 1 cam 0 (same cam: junk)
GALLERY = [
    # name, pid, camid, clothes, angle, tracklet
    ('g5', 2, 0, 20, 60, 15),
    ('g2', 1, 1, 10, 30, 12),
    ('g7', 1, 0, 11, 80, 100),
    ('g0', 2, 1, 20, 10, 10),
    ('g8', 1, 2, 10, 55, 18),
    ('g3', 3, 2, 30, 40, 13),
    ('g6', 1, 1, 11, 70, 16),
    ('g1', 1, 0, 10, 20, 101),
    ('g4', 1, 2, 11, 50, 14),
]
QUERIES = [
    # name, pid, camid, clothes, angle, tracklet
    ('A', 1, 0, 10, 0, 100),
    ('B', 3, 2, 30, 90, 200),  # its only match g3 shares its camera
    ('C', 2, 2, 20, 0, 300),  # its matches g0, g5 wear its clothes
]


def cc_items():
    out = [
        item('query', p, c, o, a, tracklet_id=t, img_path=n)
        for n, p, c, o, a, t in QUERIES
    ]
    out += [
        item('gallery', p, c, o, a, tracklet_id=t, img_path=n)
        for n, p, c, o, a, t in GALLERY
    ]
    return out


def run(metric, batches, size=None):
    for batch in batches:
        metric.process(None, batch)
    return metric.evaluate(
        size if size is not None else sum(len(b) for b in batches))


def build(**kwargs):
    return METRICS.build(dict(type='ReIDMetric', **kwargs))


def test_hand_computed_general_cc_sc():
    settings = [
        dict(name='general', mode='general'),
        dict(name='cc', mode='cloth-changing'),
        dict(name='sc', mode='same-clothes'),
    ]
    out = run(build(settings=settings), [cc_items()])
    # general: junk g1, g7. A: g0 n, g2 P, g3 n, g4 P, g8 P, g5 n, g6 P ->
    #   ranks 2,4,5,7: AP = (1/2 + 2/4 + 3/5 + 4/7)/4 = 19/35, INP = 4/7.
    # C: positives g0 (rank 1) and g5 (rank 7): AP = (1 + 2/7)/2 = 9/14,
    #   INP = 2/7. B: g3 is junk (same camera): skipped.
    assert out['general/R@1'] == pytest.approx(50.0)
    assert out['general/R@5'] == out['general/R@10'] == 100.0
    assert out['general/mAP'] == pytest.approx(100 * (19 / 35 + 9 / 14) / 2)
    assert out['general/mINP'] == pytest.approx(100 * (4 / 7 + 2 / 7) / 2)
    assert out['general/num_valid_queries'] == 2
    # CC: junk also g2, g8 (same clothes). A: g0 n, g3 n, g4 P, g5 n, g6 P
    #   -> ranks 3, 5: AP = (1/3 + 2/5)/2 = 11/30, INP = 2/5.
    # C: both matches wear its clothes -> skipped; B skipped.
    assert out['cc/R@1'] == 0.0
    assert out['cc/R@5'] == 100.0
    assert out['cc/mAP'] == pytest.approx(100 * 11 / 30)
    assert out['cc/mINP'] == pytest.approx(40.0)
    assert out['cc/num_valid_queries'] == 1
    # SC: junk also g4, g6 (other clothes). A: g0 n, g2 P, g3 n, g8 P, g5 n
    #   -> ranks 2, 4: AP = 1/2, INP = 1/2. C as in general.
    assert out['sc/R@1'] == pytest.approx(50.0)
    assert out['sc/mAP'] == pytest.approx(100 * (1 / 2 + 9 / 14) / 2)
    assert out['sc/mINP'] == pytest.approx(100 * (1 / 2 + 2 / 7) / 2)
    assert out['sc/num_valid_queries'] == 2
    assert len(out) == 3 * 6


def test_default_settings_are_ltcc_general_and_cc():
    metric = build()
    assert [s['name'] for s in metric.settings] == ['general', 'cc']
    out = run(metric, [cc_items()])
    assert set(out) == {
        f'{n}/{k}'
        for n in ('general', 'cc')
        for k in ('R@1', 'R@5', 'R@10', 'mAP', 'mINP', 'num_valid_queries')
    }
    assert out['cc/mAP'] == pytest.approx(100 * 11 / 30)


def test_camera_subset():
    # keep cameras 0 and 1 on both sides: queries B, C (cam 2) and g3, g4,
    # g8 (cam 2) drop out. A: junk g1, g7; g0 n, g2 P, g5 n, g6 P ->
    # ranks 2, 4: AP = 1/2, INP = 1/2
    out = run(build(settings=[dict(name='sub', cameras=[0, 1])]), [cc_items()])
    assert out['sub/R@1'] == 0.0 and out['sub/R@5'] == 100.0
    assert out['sub/mAP'] == pytest.approx(50.0)
    assert out['sub/mINP'] == pytest.approx(50.0)
    assert out['sub/num_valid_queries'] == 1


def test_tracklet_as_camera():
    # DeepChange: only the same *tracklet* is junk. A (tracklet 100): junk
    # g7 only; g0 n, g1 P, g2 P, g3 n, g4 P, g8 P, g5 n, g6 P -> ranks
    # 2,3,5,6,8: AP = (1/2 + 2/3 + 3/5 + 4/6 + 5/8)/5 = 367/600, INP 5/8.
    # B (tracklet 200): g3 (tracklet 13) now counts; B at 90 degrees ranks
    # g7, g6, g5, g8, g4, g3: rank 6, AP = INP = 1/6. C as in general.
    metric = build(settings='deepchange')
    out = run(metric, [cc_items()])
    assert out['general/num_valid_queries'] == 3
    assert out['general/R@1'] == pytest.approx(100 / 3)
    assert out['general/R@5'] == pytest.approx(200 / 3)
    assert out['general/R@10'] == 100.0
    assert out['general/mAP'] == pytest.approx(
        100 * (367 / 600 + 9 / 14 + 1 / 6) / 3)
    assert out['general/mINP'] == pytest.approx(100 * (5 / 8 + 2 / 7 + 1 / 6) /
                                                3)
    # the tracklet preset does not need clothes ids nor camids
    items = cc_items()
    for x in items:
        del x['clothes_id'], x['camid']
    assert run(build(settings='deepchange'), [items]) == out


def test_prcc_two_query_sets():
    # gallery = cam A (0); query_sc = cam B (1), query_cc = cam C (2); the
    # general rule on both (no clothes ids needed)
    gallery = [('gallery', 2, 0, 10), ('gallery', 1, 0, 20),
               ('gallery', 3, 0, 30), ('gallery', 1, 0, 40)]
    queries = [('query_sc', 1, 1, 0), ('query_cc', 3, 2, 0),
               ('query_cc', 2, 2, 0)]
    items = [
        dict(img_feat=torch.tensor(unit(a)), pid=p, camid=c, subset=s)
        for s, p, c, a in queries + gallery
    ]
    out = run(build(settings='prcc', prefix='prcc'), [items])
    # sc: pid 1 at ranks 2 and 4: AP = (1/2 + 2/4)/2, INP = 2/4
    assert out['prcc/sc/R@1'] == 0.0 and out['prcc/sc/R@5'] == 100.0
    assert out['prcc/sc/mAP'] == pytest.approx(50.0)
    assert out['prcc/sc/mINP'] == pytest.approx(50.0)
    assert out['prcc/sc/num_valid_queries'] == 1
    # cc: pid 3 at rank 3 (AP = INP = 1/3), pid 2 at rank 1
    assert out['prcc/cc/R@1'] == pytest.approx(50.0)
    assert out['prcc/cc/mAP'] == pytest.approx(100 * (1 / 3 + 1) / 2)
    assert out['prcc/cc/mINP'] == pytest.approx(100 * (1 / 3 + 1) / 2)
    assert out['prcc/cc/num_valid_queries'] == 2


def test_presets():
    assert ReIDMetric.preset('vc_clothes') == [
        dict(name='general', mode='general'),
        dict(name='sc', mode='general', cameras=[2, 3]),
        dict(name='cc', mode='general', cameras=[3, 4]),
    ]
    # a copy: editing it leaves the class attribute alone
    ReIDMetric.preset('ltcc')[0]['mode'] = 'same-clothes'
    assert ReIDMetric.PRESETS['ltcc'][0]['mode'] == 'general'
    for name in ReIDMetric.PRESETS:
        assert build(settings=name).settings
    with pytest.raises(KeyError, match="unknown ReIDMetric preset 'nope'"):
        build(settings='nope')
    # VC-Clothes through its preset: sc keeps cameras 2 and 3, cc 3 and 4
    items = [
        item('query', 1, 2, 5, 0),
        item('query', 1, 3, 5, 0),
        item('gallery', 1, 3, 5, 30),
        item('gallery', 2, 3, 6, 10),
        item('gallery', 1, 4, 5, 20),
        item('gallery', 1, 1, 5, 5),
    ]
    out = run(build(settings='vc_clothes'), [items])
    # general: q(cam2): g(1,cam1, 5deg) r1, g(2) n, g(1,cam4) r3, g(1,cam3)
    #   r4 -> AP (1 + 2/3 + 3/4)/3; q(cam3): g(cam1) r1, n, g(cam4) r3, the
    #   cam-3 one is junk -> AP (1 + 2/3)/2
    assert out['general/mAP'] == pytest.approx(100 * ((1 + 2 / 3 + 3 / 4) / 3 +
                                                      (1 + 2 / 3) / 2) / 2)
    # sc (cams 2, 3): q(cam2): n (10), P (30) -> 1/2; q(cam3): no positive
    assert out['sc/mAP'] == pytest.approx(50.0)
    assert out['sc/num_valid_queries'] == 1
    # cc (cams 3, 4): q(cam3): n (10), P cam4 (20) -> 1/2, cam-3 one junk
    assert out['cc/mAP'] == pytest.approx(50.0)
    assert out['cc/num_valid_queries'] == 1


# --------------------------------------------------------------------------
# brute force


def reference(records, setting, scores_fn=None, topk=(1, 5, 10)):
    """One query at a time: full stable sort, junk removed explicitly."""
    cam_key = setting.get('camera_key', 'camid')
    cams = setting.get('cameras')
    mode = setting.get('mode', 'general')

    def keep(r, side):
        return r['subset'] == setting.get(
            side, side) and (cams is None or r['camid'] in cams)

    queries = [r for r in records if keep(r, 'query')]
    gallery = [r for r in records if keep(r, 'gallery')]
    if scores_fn is None:
        gf = torch.stack([g['img_feat'] for g in gallery]).double()
        scores = [(gf @ q['img_feat'].double()).tolist() for q in queries]
    else:
        scores = scores_fn(queries, gallery).tolist()
    firsts, aps, inps = [], [], []
    for qi, q in enumerate(queries):
        order = sorted(range(len(gallery)), key=lambda j: (-scores[qi][j], j))
        ranked = []
        for j in order:
            g = gallery[j]
            if g['pid'] == q['pid']:
                if g[cam_key] == q[cam_key]:
                    continue
                same_clothes = g['clothes_id'] == q['clothes_id']
                if mode == 'cloth-changing' and same_clothes:
                    continue
                if mode == 'same-clothes' and not same_clothes:
                    continue
            ranked.append(g['pid'] == q['pid'])
        hits = [r + 1 for r, pos in enumerate(ranked) if pos]
        if not hits:
            continue
        firsts.append(hits[0])
        aps.append(sum((i + 1) / r for i, r in enumerate(hits)) / len(hits))
        inps.append(len(hits) / hits[-1])
    n = len(firsts)
    out = {f'R@{k}': 100 * sum(f <= k for f in firsts) / n for k in topk}
    out.update(
        mAP=100 * sum(aps) / n, mINP=100 * sum(inps) / n, num_valid_queries=n)
    return out


def random_records(seed, n_query=40, n_gallery=150):
    """Quantised features (multiples of 1/4, D = 6): every dot product is
    exact in float32, and many scores tie (duplicated rows too)."""
    rng = random.Random(seed)
    records = []
    for i in range(n_query + n_gallery):
        pid = rng.randrange(8)
        records.append(
            dict(
                img_feat=torch.tensor(
                    [rng.randrange(-4, 5) / 4 for _ in range(6)]),
                pid=pid,
                camid=rng.randrange(4),
                # 2 outfits per identity, ids unique per (pid, outfit)
                clothes_id=pid * 2 + rng.randrange(2),
                tracklet_id=rng.randrange(12),
                subset='query' if i < n_query else 'gallery'))
    for _ in range(20):  # exact duplicates (feature and labels)
        src, dst = rng.randrange(len(records)), rng.randrange(len(records))
        records[dst] = dict(records[src], subset=records[dst]['subset'])
    rng.shuffle(records)
    return records


SETTINGS = [
    dict(name='general', mode='general'),
    dict(name='cc', mode='cloth-changing'),
    dict(name='sc', mode='same-clothes'),
    dict(name='cams', mode='general', cameras=[1, 2, 3]),
    dict(name='cc_cams', mode='cloth-changing', cameras=[0, 2]),
    dict(name='tracklet', mode='general', camera_key='tracklet_id'),
]


@pytest.mark.parametrize('seed', [0, 1, 2])
@pytest.mark.parametrize('chunk_size', [None, 7])
def test_random_data_matches_brute_force(seed, chunk_size):
    records = random_records(seed)
    metric = build(
        settings=SETTINGS,
        normalize=False,
        chunk_size=chunk_size,
        topk=(1, 3, 10))
    out = run(metric, [records[:70], records[70:]])
    for setting in SETTINGS:
        want = reference(records, setting, topk=(1, 3, 10))
        for key, value in want.items():
            got = out[f'{setting["name"]}/{key}']
            if key == 'num_valid_queries':
                assert got == value, setting['name']
            else:
                assert got == pytest.approx(value, abs=1e-6), (setting, key)


def test_normalize_gives_cosine():
    # continuous features: no score lies within rounding of another, so
    # normalising here or beforehand gives the same ranking
    gen = torch.Generator().manual_seed(5)
    records = [
        dict(r, img_feat=torch.randn(6, generator=gen))
        for r in random_records(5)
    ]
    scaled = [
        dict(r, img_feat=r['img_feat'] * (1 + i % 3))
        for i, r in enumerate(records)
    ]
    unit_records = [
        dict(r, img_feat=torch.nn.functional.normalize(r['img_feat'], dim=0))
        for r in records
    ]
    a = run(build(settings=SETTINGS), [scaled])
    b = run(build(settings=SETTINGS, normalize=False), [unit_records])
    assert a.keys() == b.keys()
    for key in a:
        assert a[key] == pytest.approx(b[key], abs=1e-9), key


def test_rerank_uses_k_reciprocal_distances():
    gen = torch.Generator().manual_seed(0)
    centres = torch.randn(6, 16, generator=gen)
    records = []
    for i in range(60):
        pid = i % 6
        records.append(
            dict(
                img_feat=centres[pid] + 0.8 * torch.randn(16, generator=gen),
                pid=pid,
                camid=(i // 6) % 3,
                clothes_id=pid * 2 + (i // 18) % 2,
                subset='query' if i < 15 else 'gallery'))
    params = dict(k1=6, k2=3, lambda_value=0.3)

    def reranked(queries, gallery):
        qf = torch.stack([q['img_feat'] for q in queries])
        gf = torch.stack([g['img_feat'] for g in gallery])
        return -k_reciprocal_rerank(qf, gf, **params).double()

    settings = SETTINGS[:3]
    out = run(build(settings=settings, rerank=params), [records])
    plain = run(build(settings=settings), [records])
    for setting in settings:
        want = reference(records, setting, scores_fn=reranked)
        for key, value in want.items():
            got = out[f'{setting["name"]}/{key}']
            assert got == pytest.approx(value, abs=1e-6), (setting, key)
    assert out != plain  # the re-ranked distances changed the ranking
    # True means the paper's defaults
    assert build(rerank=True).rerank == dict(k1=20, k2=6, lambda_value=0.3)
    assert build(rerank=dict(k2=1)).rerank['k2'] == 1
    assert build(rerank=False).rerank is None


# --------------------------------------------------------------------------
# mmengine integration


def data_samples(items):
    samples = []
    for x in items:
        s = DataSample(metainfo={
            k: v
            for k, v in x.items() if k != 'img_feat'
        })
        s.set_gt_label(x['pid'])
        s.set_field(x['img_feat'], 'img_feat')
        samples.append(s)
    return samples


def test_evaluator_with_data_samples_and_padding():
    samples = data_samples(cc_items())
    evaluator = Evaluator(dict(type='ReIDMetric', prefix='ltcc'))
    evaluator.process(samples[:5])
    evaluator.process(samples[5:])
    out = evaluator.evaluate(len(samples))
    assert out['ltcc/cc/mAP'] == pytest.approx(100 * 11 / 30)
    assert out['ltcc/general/mAP'] == pytest.approx(100 * (19 / 35 + 9 / 14) /
                                                    2)
    assert out['ltcc/general/num_valid_queries'] == 2

    # A distributed sampler pads the last batch with repeated samples; the
    # records beyond the dataset size are cut by mmengine's collect_results
    # (here repeats of query A and of gallery g2, which would change the
    # result if they stayed)
    padded = Evaluator(dict(type='ReIDMetric', prefix='ltcc'))
    padded.process(samples)
    padded.process(data_samples([cc_items()[0], cc_items()[4]]))
    assert padded.evaluate(len(samples)) == out


def _dist_worker(rank, world_size, port, items, out_path):
    """One rank: DefaultSampler's shard (padded), process, evaluate."""
    import torch.distributed as dist
    from mmengine.dataset import DefaultSampler

    from mmreid_clip.utils import finish_distributed
    os.environ['MASTER_ADDR'] = '127.0.0.1'
    os.environ['MASTER_PORT'] = str(port)
    dist.init_process_group('gloo', rank=rank, world_size=world_size)
    try:
        sampler = DefaultSampler(items, shuffle=False, round_up=True)
        shard = [items[i] for i in sampler]
        metric = ReIDMetric(settings=[
            dict(name='general'),
            dict(name='cc', mode='cloth-changing')
        ])
        for start in range(0, len(shard), 2):
            metric.process(None, shard[start:start + 2])
        out = metric.evaluate(len(items))
        if rank == 0:
            with open(out_path, 'w') as f:
                json.dump(dict(out, shard_sizes=len(shard)), f)
        finish_distributed()  # as tools/test.py ends (reliability.md §7)
    finally:
        if dist.is_initialized():  # after an error: no barrier to hang in
            dist.destroy_process_group()


@pytest.mark.slow
def test_distributed_gathering_drops_sampler_padding(tmp_path):
    # 11 items on 2 ranks: DefaultSampler pads rank 1 with item 0 (query
    # A); mmengine's collect_results interleaves the ranks' records back
    # into dataset order and cuts them at 11, so A counts once
    import torch.multiprocessing as mp
    items = cc_items()[:-1]
    assert len(items) == 11
    settings = [dict(name='general'), dict(name='cc', mode='cloth-changing')]
    want = run(build(settings=settings), [items])
    # the padding would change the result if it were kept
    assert run(build(settings=settings), [items + items[:1]]) != want
    with socket.socket() as sock:
        sock.bind(('127.0.0.1', 0))
        port = sock.getsockname()[1]
    out_path = str(tmp_path / 'out.json')
    mp.spawn(_dist_worker, args=(2, port, items, out_path), nprocs=2)
    with open(out_path) as f:
        got = json.load(f)
    assert got.pop('shard_sizes') == 6  # 12 padded items over 2 ranks
    assert got == pytest.approx(want)


def test_settings_are_logged(monkeypatch):
    logged = []
    logger = MMLogger.get_current_instance()
    monkeypatch.setattr(logger, 'info', logged.append)
    run(
        build(settings=[dict(name='x', mode='same-clothes', cameras=[0, 1])]),
        [cc_items()])
    (line, ) = [m for m in logged if "'x'" in m]
    for part in ('mode=same-clothes', 'cameras=[0, 1]', "query='query'",
                 'camera_key=camid', 'rerank=off', '1 valid queries',
                 'skipped'):
        assert part in line, part


def test_feature_rows_are_owned_copies():
    batch = torch.randn(16, 8, dtype=torch.float16)
    metric = build()
    metric.process(None, [dict(cc_items()[0], img_feat=batch[3])])
    feat = metric.results[0]['img_feat']
    assert feat.dtype == torch.float32 and feat.shape == (8, )
    assert feat.untyped_storage().nbytes() == 8 * 4


# --------------------------------------------------------------------------
# errors


def test_missing_keys_name_sample_and_settings():
    base = cc_items()[0]
    for key, match in (('img_feat', 'A has no `img_feat`'),
                       ('subset', 'A has no `subset`'),
                       ('camid', r"A has no `camid`, which setting\(s\) "
                        r"\['general', 'cc'\] need"),
                       ('clothes_id', r"A has no `clothes_id`, which "
                        r"setting\(s\) \['cc'\] need")):
        sample = dict(base)
        del sample[key]
        with pytest.raises(KeyError, match=match):
            build().process(None, [sample])
    sample = dict(base)
    del sample['pid']
    with pytest.raises(KeyError, match='pid'):
        build().process(None, [sample])
    sample['gt_label'] = torch.tensor([1])  # the fallback
    metric = build()
    metric.process(None, [sample])
    assert metric.results[0]['pid'] == 1


def test_empty_sides_and_dim_mismatch():
    items = cc_items()
    with pytest.raises(
            ValueError,
            match="setting 'sc': no query items \\(subset "
            "'query_sc'\\); subset values found: \\['gallery', 'query'\\]"):
        run(build(settings='prcc'), [items])
    with pytest.raises(
            ValueError,
            match="setting 'cams': no query items \\(subset "
            r"'query' with camid in \[7\] \(camids found: \[0, 1, 2\]\)\)"):
        run(build(settings=[dict(name='cams', cameras=[7])]), [items])
    bad = items + [item('gallery', 5, 0, 1, 0) | dict(img_feat=torch.ones(3))]
    with pytest.raises(
            ValueError, match=r'different sizes .* \{2: 12, 3: 1\}'):
        run(build(), [bad])
    with pytest.raises(
            ValueError,
            match="setting 'cc' \\(cloth-changing\\): none of "
            'the 1 queries'):
        run(build(), [[items[2]] + items[3:]])
    with pytest.raises(ValueError, match='no results'):
        build().compute_metrics([])


def test_bad_settings():
    with pytest.raises(ValueError, match='unknown keys'):
        build(settings=[dict(name='a', camera='x')])
    with pytest.raises(ValueError, match="mode must be one of"):
        build(settings=[dict(name='a', mode='cc')])
    with pytest.raises(ValueError, match="'a' is used twice"):
        build(settings=[dict(name='a'), dict(name='a')])
    with pytest.raises(ValueError, match='needs a `name`'):
        build(settings=[dict(mode='general')])
    with pytest.raises(ValueError, match='camera_key'):
        build(settings=[dict(name='a', camera_key='cam')])
    with pytest.raises(ValueError, match='cameras must be'):
        build(settings=[dict(name='a', cameras=3)])
    with pytest.raises(ValueError, match='non-empty list'):
        build(settings=[])
    with pytest.raises(ValueError, match='unknown rerank arguments'):
        build(rerank=dict(k=3))
    with pytest.raises(ValueError, match='topk'):
        build(topk=(0, ))
    with pytest.raises(ValueError, match='chunk_size'):
        build(chunk_size=0)


@pytest.mark.parametrize('mode', ['general', 'cloth-changing', 'same-clothes'])
def test_label_junk_rule_equals_the_dense_rule(mode):
    """The own-pid junk rule the metric ranks with marks exactly the items
    of the dense rule (which visualize_retrieval still uses)."""
    from mmreid_clip.evaluation import reid_junk_fn, reid_label_junk_fn
    gen = torch.Generator().manual_seed(11)
    qp, gp = (torch.randint(0, 4, (n, ), generator=gen) for n in (12, 50))
    qc, gc = (torch.randint(0, 3, (n, ), generator=gen) for n in (12, 50))
    qo, go = (torch.randint(0, 6, (n, ), generator=gen) for n in (12, 50))
    dense = reid_junk_fn(mode, qp, gp, qc, gc, qo, go)(slice(2, 9))
    # every gallery column of each query, as if all shared its pid
    cols = torch.arange(50).expand(7, 50)
    sparse = reid_label_junk_fn(mode, qc, gc, qo, go)(slice(2, 9), cols)
    same_pid = qp[2:9, None] == gp[None]
    assert torch.equal(dense, sparse & same_pid)
    with pytest.raises(ValueError, match='needs the clothes ids'):
        reid_label_junk_fn('cloth-changing', qc, gc)


@pytest.mark.parametrize('mode', ['general', 'cloth-changing', 'same-clothes'])
def test_label_junk_rule_takes_any_integer_labels(mode):
    """The CPU fast path (NumPy) gives the rule of the tensor definition
    for int32 tensors and NumPy arrays alike, and a bool tensor."""
    from mmreid_clip.evaluation import reid_label_junk_fn
    gen = torch.Generator().manual_seed(12)
    qc, gc = (torch.randint(0, 3, (n, ), generator=gen) for n in (10, 40))
    qo, go = (torch.randint(0, 5, (n, ), generator=gen) for n in (10, 40))
    cols = torch.randint(0, 40, (6, 9), generator=gen)
    rows = slice(3, 9)
    removed = qc[rows, None] == gc[cols]
    same = qo[rows, None] == go[cols]
    if mode == 'cloth-changing':
        removed |= same
    elif mode == 'same-clothes':
        removed |= ~same
    for cast in (lambda t: t.int(), lambda t: t.numpy()):
        rule = reid_label_junk_fn(mode, *map(cast, (qc, gc, qo, go)))
        got = rule(rows, cols)
        assert got.dtype == torch.bool and torch.equal(got, removed)


def test_random_data_matches_brute_force_with_threads():
    """More queries than one kernel block (64 rows), ranked by several
    threads: the same values as the definition."""
    records = random_records(5, n_query=230, n_gallery=120)
    threads = torch.get_num_threads()
    torch.set_num_threads(3)
    try:
        out = run(build(settings=SETTINGS, normalize=False), [records])
    finally:
        torch.set_num_threads(threads)
    for setting in SETTINGS:
        want = reference(records, setting)
        for key, value in want.items():
            got = out[f'{setting["name"]}/{key}']
            assert got == pytest.approx(value, abs=1e-6), (setting, key)
