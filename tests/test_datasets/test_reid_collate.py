"""reid_collate on packed multi-view ReID items."""
import numpy as np
import pytest
import torch
from mmengine.registry import FUNCTIONS as ROOT_FUNCTIONS

from mmreid_clip.datasets.reid_collate import reid_collate
from mmreid_clip.datasets.transforms import PackReIDInputs


def packed(seed, views=('img', 'shield_img'), hw=(8, 4), pid=1):
    rng = np.random.default_rng(seed)
    res = dict(
        img_path=f'/d/{seed}.jpg',
        pid=pid,
        camid=seed % 3,
        clothes_id=10 + seed,
        subset='train')
    for key in views:
        res[key] = rng.integers(0, 256, hw + (3, ), dtype=np.uint8)
    return PackReIDInputs()(res)


def test_stacks_every_view_in_item_order():
    items = [packed(s, pid=s) for s in range(3)]
    batch = reid_collate(items)
    assert set(batch['inputs']) == {'images', 'shield_images'}
    for key in ('images', 'shield_images'):
        t = batch['inputs'][key]
        assert t.shape == (3, 3, 8, 4) and t.dtype == torch.uint8
        for i, item in enumerate(items):
            assert torch.equal(t[i], item['inputs'][key])
    assert [s.pid for s in batch['data_samples']] == [0, 1, 2]
    assert [s.clothes_id for s in batch['data_samples']] == [10, 11, 12]

    three = reid_collate([
        packed(s, views=('img', 'shield_img', 'clothes_img')) for s in range(2)
    ])
    assert set(
        three['inputs']) == {'images', 'shield_images', 'clothes_images'}
    single = reid_collate([packed(0, views=('img', ))])
    assert set(single['inputs']) == {'images'}
    assert single['inputs']['images'].shape == (1, 3, 8, 4)


def test_registered_in_root_functions():
    assert ROOT_FUNCTIONS.get('reid_collate') is reid_collate


def test_mismatched_items_raise_naming_the_key():
    with pytest.raises(ValueError, match='empty batch'):
        reid_collate([])
    with pytest.raises(ValueError, match=r"item 1.*lacks \['shield_images'\]"):
        reid_collate([packed(0), packed(1, views=('img', ))])
    with pytest.raises(ValueError, match=r"item 1.*adds \['clothes_images'\]"):
        reid_collate(
            [packed(0),
             packed(1, views=('img', 'shield_img', 'clothes_img'))])
    with pytest.raises(
            ValueError, match=r"inputs\['images'\].*shapes.*\(3, 6, 4\)"):
        reid_collate([packed(0), packed(1, hw=(6, 4))])
    bad = packed(1)
    bad['inputs']['shield_images'] = bad['inputs']['shield_images'].float()
    with pytest.raises(ValueError, match=r"inputs\['shield_images'\].*dtypes"):
        reid_collate([packed(0), bad])
