import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mmreid_clip.registry import METRICS
from test_ranking import brute_force  # noqa: E402  (sibling test module)


def _samples(img_feats, img_pids, txt_feats, txt_pids, img_of_txt):
    out = []
    for i, (f, p) in enumerate(zip(img_feats, img_pids)):
        out.append(dict(img_feat=f, pid=int(p), image_id=i, caption_id=-1))
    for c, (f, p) in enumerate(zip(txt_feats, txt_pids)):
        out.append(dict(text_feat=f, pid=int(p), image_id=int(img_of_txt[c]),
                        caption_id=c))
    return out


def _data(seed=0, n_img=30, n_ids=8):
    g = torch.Generator().manual_seed(seed)
    img_pids = torch.randint(0, n_ids, (n_img, ), generator=g)
    img_of_txt = torch.arange(n_img).repeat_interleave(2)
    txt_pids = img_pids[img_of_txt]
    img = F.normalize(torch.randn(n_img, 8, generator=g), dim=1)
    txt = F.normalize(torch.randn(2 * n_img, 8, generator=g), dim=1)
    return img, img_pids, txt, txt_pids, img_of_txt


def test_metric_matches_reference_over_batches_with_duplicates():
    img, ip, txt, tp, iot = _data()
    metric = METRICS.build(dict(type='TextImageRetrievalMetric', i2t=True))
    samples = _samples(img, ip, txt, tp, iot)
    # a distributed sampler pads with repeated items: they must not count
    samples = samples + samples[:5] + samples[-3:]
    for start in range(0, len(samples), 16):
        metric.process({}, samples[start:start + 16])
    res = metric.evaluate(len(samples))
    t2i = brute_force((txt @ img.t()).numpy(), tp.numpy(), ip.numpy())
    i2t = brute_force((img @ txt.t()).numpy(), ip.numpy(), tp.numpy())
    for k in ('R@1', 'R@5', 'R@10', 'mAP', 'mINP'):
        assert res[f't2i/{k}'] == pytest.approx(t2i[k], abs=1e-6)
        assert res[f'i2t/{k}'] == pytest.approx(i2t[k], abs=1e-6)


def test_perfect_features_score_100():
    pids = torch.arange(5)
    feats = torch.eye(5)
    metric = METRICS.build(dict(type='TextImageRetrievalMetric'))
    metric.process({}, _samples(feats, pids, feats, pids, pids))
    res = metric.evaluate(10)
    assert res['t2i/R@1'] == 100 and res['t2i/mAP'] == 100
    assert res['t2i/mINP'] == 100
    assert set(res) == {'t2i/R@1', 't2i/R@5', 't2i/R@10', 't2i/mAP',
                        't2i/mINP'}


def test_errors_name_the_problem():
    metric = METRICS.build(dict(type='TextImageRetrievalMetric'))
    feats = torch.eye(3)
    metric.process({}, _samples(feats, [0, 1, 2], [], [], []))
    with pytest.raises(ValueError, match='no captions'):
        metric.evaluate(3)
    metric = METRICS.build(dict(type='TextImageRetrievalMetric'))
    metric.process({}, _samples(feats, [0, 1, 2], torch.eye(4)[:1], [0],
                                [0]))
    with pytest.raises(ValueError, match='-d'):
        metric.evaluate(4)
    metric = METRICS.build(dict(type='TextImageRetrievalMetric'))
    samples = _samples(feats, [0, 1, 2], feats, [0, 1, 2], [0, 1, 2])
    samples[1]['image_id'] = 0  # same image, two identities
    metric.process({}, samples)
    with pytest.raises(ValueError, match='image_id 0'):
        metric.evaluate(6)
    with pytest.raises(ValueError, match='topk'):
        METRICS.build(dict(type='TextImageRetrievalMetric', topk=(0, )))
