"""TextImageRetrievalMetric end to end: process, gather, dedup, values."""
import math
import random

import pytest
import torch
from mmengine.evaluator import Evaluator
from mmpretrain.structures import DataSample

from mmreid_clip.registry import METRICS

S = 1 / math.sqrt(2)
# gallery images: (image_id, pid, feature)
IMAGES = [(0, 10, [1.0, 0.0]), (1, 20, [0.0, 1.0]), (2, 10, [0.6, 0.8])]
# caption queries: (caption_id, pid, feature); pid 30 has no image
CAPTIONS = [(0, 10, [1.0, 0.0]), (1, 20, [0.8, 0.6]), (2, 10, [0.0, 1.0]),
            (3, 30, [S, S])]


def image_item(image_id, pid, feat):
    return dict(
        pid=pid,
        image_id=image_id,
        caption_id=-1,
        img_feat=torch.tensor(feat),
        gt_label=torch.tensor([pid]))


def text_item(caption_id, pid, feat, image_id=0):
    return dict(
        pid=pid,
        image_id=image_id,
        caption_id=caption_id,
        text_feat=torch.tensor(feat),
        gt_label=torch.tensor([pid]))


def run(metric, batches):
    for batch in batches:
        metric.process(None, batch)
    return metric.evaluate(sum(len(b) for b in batches))


def test_hand_computed_both_directions():
    # t2i, scores caption . image (images 0, 1, 2 with pids 10, 20, 10):
    #   c0 (pid 10): 1, 0, .6    -> order i0 i2 i1: positives at 1, 2
    #       first 1, AP 1, INP 1
    #   c1 (pid 20): .8, .6, .96 -> order i2 i0 i1: positive at 3
    #       first 3, AP 1/3, INP 1/3
    #   c2 (pid 10): 0, 1, .8    -> order i1 i2 i0: positives at 2, 3
    #       first 2, AP (1/2 + 2/3)/2 = 7/12, INP 2/3
    #   c3 (pid 30): no image of pid 30 -> skipped
    #   R@1 1/3, R@5 = R@10 = 1, mAP (1 + 1/3 + 7/12)/3 = 23/36,
    #   mINP (1 + 1/3 + 2/3)/3 = 2/3
    # i2t, scores image . caption (captions 0..3 with pids 10, 20, 10, 30):
    #   i0 (pid 10): 1, .8, 0, .707     -> order c0 c1 c3 c2: positives 1, 4
    #       first 1, AP (1 + 2/4)/2 = 3/4, INP 2/4
    #   i1 (pid 20): 0, .6, 1, .707     -> order c2 c3 c1 c0: positive 3
    #       first 3, AP 1/3, INP 1/3
    #   i2 (pid 10): .6, .96, .8, .990 -> order c3 c1 c2 c0: positives 3, 4
    #       first 3, AP (1/3 + 2/4)/2 = 5/12, INP 2/4
    #   R@1 1/3, R@5 = R@10 = 1, mAP (3/4 + 1/3 + 5/12)/3 = 1/2,
    #   mINP (1/2 + 1/3 + 1/2)/3 = 4/9
    metric = METRICS.build(dict(type='TextImageRetrievalMetric', i2t=True))
    items = ([image_item(*i)
              for i in IMAGES] + [text_item(*c) for c in CAPTIONS])
    # three batches, padded at the end by repeating the first items, as a
    # distributed sampler does
    batches = [items[:3], items[3:5], items[5:] + items[:2]]
    out = run(metric, batches)
    assert list(out) == [
        't2i/R@1', 't2i/R@5', 't2i/R@10', 't2i/mAP', 't2i/mINP', 'i2t/R@1',
        'i2t/R@5', 'i2t/R@10', 'i2t/mAP', 'i2t/mINP'
    ]
    expected = {
        't2i/R@1': 100 / 3,
        't2i/R@5': 100.0,
        't2i/R@10': 100.0,
        't2i/mAP': 100 * 23 / 36,
        't2i/mINP': 100 * 2 / 3,
        'i2t/R@1': 100 / 3,
        'i2t/R@5': 100.0,
        'i2t/R@10': 100.0,
        'i2t/mAP': 50.0,
        'i2t/mINP': 100 * 4 / 9,
    }
    for key, value in expected.items():
        assert out[key] == pytest.approx(value, abs=1e-9), key
    assert all(isinstance(v, float) for v in out.values())
    assert metric.results == []  # cleared for the next evaluation


def reference(scores, q_pids, g_pids):
    """Per-query full stable sort; means over queries with a positive."""
    firsts, aps, inps = [], [], []
    for q in range(scores.size(0)):
        order = torch.sort(scores[q], descending=True, stable=True).indices
        hits = (g_pids[order] == q_pids[q]).nonzero().flatten() + 1
        if hits.numel():
            firsts.append(int(hits[0]))
            precision = torch.arange(1, hits.numel() + 1) / hits.double()
            aps.append(float(precision.mean()))
            inps.append(hits.numel() / float(hits[-1]))
    n = len(firsts)
    out = {f'R@{k}': 100 * sum(f <= k for f in firsts) / n for k in (1, 5)}
    out['mAP'] = 100 * sum(aps) / n
    out['mINP'] = 100 * sum(inps) / n
    return out


def test_random_data_matches_reference_in_id_order():
    gen = torch.Generator().manual_seed(0)

    def feats(num):
        # four entries of +-1: after normalisation every score is an exact
        # multiple of 1/4, so ties abound and no rounding can reorder them
        cols = torch.rand(num, 8, generator=gen).argsort(dim=1)[:, :4]
        signs = torch.randint(0, 2, (num, 4), generator=gen) * 2.0 - 1
        return torch.zeros(num, 8).scatter_(1, cols, signs)

    img_feats, txt_feats = feats(30), feats(70)
    img_pids = torch.randint(0, 9, (30, ), generator=gen)
    txt_pids = torch.randint(0, 9, (70, ), generator=gen)
    items = [
        dict(
            pid=int(img_pids[i]),
            image_id=i,
            caption_id=-1,
            img_feat=img_feats[i]) for i in range(30)
    ] + [
        dict(
            pid=int(txt_pids[j]),
            image_id=0,
            caption_id=j,
            text_feat=txt_feats[j]) for j in range(70)
    ]
    # the collection order must not matter: ties break by image_id (and
    # i2t ties by caption_id), whatever order the ranks' records arrive in
    random.Random(0).shuffle(items)
    metric = METRICS.build(
        dict(
            type='TextImageRetrievalMetric',
            i2t=True,
            topk=(1, 5),
            chunk_size=7))
    out = run(metric, [items[:40], items[40:80], items[80:]])

    img_n, txt_n = img_feats / 2, txt_feats / 2  # rows have norm 2
    t2i = reference(txt_n @ img_n.t(), txt_pids, img_pids)
    i2t = reference(img_n @ txt_n.t(), img_pids, txt_pids)
    for key, value in t2i.items():
        assert out[f't2i/{key}'] == pytest.approx(value, abs=1e-9), key
    for key, value in i2t.items():
        assert out[f'i2t/{key}'] == pytest.approx(value, abs=1e-9), key


def test_evaluator_with_data_samples_and_prefix():
    samples = []
    for image_id, pid, feat in IMAGES:
        s = DataSample(
            metainfo=dict(
                pid=pid,
                image_id=image_id,
                caption_id=-1,
                has_image=True,
                has_text=False))
        s.set_gt_label(pid)
        s.set_field(torch.tensor(feat), 'img_feat')
        samples.append(s)
    for caption_id, pid, feat in CAPTIONS:
        s = DataSample(
            metainfo=dict(
                pid=pid,
                image_id=0,
                caption_id=caption_id,
                has_image=False,
                has_text=True))
        s.set_gt_label(pid)
        s.set_field(torch.tensor(feat), 'text_feat')
        samples.append(s)
    evaluator = Evaluator(dict(type='TextImageRetrievalMetric', prefix='cuhk'))
    evaluator.process(samples[:4])
    evaluator.process(samples[4:])
    out = evaluator.evaluate(len(samples))
    assert out['cuhk/t2i/R@1'] == pytest.approx(100 / 3)
    assert out['cuhk/t2i/mAP'] == pytest.approx(100 * 23 / 36)
    assert not any(k.startswith('i2t') or '/i2t/' in k for k in out)

    default = METRICS.build(dict(type='TextImageRetrievalMetric'))
    assert default.prefix == ''  # keys stay 't2i/...', no prefix warning


def test_gallery_is_deduplicated_by_image_id():
    base = METRICS.build(dict(type='TextImageRetrievalMetric'))
    items = ([image_item(*i)
              for i in IMAGES] + [text_item(*c) for c in CAPTIONS])
    want = run(base, [items])
    # every image and caption repeated (padding or a second rank's copy)
    again = METRICS.build(dict(type='TextImageRetrievalMetric'))
    assert run(again, [items, items[::-1]]) == want

    clash = METRICS.build(dict(type='TextImageRetrievalMetric'))
    with pytest.raises(
            ValueError, match='image_id 2 appears with identities'
            ' 10 and 99'):
        run(clash, [items + [image_item(2, 99, [0.0, 1.0])]])


def test_errors_name_the_problem():
    images = [image_item(*i) for i in IMAGES]
    captions = [text_item(*c) for c in CAPTIONS]

    def build(**kwargs):
        return METRICS.build(dict(type='TextImageRetrievalMetric', **kwargs))

    with pytest.raises(
            ValueError, match='no gallery images.*img_feat.*'
            'val/test split'):
        run(build(), [captions])
    with pytest.raises(ValueError, match='no caption queries.*text_feat'):
        run(build(), [images])
    with pytest.raises(
            ValueError, match='img_feat is 2-d but text_feat is '
            '3-d'):
        run(build(), [images + [text_item(0, 10, [1.0, 0.0, 0.0])]])
    with pytest.raises(ValueError, match='caption_id=-1'):
        run(build(), [images + [text_item(-1, 10, [1.0, 0.0])]])
    with pytest.raises(ValueError, match='different sizes'):
        run(build(),
            [images + [image_item(7, 10, [1.0, 0.0, 0.0])] + captions])
    with pytest.raises(ValueError, match='t2i: none of the 1 queries'):
        run(build(), [images + [text_item(0, 42, [1.0, 0.0])]])
    with pytest.raises(KeyError, match='pid'):
        build().process(None, [dict(img_feat=torch.ones(2), image_id=0)])
    with pytest.raises(ValueError, match='topk'):
        build(topk=(0, 5))
    with pytest.raises(ValueError, match='chunk_size'):
        build(chunk_size=0)


def test_pid_falls_back_to_gt_label_and_featureless_items_are_kept():
    metric = METRICS.build(dict(type='TextImageRetrievalMetric', topk=1))
    items = ([image_item(*i)
              for i in IMAGES] + [text_item(*c) for c in CAPTIONS])
    for item in items:
        del item['pid']  # gt_label (a 1-element tensor) holds it
    metric.process(None, items + [dict(pid=5, image_id=9, caption_id=9)])
    assert len(metric.results) == len(items) + 1  # one record per sample
    out = metric.evaluate(len(items) + 1)
    assert list(out) == ['t2i/R@1', 't2i/mAP', 't2i/mINP']
    assert out['t2i/R@1'] == pytest.approx(100 / 3)


def test_records_own_their_features():
    # the model's features are row views of a batch tensor; a kept view
    # would drag (and pickle, when ranks gather) the whole batch along
    batch = torch.randn(64, 8, dtype=torch.float16)
    metric = METRICS.build(dict(type='TextImageRetrievalMetric'))
    metric.process(None, [image_item(0, 1, [0.0]) | dict(img_feat=batch[3])])
    feat = metric.results[0]['img_feat']
    assert feat.dtype == torch.float32 and feat.shape == (8, )
    assert feat.untyped_storage().nbytes() == 8 * 4
    assert torch.equal(feat, batch[3].float())
