"""PackTextImageInputs and text_image_collate on mixed batches."""
from functools import partial

import numpy as np
import pytest
import torch
from mmengine.registry import FUNCTIONS as ROOT_FUNCTIONS
from mmpretrain.structures import DataSample

from mmreid_clip.datasets import text_image_collate
from mmreid_clip.datasets.transforms import PackTextImageInputs
from mmreid_clip.registry import TRANSFORMS


def bgr_image(h=8, w=4, seed=0):
    return np.random.default_rng(seed).integers(
        0, 256, (h, w, 3), dtype=np.uint8)


def text_ids(first, length=6):
    ids = np.zeros(length, np.int64)
    ids[:3] = [49406, first, 49407]
    return ids


def pair(seed=0, pid=1):
    return dict(
        img_path=f'/d/{seed}.jpg',
        img=bgr_image(seed=seed),
        caption=f'caption {seed}',
        text=text_ids(seed),
        pid=pid,
        image_id=seed,
        caption_id=seed)


def image_item(seed=0, pid=1):
    return dict(
        img_path=f'/d/{seed}.jpg',
        img=bgr_image(seed=seed),
        pid=pid,
        image_id=seed,
        caption_id=-1)


def text_item(seed=0, pid=1, image_id=0):
    return dict(
        caption=f'caption {seed}',
        text=text_ids(seed),
        pid=pid,
        image_id=image_id,
        caption_id=seed)


pack = PackTextImageInputs()


def test_pack_pair_item():
    item = pair(seed=3, pid=7)
    out = pack(dict(item))
    img = out['inputs']['images']
    assert img.dtype == torch.uint8 and img.shape == (3, 8, 4)
    # channels stay BGR, in the order they were loaded
    for c in range(3):
        np.testing.assert_array_equal(img[c].numpy(), item['img'][..., c])
    texts = out['inputs']['texts']
    assert texts.dtype == torch.int64 and texts.shape == (6, )
    assert texts.tolist()[:3] == [49406, 3, 49407]
    sample = out['data_samples']
    assert isinstance(sample, DataSample)
    assert sample.gt_label.tolist() == [7]
    assert sample.metainfo == dict(
        pid=7,
        image_id=3,
        caption_id=3,
        has_image=True,
        has_text=True,
        img_path='/d/3.jpg',
        caption='caption 3')


def test_pack_single_modalities_and_meta_keys():
    out = pack(image_item(seed=1))
    assert set(out['inputs']) == {'images'}
    meta = out['data_samples'].metainfo
    assert meta['has_text'] is False and meta['caption'] is None
    assert meta['caption_id'] == -1
    out = pack(text_item(seed=2, image_id=5))
    assert set(out['inputs']) == {'texts'}
    meta = out['data_samples'].metainfo
    assert meta['img_path'] is None and meta['image_id'] == 5
    extra = TRANSFORMS.build(
        dict(type='PackTextImageInputs', meta_keys=('flip', 'absent')))
    out = extra(dict(image_item(), flip=True))
    assert out['data_samples'].flip is True
    assert 'absent' not in out['data_samples']


def test_pack_checks_the_pipeline():
    item = image_item()
    del item['img']
    with pytest.raises(KeyError, match='LoadImageFromFile'):
        pack(item)
    item = text_item()
    del item['text']
    with pytest.raises(KeyError, match='TokenizeCaption'):
        pack(item)
    with pytest.raises(TypeError, match='uint8'):
        pack(dict(image_item(), img=bgr_image().astype(np.float32)))
    gray = pack(dict(image_item(), img=bgr_image()[..., 0]))
    assert gray['inputs']['images'].shape == (3, 8, 4)
    # an unlabelled query (inference API): no gt_label, pid -1
    out = pack(dict(caption='q', text=text_ids(1)))
    assert 'gt_label' not in out['data_samples']
    assert out['data_samples'].pid == -1


def test_collate_mixed_batch_keeps_item_order():
    items = [
        pair(0, pid=1),
        image_item(1, pid=2),
        text_item(2, pid=3),
        image_item(3, pid=4),
        pair(4, pid=5)
    ]
    batch = text_image_collate([pack(dict(it)) for it in items])
    images, texts = batch['inputs']['images'], batch['inputs']['texts']
    assert images.shape == (4, 3, 8, 4) and images.dtype == torch.uint8
    assert texts.shape == (3, 6) and texts.dtype == torch.int64
    # images of items 0, 1, 3, 4; texts of items 0, 2, 4, in that order
    for row, seed in enumerate([0, 1, 3, 4]):
        np.testing.assert_array_equal(images[row, 0].numpy(),
                                      bgr_image(seed=seed)[..., 0])
    assert texts[:, 1].tolist() == [0, 2, 4]
    assert [s.pid for s in batch['data_samples']] == [1, 2, 3, 4, 5]
    owners = [s.pid for s in batch['data_samples'] if s.has_image]
    assert owners == [1, 2, 4, 5]


def test_collate_omits_absent_modality():
    batch = text_image_collate([pack(text_item(i)) for i in range(3)])
    assert set(batch['inputs']) == {'texts'}
    batch = text_image_collate([pack(image_item(i)) for i in range(2)])
    assert set(batch['inputs']) == {'images'}
    assert len(batch['data_samples']) == 2


def test_collate_errors():
    with pytest.raises(ValueError, match='empty batch'):
        text_image_collate([])
    small = dict(image_item(1), img=bgr_image(h=6))
    with pytest.raises(ValueError, match=r'item 1: \(3, 6, 4\).*Resize'):
        text_image_collate([pack(image_item(0)), pack(small)])


def test_collate_is_in_root_functions_for_the_runner():
    # the Runner does FUNCTIONS.get(type) then partial(fn, **rest)
    fn = ROOT_FUNCTIONS.get('text_image_collate')
    assert fn is text_image_collate
    batch = partial(fn)([pack(pair(0)), pack(pair(1))])
    assert batch['inputs']['images'].shape[0] == 2
