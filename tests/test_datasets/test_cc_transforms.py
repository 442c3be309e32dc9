"""Cloth-changing pipeline: parsing masks, joint geometry, shielding, packing.

The images are painted with one colour per LIP label, so after any chain
of geometric ops the image and the mask are aligned exactly when every
pixel's colour is its label's colour.
"""
import copy

import cv2
import numpy as np
import pytest
import torch
from mmengine.dataset import Compose
from PIL import Image

from mmreid_clip.datasets.reid_collate import reid_collate
from mmreid_clip.datasets.transforms import (CLOTHES_LABEL_PRESETS,
                                             JointRandomCrop, LoadParsingMask,
                                             PackReIDInputs, ShieldClothes)
from mmreid_clip.registry import MODELS

LIP_CLOTHES = (1, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12)
_LEVELS = (0, 85, 170, 255)
_COMBOS = [(b, g, r) for b in _LEVELS for g in _LEVELS for r in _LEVELS]
# BGR colour of each LIP label; background is black like the crop padding
PALETTE = np.array([_COMBOS[(3 * i) % 63] for i in range(20)], np.uint8)
assert len({tuple(c) for c in PALETTE}) == 20 and not PALETTE[0].any()

# The recommended CLIP-ReID recipe adapted to masks (docs/methods/ccaf.md §6.3,
# §9).
TRAIN_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadParsingMask'),
    dict(
        type='Resize',
        scale=(128, 256),
        interpolation='bicubic',
        backend='pillow',
        keep_ratio=False),
    dict(type='RandomFlip', prob=0.5, direction='horizontal'),
    dict(
        type='JointRandomCrop',
        crop_size=(256, 128),
        padding=10,
        pad_val=0,
        seg_pad_val=0),
    dict(type='ShieldClothes', clothes_labels='lip', fill=0),
    dict(
        type='TransformBroadcaster',
        mapping={'img': ['img', 'shield_img']},
        auto_remap=True,
        share_random_params=False,
        transforms=[
            dict(
                type='RandomErasing',
                erase_prob=0.5,
                min_area_ratio=0.02,
                max_area_ratio=1 / 3,
                mode='rand',
                fill_color=(127.5, 127.5, 127.5),
                fill_std=(127.5, 127.5, 127.5))
        ]),
    dict(type='PackReIDInputs'),
]
# CLIP-ReID's val_transforms: T.Resize(SIZE_TEST), i.e. PIL bilinear
TEST_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(
        type='Resize',
        scale=(128, 256),
        interpolation='bilinear',
        backend='pillow',
        keep_ratio=False),
    dict(type='PackReIDInputs'),
]
# Un-augmented train views for the stage-1 feature caches (CLIP-ReID runs
# val_transforms over the train set there), with the clothes-only view.
STAGE1_PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadParsingMask'),
    dict(
        type='Resize',
        scale=(128, 256),
        interpolation='bilinear',
        backend='pillow',
        keep_ratio=False),
    dict(type='ShieldClothes', clothes_labels='lip', with_clothes_img=True),
    dict(type='PackReIDInputs'),
]
SHIELD_STEP = 5  # index of ShieldClothes in TRAIN_PIPELINE


def label_map(h=200, w=90):
    """Background with 20 rectangular cells holding labels 1..19 (+5)."""
    seg = np.zeros((h, w), np.uint8)
    labels = list(range(1, 20)) + [5]
    band = (h - 20) // 10
    for k, lab in enumerate(labels):
        top = 10 + (k // 2) * band
        left = 8 + (k % 2) * ((w - 16) // 2)
        seg[top:top + band, left:left + (w - 16) // 2] = lab
    return seg


def write_item(tmp_path, name='p1', seg=None, palette_png=True):
    """A painted image PNG and its label PNG (palette mode, as SCHP)."""
    seg = label_map() if seg is None else seg
    img_path = str(tmp_path / f'{name}.png')
    mask_path = str(tmp_path / f'{name}_mask.png')
    cv2.imwrite(img_path, PALETTE[seg])
    mask = Image.fromarray(seg)
    if palette_png:
        mask.putpalette(PALETTE[:, ::-1].flatten().tolist())
    mask.save(mask_path)
    return dict(
        img_path=img_path,
        mask_path=mask_path,
        pid=3,
        camid=1,
        clothes_id=7,
        subset='train',
        sample_idx=0)


def run(pipeline, item, seed):
    np.random.seed(seed)
    return Compose(copy.deepcopy(pipeline))(copy.deepcopy(item))


def uniform_interior(seg, radius):
    """True where the (2r+1)^2 neighbourhood has one label."""
    k = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
    lo = cv2.erode(seg, k, borderType=cv2.BORDER_REPLICATE)
    hi = cv2.dilate(seg, k, borderType=cv2.BORDER_REPLICATE)
    return lo == hi


# ---------------------------------------------------------------- loading


def test_load_parsing_mask_reads_label_ids_not_palette(tmp_path):
    item = write_item(tmp_path)
    out = run(TRAIN_PIPELINE[:2], item, 0)
    assert out['gt_seg_map'].dtype == np.uint8
    assert np.array_equal(out['gt_seg_map'], label_map())
    assert np.array_equal(out['img'], PALETTE[label_map()])
    # grey ('L') PNGs read the same
    item = write_item(tmp_path, 'grey', palette_png=False)
    assert np.array_equal(
        run(TRAIN_PIPELINE[:2], item, 0)['gt_seg_map'], label_map())


def test_load_parsing_mask_errors_name_the_file(tmp_path):
    item = write_item(tmp_path)
    load = [dict(type='LoadImageFromFile'), dict(type='LoadParsingMask')]

    missing = dict(item, mask_path=str(tmp_path / 'nope.png'))
    with pytest.raises(FileNotFoundError, match='nope.png'):
        run(load, missing, 0)

    (tmp_path / 'junk.png').write_bytes(b'not a png at all')
    with pytest.raises(ValueError, match='junk.png'):
        run(load, dict(item, mask_path=str(tmp_path / 'junk.png')), 0)

    small = write_item(tmp_path, 'small', seg=label_map()[::2, ::2].copy())
    with pytest.raises(ValueError, match=r'small_mask.png.*100x45.*200x90'):
        run(load, dict(item, mask_path=small['mask_path']), 0)

    with pytest.raises(KeyError, match='with_mask=True'):
        run(load, dict(item, mask_path=None), 0)
    with pytest.raises(KeyError, match='after LoadImageFromFile'):
        LoadParsingMask()(dict(mask_path=item['mask_path']))

    bad = label_map()
    bad[0, 0] = 20
    Image.fromarray(bad).save(str(tmp_path / 'bad_mask.png'))
    with pytest.raises(ValueError, match='bad_mask.png.*label 20'):
        run(load, dict(item, mask_path=str(tmp_path / 'bad_mask.png')), 0)

    colour_path = str(tmp_path / 'colour.png')
    cv2.imwrite(colour_path, PALETTE[label_map()])
    with pytest.raises(ValueError, match='colour.png.*colourised'):
        run(load, dict(item, mask_path=colour_path), 0)


def test_load_parsing_mask_resize_to_image_is_nearest(tmp_path):
    item = write_item(tmp_path)
    small = write_item(tmp_path, 'small', seg=label_map()[::2, ::2].copy())
    load = [
        dict(type='LoadImageFromFile'),
        dict(type='LoadParsingMask', resize_to_image=True)
    ]
    out = run(load, dict(item, mask_path=small['mask_path']), 0)
    seg = out['gt_seg_map']
    assert seg.shape == (200, 90) and seg.dtype == np.uint8
    assert set(np.unique(seg)) == set(np.unique(label_map()))
    # nearest upsampling of the 2x-subsampled map matches away from edges
    inside = uniform_interior(label_map(), 2)
    assert np.array_equal(seg[inside], label_map()[inside])


# ------------------------------------------------------- joint geometry


def test_joint_random_crop_moves_mask_with_image():
    h, w = 12, 8
    ys, xs = np.mgrid[0:h, 0:w]
    code = (ys * w + xs + 1).astype(np.uint8)  # 1..96, unique per pixel
    img = np.repeat(code[..., None], 3, axis=2)
    crop = JointRandomCrop(crop_size=(12, 8), padding=2, seg_pad_val=0)
    seen_offsets = set()
    for seed in range(12):
        np.random.seed(seed)
        out = crop(dict(img=img.copy(), gt_seg_map=code.copy()))
        assert out['img'].shape == (12, 8, 3)
        assert out['img_shape'] == (12, 8)
        assert np.array_equal(out['img'][..., 0], out['gt_seg_map'])
        inside = np.argwhere(out['gt_seg_map'] > 0)
        seen_offsets.add(tuple(inside.min(0)))
    assert len(seen_offsets) > 3  # the window does move

    small = JointRandomCrop(
        crop_size=(6, 6), pad_if_needed=True, seg_pad_val=255)
    out = small(dict(img=img[:4, :4].copy(), gt_seg_map=code[:4, :4].copy()))
    assert out['gt_seg_map'].shape == (6, 6)
    assert np.array_equal(out['gt_seg_map'][1:5, 1:5], code[:4, :4])
    assert (out['gt_seg_map'][0] == 255).all()
    assert (out['img'][0] == 0).all()

    # a per-channel fill given as a list (what configs make of tuples)
    coloured = JointRandomCrop(
        crop_size=(16, 12), padding=2, pad_val=[1, 2, 3])
    out = coloured(dict(img=img.copy(), gt_seg_map=code.copy()))
    assert out['img'][0, 0].tolist() == [1, 2, 3]
    assert out['gt_seg_map'][0, 0] == 0

    with pytest.raises(ValueError, match='gt_seg_map is'):
        crop(dict(img=img, gt_seg_map=code[:6]))


@pytest.mark.parametrize('seed', range(6))
def test_geometry_keeps_every_pixel_aligned(tmp_path, seed):
    """Nearest for both image and mask: every pixel must match exactly."""
    item = write_item(tmp_path)
    pipeline = copy.deepcopy(TRAIN_PIPELINE[:SHIELD_STEP])
    pipeline[2]['interpolation'] = 'nearest'
    out = run(pipeline, item, seed)
    img, seg = out['img'], out['gt_seg_map']
    assert img.shape == (256, 128, 3) and seg.shape == (256, 128)
    assert np.array_equal(img, PALETTE[seg])


def test_geometry_seeds_cover_flip_and_shifted_crops(tmp_path):
    item = write_item(tmp_path)
    flips, tops = set(), set()
    for seed in range(6):
        out = run(TRAIN_PIPELINE[:SHIELD_STEP], item, seed)
        flips.add(out['flip'])
        rows_fg = np.flatnonzero(out['img'].any(axis=(1, 2)))
        tops.add(int(rows_fg[0]))
    # the alignment test above saw both flip states and moving windows
    assert flips == {True, False}
    assert len(tops) > 2


@pytest.mark.parametrize('seed', range(4))
def test_bicubic_pipeline_mask_aligned_and_valid(tmp_path, seed):
    item = write_item(tmp_path)
    out = run(TRAIN_PIPELINE[:SHIELD_STEP], item, seed)
    img, seg = out['img'].astype(int), out['gt_seg_map']
    # nearest for the mask: no interpolated in-between labels
    assert seg.dtype == np.uint8
    assert set(np.unique(seg)) <= set(range(20))
    # bicubic blurs only the borders; inside each region colours are exact
    inside = uniform_interior(seg, 3)
    assert inside.mean() > 0.5
    err = np.abs(img - PALETTE[seg].astype(int)).max(-1)
    assert err[inside].max() <= 1
    # and every pixel is nearest to its own label's colour but at borders.
    # Pillow's bicubic and nearest share the pixel-centre convention (99.1%
    # here); cv2's INTER_NEAREST sits half a source pixel off its cubic
    # (97.3%), which this bound rejects.
    dist = np.abs(img[:, :, None, :] - PALETTE[None, None].astype(int))
    nearest = dist.sum(-1).argmin(-1)
    assert (nearest[inside] == seg[inside]).all()
    assert (nearest == seg).mean() > 0.985


# -------------------------------------------------------------- shielding


def shield_input():
    seg = np.array([[0, 1, 2, 5], [13, 9, 18, 12]], np.uint8)
    img = np.arange(24, dtype=np.uint8).reshape(2, 4, 3) + 100
    return dict(img=img, gt_seg_map=seg)


def test_shield_and_clothes_images_exact():
    res = ShieldClothes(with_clothes_img=True)(shield_input())
    img, seg = res['img'], res['gt_seg_map']
    clothes = np.isin(seg, LIP_CLOTHES)
    assert clothes.tolist() == [[False, True, False, True],
                                [False, True, False, True]]
    assert np.array_equal(res['shield_img'][~clothes], img[~clothes])
    assert (res['shield_img'][clothes] == 0).all()
    assert np.array_equal(res['clothes_img'][clothes], img[clothes])
    assert (res['clothes_img'][~clothes] == 0).all()
    assert np.array_equal(img, shield_input()['img'])  # untouched
    assert res['shield_img'].dtype == np.uint8

    only_shield = ShieldClothes()(shield_input())
    assert 'clothes_img' not in only_shield


def test_shield_fill_variants():
    # 'mean' uses the preprocessor's RGB mean, written in BGR order
    shield = ShieldClothes(
        fill='mean', mean=(10, 20, 30), with_clothes_img=True)
    res = shield(shield_input())
    assert res['shield_img'][0, 1].tolist() == [30, 20, 10]
    assert res['clothes_img'][0, 0].tolist() == [30, 20, 10]
    # default mean 127.5 rounds to 128 (views stay uint8)
    res = ShieldClothes(fill='mean')(shield_input())
    assert res['shield_img'][0, 1].tolist() == [128, 128, 128]
    res = ShieldClothes(fill=(1, 2, 3))(shield_input())
    assert res['shield_img'][1, 3].tolist() == [3, 2, 1]
    res = ShieldClothes(fill=(1, 2, 3), channel_order='rgb')(shield_input())
    assert res['shield_img'][1, 3].tolist() == [1, 2, 3]
    res = ShieldClothes(fill=255)(shield_input())
    assert res['shield_img'][0, 1].tolist() == [255] * 3


def test_shield_label_presets_and_lists():
    assert CLOTHES_LABEL_PRESETS['lip'] == LIP_CLOTHES
    inp = shield_input()
    core = ShieldClothes(clothes_labels='lip_core')(shield_input())
    # hat (1) is not a core garment, upper-clothes (5) is
    assert np.array_equal(core['shield_img'][0, 1], inp['img'][0, 1])
    assert (core['shield_img'][0, 3] == 0).all()
    shoes = ShieldClothes(clothes_labels='lip_with_shoes')(shield_input())
    assert (shoes['shield_img'][1, 2] == 0).all()  # left shoe (18)
    hair = ShieldClothes(clothes_labels=[2])(shield_input())
    changed = (hair['shield_img'] != inp['img']).any(-1)
    assert changed.tolist() == [[False, False, True, False],
                                [False, False, False, False]]


def test_shield_bad_config_and_input():
    with pytest.raises(ValueError, match='unknown clothes_labels preset'):
        ShieldClothes(clothes_labels='atr')
    with pytest.raises(ValueError, match="'mean'"):
        ShieldClothes(fill='black')
    with pytest.raises(ValueError, match='0-255'):
        ShieldClothes(fill=300)
    with pytest.raises(KeyError, match='LoadParsingMask'):
        ShieldClothes()(dict(img=np.zeros((2, 2, 3), np.uint8)))
    with pytest.raises(ValueError, match='out of step'):
        ShieldClothes()(
            dict(
                img=np.zeros((2, 2, 3), np.uint8),
                gt_seg_map=np.zeros((3, 2), np.uint8)))


@pytest.mark.parametrize('seed', range(3))
def test_pipeline_shield_matches_mask(tmp_path, seed):
    item = write_item(tmp_path)
    pipeline = copy.deepcopy(TRAIN_PIPELINE[:SHIELD_STEP + 1])
    pipeline[-1]['with_clothes_img'] = True
    out = run(pipeline, item, seed)
    clothes = np.isin(out['gt_seg_map'], LIP_CLOTHES)
    assert clothes.any() and (~clothes).any()
    assert np.array_equal(out['shield_img'][~clothes], out['img'][~clothes])
    assert (out['shield_img'][clothes] == 0).all()
    assert np.array_equal(out['clothes_img'][clothes], out['img'][clothes])
    assert (out['clothes_img'][~clothes] == 0).all()


# ---------------------------------------------------- per-view erasing


def erased_box(before, after):
    ys, xs = np.nonzero((before != after).any(-1))
    if len(ys) == 0:
        return None
    return ys.min(), xs.min(), ys.max(), xs.max()


def iou(a, b):
    h = min(a[2], b[2]) - max(a[0], b[0]) + 1
    w = min(a[3], b[3]) - max(a[1], b[1]) + 1
    inter = max(h, 0) * max(w, 0)

    def area(r):
        return (r[2] - r[0] + 1) * (r[3] - r[1] + 1)

    return inter / (area(a) + area(b) - inter)


def views(seed):
    rng = np.random.default_rng(seed)
    img = rng.integers(40, 216, (64, 32, 3), dtype=np.uint8)
    return dict(img=img, shield_img=img.copy(), clothes_img=img.copy())


def erase_with(share, keys, seed):
    cfg = copy.deepcopy(TRAIN_PIPELINE[SHIELD_STEP + 1])
    cfg['share_random_params'] = share
    cfg['mapping'] = {'img': list(keys)}
    data = views(100 + seed)
    before = {k: v.copy() for k, v in data.items()}
    np.random.seed(seed)
    out = Compose([cfg])(data)
    return {k: erased_box(before[k], out[k]) for k in keys}


def test_random_erasing_is_independent_per_view():
    keys = ('img', 'shield_img', 'clothes_img')
    both, alone = [], 0
    for seed in range(40):
        boxes = erase_with(False, keys, seed)
        erased = [b for b in boxes.values() if b is not None]
        if len(erased) == 3:
            both.append(boxes)
        elif erased:
            alone += 1  # one view erased, another not: independent p=0.5
    assert both and alone
    boxes = both[0]
    assert iou(boxes['img'], boxes['shield_img']) < 0.9
    assert iou(boxes['img'], boxes['clothes_img']) < 0.9
    # the check can tell: shared parameters give one region for all views
    for seed in range(10):
        shared = erase_with(True, keys, seed)
        if shared['img'] is not None:
            assert iou(shared['img'], shared['shield_img']) > 0.9
            break
    else:
        pytest.fail('no seed erased with shared params')


def test_erasing_leaves_other_keys_and_only_listed_views():
    data = views(0)
    cfg = copy.deepcopy(TRAIN_PIPELINE[SHIELD_STEP + 1])
    cfg['transforms'][0]['erase_prob'] = 1.0
    data['img_shape'] = (64, 32)
    keep = data['clothes_img'].copy()
    out = Compose([cfg])(data)
    assert out['img_shape'] == (64, 32)
    assert np.array_equal(out['clothes_img'], keep)  # not in the mapping
    assert not np.array_equal(out['img'], views(0)['img'])


# ------------------------------------------------------------ packing


def test_pack_reid_inputs():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (8, 4, 3), dtype=np.uint8)
    res = dict(
        img=img,
        shield_img=img[::-1].copy(),
        img_path='/d/a.jpg',
        pid=4,
        camid=2,
        clothes_id=9,
        subset='query_cc',
        tracklet_id=11,
        flip=True)
    out = PackReIDInputs(meta_keys=('flip', 'absent'))(res)
    inputs, sample = out['inputs'], out['data_samples']
    assert set(inputs) == {'images', 'shield_images'}
    assert inputs['images'].dtype == torch.uint8
    assert inputs['images'].shape == (3, 8, 4)
    assert torch.equal(inputs['images'],
                       torch.from_numpy(img).permute(2, 0, 1))
    assert torch.equal(inputs['shield_images'][:, 0], inputs['images'][:, -1])
    assert sample.gt_label.tolist() == [4]
    assert (sample.pid, sample.camid, sample.clothes_id, sample.subset,
            sample.img_path, sample.tracklet_id,
            sample.flip) == (4, 2, 9, 'query_cc', '/d/a.jpg', 11, True)
    assert 'absent' not in sample

    res3 = dict(res, clothes_img=img.copy())
    res3.pop('tracklet_id')
    out3 = PackReIDInputs()(res3)
    assert set(out3['inputs']) == {'images', 'shield_images', 'clothes_images'}
    assert 'tracklet_id' not in out3['data_samples']


def test_pack_reid_inputs_errors():
    img = np.zeros((8, 4, 3), np.uint8)
    base = dict(
        img=img,
        pid=1,
        camid=0,
        clothes_id=0,
        subset='train',
        img_path='/d/x.jpg')
    pack = PackReIDInputs()
    with pytest.raises(KeyError, match=r"x.jpg.*\['camid'\]"):
        pack({k: v for k, v in base.items() if k != 'camid'})
    with pytest.raises(KeyError, match='LoadImageFromFile'):
        pack({k: v for k, v in base.items() if k != 'img'})
    with pytest.raises(TypeError, match='uint8'):
        pack(dict(base, img=img.astype(np.float64)))
    # float32 on the 0-255 scale packs (timm-style erasing); an item that a
    # Normalize transform touched does not
    packed = pack(dict(base, img=img.astype(np.float32)))
    assert packed['inputs']['images'].dtype == torch.float32
    with pytest.raises(ValueError, match='drop Normalize'):
        pack(dict(base, img=img.astype(np.float32),
                  img_norm_cfg=dict(mean=[0] * 3, std=[1] * 3)))
    with pytest.raises(ValueError, match='differ in shape'):
        pack(dict(base, shield_img=np.zeros((6, 4, 3), np.uint8)))


# ------------------------------------------------------------ end to end


def test_train_and_test_pipelines_end_to_end(tmp_path):
    items = [write_item(tmp_path, f'p{i}') for i in range(2)]
    packed = [run(TRAIN_PIPELINE, it, seed) for seed, it in enumerate(items)]
    batch = reid_collate(packed)
    assert set(batch['inputs']) == {'images', 'shield_images'}
    for v in batch['inputs'].values():
        assert v.shape == (2, 3, 256, 128) and v.dtype == torch.uint8
    pre = MODELS.build(dict(type='ReIDDataPreprocessor'))
    out = pre(batch)
    for v in out['inputs'].values():
        assert v.dtype == torch.float32 and v.shape == (2, 3, 256, 128)
        assert v.min() >= -1 and v.max() <= 1
    # shielded clothes are black, i.e. -1 after Normalize(0.5, 0.5)
    assert (out['inputs']['shield_images'] == -1).float().mean() > \
        (out['inputs']['images'] == -1).float().mean()
    assert [s.pid for s in out['data_samples']] == [3, 3]

    test_item = dict(items[0])
    test_item.pop('mask_path')
    test_out = run(TEST_PIPELINE, test_item, 0)
    assert set(test_out['inputs']) == {'images'}
    assert test_out['inputs']['images'].shape == (3, 256, 128)

    stage1 = reid_collate([run(STAGE1_PIPELINE, it, 0) for it in items])
    assert set(
        stage1['inputs']) == {'images', 'shield_images', 'clothes_images'}
    # no augmentation: the raw view equals the test pipeline's
    assert torch.equal(stage1['inputs']['images'][0],
                       test_out['inputs']['images'])
