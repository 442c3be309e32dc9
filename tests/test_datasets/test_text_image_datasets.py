"""Parsing of CUHK-PEDES / ICFG-PEDES / RSTPReid and the item contract."""
import json
import os
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.registry import DefaultScope, init_default_scope
from helpers.tipr_fixtures import cuhk_entries
from torch.utils.data import DataLoader

from mmreid_clip.datasets import (CUHKPEDES, ICFGPEDES, AnnotationError,
                                  RSTPReid, TextImageDataset,
                                  text_image_collate)
from mmreid_clip.registry import DATASETS


def infos(dataset):
    return [dataset.get_data_info(i) for i in range(len(dataset))]


# ----------------------------------------------------------------------
# CUHK-PEDES


def test_cuhk_train_items(make_tipr):
    root, _ = make_tipr('CUHKPEDES')
    ds = CUHKPEDES(data_root=root, split='train')
    items = infos(ds)
    # 4 train images: 2 + 2 + 2 + 3 captions, one pair item per caption
    assert len(ds) == 9
    assert [it['caption'] for it in items[:4]] == [
        'A man in a black coat.', 'He wears black shoes.',
        'The man carries a bag.', 'A man walking.'
    ]
    # ids 1, 2, 3 (1-based) -> 0, 1, 2, i.e. id - 1
    assert [it['pid'] for it in items] == [0, 0, 0, 0, 1, 1, 2, 2, 2]
    assert [it['image_id'] for it in items] == [0, 0, 1, 1, 2, 2, 3, 3, 3]
    assert [it['caption_id'] for it in items] == list(range(9))
    for it in items:
        assert osp.isabs(it['img_path']) and osp.isfile(it['img_path'])
    assert items[0]['img_path'] == osp.join(
        osp.abspath(root), 'imgs', 'cam_a', '0001_a.jpg')
    assert ds.metainfo['num_classes'] == 3
    assert ds.metainfo['num_images'] == 4
    assert ds.test_mode is False
    np.testing.assert_array_equal(ds.get_pids(), [0, 0, 0, 0, 1, 1, 2, 2, 2])
    assert ds.get_cat_ids(6) == [2]


def test_cuhk_test_items_images_then_texts(make_tipr):
    root, _ = make_tipr('CUHKPEDES')
    ds = CUHKPEDES(data_root=root, split='test')
    items = infos(ds)
    assert ds.test_mode is True
    assert len(ds) == 3 + 6
    images, texts = items[:3], items[3:]
    for i, it in enumerate(images):
        assert 'caption' not in it and it['caption_id'] == -1
        assert it['image_id'] == i
    assert [it['pid'] for it in images] == [5, 5, 6]  # raw ids on test
    assert images[0]['img_path'].endswith('test_query/0005_a.jpg')
    for it in texts:
        assert 'img_path' not in it
    assert [it['caption_id'] for it in texts] == list(range(6))
    assert [it['image_id'] for it in texts] == [0, 0, 1, 1, 2, 2]
    assert [it['pid'] for it in texts] == [5, 5, 5, 5, 6, 6]
    # non-ASCII captions are kept as written
    assert texts[0]['caption'] == 'Un homme en veste bleue, très grand.'
    assert texts[3]['caption'] == 'Blue jacket man 日本.'
    assert 'num_classes' not in ds.metainfo
    assert ds.metainfo['num_captions'] == 6


def test_cuhk_val_split(make_tipr):
    root, _ = make_tipr('CUHKPEDES')
    ds = CUHKPEDES(data_root=root, split='val')
    assert len(ds) == 2 + 4
    assert [it['pid'] for it in infos(ds)] == [4] * 6


def test_train_pid_remap_non_contiguous_and_logged(make_tipr, mm_records):
    root, _ = make_tipr('RSTPReid')
    ds = RSTPReid(data_root=root, split='train')
    # raw ids 10, 10, 3, 7 -> sorted 3, 7, 10 -> 0, 1, 2
    assert [it['pid'] for it in infos(ds)][::2] == [2, 2, 0, 1]
    assert ds.metainfo['num_classes'] == 3
    assert any('num_classes=3' in r.getMessage() for r in mm_records)


def test_duplicate_image_entries_share_image_id(make_tipr):
    entries = cuhk_entries()
    entries.append(
        dict(
            split='test',
            captions=['Third caption of the child.'],
            file_path='cam_a/0006_a.jpg',
            id=6))
    root, _ = make_tipr('CUHKPEDES', entries)
    ds = CUHKPEDES(data_root=root, split='test')
    items = infos(ds)
    assert sum('caption' not in it for it in items) == 3  # still 3 images
    last = items[-1]
    assert last['caption'] == 'Third caption of the child.'
    assert last['image_id'] == 2 and last['caption_id'] == 6


def test_images_without_captions(make_tipr):
    """Train: no pair item, and its identity is not a class (found by the
    annotation fuzzer); test: kept in the gallery."""
    entries = cuhk_entries()
    entries.append(
        dict(split='train', captions=[], file_path='cam_a/0009_a.jpg', id=9))
    entries.append(
        dict(split='test', captions=[], file_path='cam_a/0010_a.jpg', id=10))
    root, _ = make_tipr('CUHKPEDES', entries)
    train = CUHKPEDES(data_root=root, split='train')
    assert len(train) == 9 and train.metainfo['num_classes'] == 3
    test = CUHKPEDES(data_root=root, split='test')
    assert test.metainfo['num_images'] == 4 and len(test) == 4 + 6
    assert test.get_data_info(3)['pid'] == 10


def test_conflicting_ids_for_one_image(make_tipr):
    entries = cuhk_entries()
    entries.append(
        dict(split='test', captions=['x'], file_path='cam_a/0006_a.jpg', id=5))
    root, _ = make_tipr('CUHKPEDES', entries)
    with pytest.raises(AnnotationError, match=r'entry #9 .* entry #8'):
        CUHKPEDES(data_root=root, split='test')


def test_indices_subset_and_lazy_init(make_tipr):
    root, _ = make_tipr('CUHKPEDES')
    ds = CUHKPEDES(data_root=root, split='train', indices=4, lazy_init=True)
    assert 'num_classes' not in ds.metainfo
    assert len(ds) == 4  # full_init on demand
    np.testing.assert_array_equal(ds.get_pids(), [0, 0, 0, 0])
    sub = CUHKPEDES(data_root=root, split='train').get_subset([6, 4])
    np.testing.assert_array_equal(sub.get_pids(), [2, 1])


# ----------------------------------------------------------------------
# ICFG-PEDES and RSTPReid


@pytest.mark.parametrize('ann_name', ['ICFG-PEDES.json', 'ICFG_PEDES.json'])
def test_icfg_both_file_names(make_tipr, ann_name):
    root, _ = make_tipr('ICFGPEDES', ann_name=ann_name)
    train = ICFGPEDES(data_root=root, split='train')
    test = ICFGPEDES(data_root=root, split='test')
    assert train.ann_file.endswith(ann_name)
    assert len(train) == 4
    # 0-based ids 0, 1, 2 stay 0, 1, 2
    assert [it['pid'] for it in infos(train)] == [0, 0, 1, 2]
    assert train.metainfo['num_classes'] == 3
    assert len(test) == 3 + 3
    assert [it['image_id'] for it in infos(test)] == [0, 1, 2, 0, 1, 2]


def test_icfg_has_no_val(make_tipr):
    root, _ = make_tipr('ICFGPEDES')
    with pytest.raises(ValueError, match=r"no 'val' split.*split='test'"):
        ICFGPEDES(data_root=root, split='val', lazy_init=True)


def test_icfg_missing_annotation_names_both_files(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        ICFGPEDES(data_root=str(tmp_path / 'ICFG-PEDES'))
    msg = str(err.value)
    assert 'ICFG-PEDES.json' in msg and 'ICFG_PEDES.json' in msg


def test_rstpreid_uses_img_path(make_tipr):
    root, _ = make_tipr('RSTPReid')
    test = RSTPReid(data_root=root, split='test')
    items = infos(test)
    assert len(test) == 2 + 4
    assert items[0]['img_path'].endswith(osp.join('imgs', '0030_c6_0006.jpg'))
    assert [it['pid'] for it in items] == [30, 31, 30, 30, 31, 31]


def test_explicit_ann_file_and_base_class(make_tipr):
    # the generic class reads any file of the common shape (file_path)
    root, _ = make_tipr('CUHKPEDES')
    ds = TextImageDataset(
        data_root=root, ann_file='reid_raw.json', split='val')
    assert len(ds) == 2 + 4
    with pytest.raises(ValueError, match='needs ann_file'):
        TextImageDataset(data_root=root)


# ----------------------------------------------------------------------
# bad input


def test_missing_annotation_file_shows_layout(tmp_path):
    with pytest.raises(FileNotFoundError) as err:
        CUHKPEDES(data_root=str(tmp_path / 'CUHK-PEDES'))
    msg = str(err.value)
    assert 'reid_raw.json' in msg
    assert 'CUHK-PEDES/reid_raw.json and CUHK-PEDES/imgs/' in msg


def test_malformed_json(make_tipr):
    root, _ = make_tipr('CUHKPEDES')
    path = osp.join(root, 'reid_raw.json')
    with open(path, 'w') as f:
        f.write('[{"split": "train",\n  "id": 1,,}]')
    with pytest.raises(AnnotationError) as err:
        CUHKPEDES(data_root=root)
    msg = str(err.value)
    assert path in msg and 'line 2' in msg and 'column' in msg


def test_top_level_must_be_a_list(make_tipr):
    root, _ = make_tipr('RSTPReid', [])
    with open(osp.join(root, 'data_captions.json'), 'w') as f:
        json.dump({'annotations': []}, f)
    with pytest.raises(AnnotationError, match='expected a JSON list'):
        RSTPReid(data_root=root)


def test_caption_all_json_is_rejected(make_tipr):
    entries = [{
        k: v
        for k, v in e.items() if k != 'split'
    } for e in cuhk_entries()]
    root, _ = make_tipr('CUHKPEDES', entries, ann_name='caption_all.json')
    with pytest.raises(AnnotationError) as err:
        CUHKPEDES(data_root=root, ann_file='caption_all.json')
    msg = str(err.value)
    assert 'caption_all.json' in msg and 'reid_raw.json' in msg
    assert 'split' in msg


def corrupt(entries, index, **changes):
    entries[index] = dict(entries[index], **changes)
    for key, value in changes.items():
        if value is KeyError:
            del entries[index][key]
    return entries


@pytest.mark.parametrize('changes, pattern', [
    (dict(split=KeyError), r"entry #3 \(id=2, .*lacks the field 'split'"),
    (dict(captions=KeyError), "entry #3 .*lacks the field 'captions'"),
    (dict(id='2'), r'entry #3 .*"id" must be an integer, got str'),
    (dict(id=True), r'entry #3 .*"id" must be an integer'),
    (dict(captions='A woman.'), 'entry #3 .*"captions" must be a list'),
    (dict(captions=['ok', 7]), 'entry #3 .*caption 1 must be a string'),
    (dict(captions=['ok', '']), 'entry #3 .*caption 1 is empty'),
    (dict(captions=['  \n\t']), 'entry #3 .*caption 0 is empty or only'),
    (dict(file_path=None), r'entry #3 .*"file_path" must be a non-empty'),
    (dict(split='gallery'), "entry #3 .*unknown split 'gallery'"),
])
def test_bad_entry_names_file_and_entry(make_tipr, changes, pattern):
    entries = corrupt(cuhk_entries(), 3, **changes)
    root, _ = make_tipr('CUHKPEDES', entries)
    with pytest.raises(AnnotationError, match=pattern) as err:
        CUHKPEDES(data_root=root, split='train')
    assert osp.join(root, 'reid_raw.json') in str(err.value)


def test_entry_not_an_object(make_tipr):
    entries = cuhk_entries()
    entries[2] = ['train', 'x.jpg']
    root, _ = make_tipr('CUHKPEDES', entries)
    with pytest.raises(AnnotationError, match='entry #2 is a list'):
        CUHKPEDES(data_root=root)


def test_wrong_dataset_format_hint(make_tipr):
    # a CUHK-PEDES file handed to RSTPReid: file_path instead of img_path
    root, _ = make_tipr('CUHKPEDES')
    with pytest.raises(
            AnnotationError, match="lacks the field 'img_path'.*'file_path'"):
        RSTPReid(data_root=root, ann_file='reid_raw.json')


def test_split_without_samples(make_tipr):
    entries = [e for e in cuhk_entries() if e['split'] != 'val']
    root, _ = make_tipr('CUHKPEDES', entries)
    with pytest.raises(AnnotationError) as err:
        CUHKPEDES(data_root=root, split='val')
    msg = str(err.value)
    assert "split 'val' has no entries" in msg and 'reid_raw.json' in msg
    assert "'train': 4" in msg


def test_missing_images_listed(make_tipr):
    root, _ = make_tipr('CUHKPEDES')
    os.remove(osp.join(root, 'imgs', 'CUHK03', '0001_b.jpg'))
    os.remove(osp.join(root, 'imgs', 'CUHK01', '0003_a.jpg'))
    with pytest.raises(FileNotFoundError) as err:
        CUHKPEDES(data_root=root, split='train')
    msg = str(err.value)
    assert 'reid_raw.json' in msg and '2 of 4 images' in msg
    assert 'entry #1 (id=1)' in msg and 'CUHK03/0001_b.jpg' in msg
    assert 'entry #5 (id=3)' in msg
    assert 'check_files=False' in msg
    # other splits are not affected, and the check can be turned off
    assert len(CUHKPEDES(data_root=root, split='test')) == 9
    assert len(CUHKPEDES(data_root=root, check_files=False)) == 9


def test_missing_image_folder(make_tipr):
    root, _ = make_tipr('RSTPReid')
    with pytest.raises(FileNotFoundError, match='folder .* does not exist'):
        RSTPReid(data_root=root, img_prefix='images')


# ----------------------------------------------------------------------
# the full data path


def caption_pipeline(context_length=77):
    return [
        dict(
            type='TokenizeCaption',
            tokenizer=dict(
                type='OpenCLIPTokenizer', context_length=context_length),
            truncation='keep_eot')
    ]


def image_pipeline(flip_prob=0.5):
    return [
        dict(type='LoadImageFromFile'),
        dict(type='Resize', scale=(16, 32), interpolation='bicubic'),
        dict(type='RandomFlip', prob=flip_prob, direction='horizontal'),
    ]


def test_built_from_config_and_loaded(make_tipr):
    init_default_scope('mmreid_clip')
    root, _ = make_tipr('CUHKPEDES')
    ds = DATASETS.build(
        dict(
            type='CUHKPEDES',
            data_root=root,
            split='train',
            pipeline=image_pipeline(),
            text_pipeline=caption_pipeline()))
    loader = DataLoader(ds, batch_size=4, collate_fn=text_image_collate)
    batches = list(loader)
    assert [len(b['data_samples']) for b in batches] == [4, 4, 1]
    first = batches[0]
    # Resize scale is (W, H): 16 wide, 32 high
    assert first['inputs']['images'].shape == (4, 3, 32, 16)
    assert first['inputs']['images'].dtype == torch.uint8
    assert first['inputs']['texts'].shape == (4, 77)
    assert first['inputs']['texts'].dtype == torch.int64
    # BGR kept: the red channel (200 in the fixture) is the last one
    assert first['inputs']['images'][:, 2].float().mean() > 150
    sample = first['data_samples'][2]
    assert sample.gt_label.tolist() == [0]
    assert sample.caption_id == 2 and sample.image_id == 1
    assert sample.has_image and sample.has_text
    assert sample.caption == 'The man carries a bag.'


def test_test_split_through_workers(make_tipr):
    root, _ = make_tipr('RSTPReid')
    ds = DATASETS.build(
        dict(
            type='RSTPReid',
            data_root=root,
            split='test',
            pipeline=image_pipeline(flip_prob=0.0),
            text_pipeline=caption_pipeline(context_length=16)))
    loader = DataLoader(
        ds, batch_size=4, num_workers=2, collate_fn=text_image_collate)
    batches = list(loader)
    # 2 image items then 4 text items: batch 0 mixes both modalities
    assert batches[0]['inputs']['images'].shape == (2, 3, 32, 16)
    assert batches[0]['inputs']['texts'].shape == (2, 16)
    assert 'images' not in batches[1]['inputs']
    flags = [(s.has_image, s.has_text) for b in batches
             for s in b['data_samples']]
    assert flags == [(True, False)] * 2 + [(False, True)] * 4
    # 16 tokens cut the long first caption: EOT stays last
    assert batches[0]['inputs']['texts'][0, -1].item() == 49407


def test_config_augmentations_build_under_scope(make_tipr):
    """The train pipeline of configs/_base_/datasets builds and runs."""
    init_default_scope('mmreid_clip')
    root, _ = make_tipr('CUHKPEDES')
    img_size = (32, 16)  # (H, W), like the configs' (384, 128)
    pipeline = [
        dict(type='LoadImageFromFile'),
        dict(
            type='Resize',
            scale=(img_size[1], img_size[0]),
            interpolation='bicubic'),
        dict(type='RandomFlip', prob=0.5, direction='horizontal'),
        dict(type='RandomCrop', crop_size=img_size, padding=2),
        dict(
            type='RandomErasing',
            erase_prob=1.0,
            min_area_ratio=0.02,
            max_area_ratio=0.4,
            mode='const',
            fill_color=(104, 117, 123)),
    ]
    ds = DATASETS.build(
        dict(
            type='CUHKPEDES',
            data_root=root,
            pipeline=pipeline,
            text_pipeline=caption_pipeline()))
    out = ds[0]
    assert out['inputs']['images'].shape == (3, 32, 16)
    assert out['inputs']['images'].dtype == torch.uint8


def test_pipeline_builds_without_default_scope(make_tipr):
    root, _ = make_tipr('CUHKPEDES')
    with DefaultScope.overwrite_default_scope(None):
        ds = CUHKPEDES(
            data_root=root,
            split='test',
            pipeline=image_pipeline(),
            text_pipeline=caption_pipeline())
    assert ds[0]['inputs']['images'].shape == (3, 32, 16)
    assert ds[5]['inputs']['texts'].shape == (77, )


def test_missing_loader_is_a_clear_error(make_tipr):
    root, _ = make_tipr('CUHKPEDES')
    ds = CUHKPEDES(
        data_root=root, split='test', text_pipeline=caption_pipeline())
    with pytest.raises(KeyError, match='LoadImageFromFile'):
        ds[0]
    ds = CUHKPEDES(data_root=root, split='test', pipeline=image_pipeline())
    with pytest.raises(KeyError, match='TokenizeCaption'):
        ds[4]


def test_runner_builds_the_dataloader(make_tipr):
    """mmengine's Runner path: collate_fn and sampler looked up by name."""
    from mmengine.runner import Runner
    init_default_scope('mmreid_clip')
    root, _ = make_tipr('CUHKPEDES')
    loader = Runner.build_dataloader(
        dict(
            batch_size=4,
            num_workers=0,
            sampler=dict(
                type='IdentityBalancedSampler', num_instances=2, batch_size=4),
            collate_fn=dict(type='text_image_collate'),
            dataset=dict(
                type='CUHKPEDES',
                data_root=root,
                pipeline=image_pipeline(),
                text_pipeline=caption_pipeline())),
        seed=0)
    for batch in loader:
        pids = [s.pid for s in batch['data_samples']]
        assert len(pids) == 4 and len(set(pids)) == 2
        assert all(pids.count(p) == 2 for p in pids)
        assert batch['inputs']['images'].shape == (4, 3, 32, 16)
