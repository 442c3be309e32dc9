"""Bad data: each problem is a clear error naming the file and the entry,
or, with ``on_bad_sample='skip'``, a counted and logged skip.

(Malformed JSON, a top level that is not a list, missing fields, wrong
types, empty captions, unknown splits and a split without entries in error
mode are covered by tests/test_datasets/test_text_image_datasets.py; here
the image side, duplicates, skipping, encodings and long captions.)
"""
import os
import os.path as osp

import numpy as np
import pytest
import torch
from helpers.tipr_fixtures import cuhk_entries

from mmreid_clip.datasets import CUHKPEDES, RSTPReid, TextImageDataset
from mmreid_clip.datasets.text_image_dataset import (AnnotationError,
                                                     BadImageError,
                                                     image_file_problem)
from mmreid_clip.registry import TRANSFORMS

PIPELINE = [
    dict(type='LoadImageFromFile'),
    dict(type='Resize', scale=(8, 16)),
]
TEXT = [
    dict(
        type='TokenizeCaption',
        tokenizer=dict(type='OpenCLIPTokenizer', context_length=16))
]


def messages(records):
    return [r.getMessage() for r in records]


def damage(path, how):
    data = open(path, 'rb').read()
    with open(path, 'wb') as f:
        if how == 'truncated':
            f.write(data[:len(data) // 2])
        elif how == 'garbage':
            f.write(b'this is not a JPEG file' * 4)
        elif how == 'empty':
            pass


# ----------------------------------------------------------------------
# images


@pytest.mark.parametrize('how, problem', [
    ('truncated', 'cannot be decoded as an image'),
    ('garbage', 'cannot be decoded as an image'),
    ('empty', 'empty'),
])
def test_corrupt_image_names_file_item_and_entry(make_tipr, how, problem):
    root, _ = make_tipr('CUHKPEDES')
    bad = osp.join(root, 'imgs', 'cam_b', '0002_a.jpg')  # entry #3
    damage(bad, how)
    ds = CUHKPEDES(
        data_root=root, split='train', pipeline=PIPELINE, text_pipeline=TEXT)
    assert ds[0]['inputs']['images'].shape == (3, 16, 8)  # others load
    with pytest.raises(BadImageError) as err:
        ds[4]  # the first caption of entry #3
    msg = str(err.value)
    assert bad in msg and problem in msg
    assert 'item 4' in msg and 'annotation entry #3' in msg
    assert osp.join(root, 'reid_raw.json') in msg and 'pid=1' in msg
    assert "on_bad_sample='skip'" in msg


def test_image_deleted_after_loading(make_tipr):
    root, _ = make_tipr('RSTPReid')
    ds = RSTPReid(
        data_root=root, split='test', pipeline=PIPELINE, text_pipeline=TEXT)
    os.remove(osp.join(root, 'imgs', '0031_c7_0007.jpg'))
    with pytest.raises(
            BadImageError, match='0031_c7_0007.jpg: the file '
            'does not exist'):
        ds[1]


def test_skip_corrupt_train_image_counts_logs_and_refetches(
        make_tipr, mm_records):
    root, _ = make_tipr('CUHKPEDES')
    damage(osp.join(root, 'imgs', 'cam_b', '0002_a.jpg'), 'garbage')
    ds = CUHKPEDES(
        data_root=root,
        split='train',
        pipeline=PIPELINE,
        text_pipeline=TEXT,
        on_bad_sample='skip')
    assert ds.prepare_data(4) is None  # the caption of entry #3
    assert ds.num_bad_images == 1
    logged = [m for m in messages(mm_records) if 'skipped' in m]
    assert len(logged) == 1
    assert '0002_a.jpg' in logged[0] and 'annotation entry #3' in logged[0]
    assert '1 images skipped so far' in logged[0]
    # through __getitem__ mmengine draws other items until one loads
    np.random.seed(0)
    out = ds[4]
    assert out['data_samples'].image_id != 2
    assert out['inputs']['images'].shape == (3, 16, 8)
    logged = [m for m in messages(mm_records) if 'skipped' in m]
    assert ds.num_bad_images == len(logged) >= 2


def test_skip_does_not_apply_to_evaluation_images(make_tipr):
    root, _ = make_tipr('CUHKPEDES')
    damage(osp.join(root, 'imgs', 'test_query', '0005_b.jpg'), 'truncated')
    ds = CUHKPEDES(
        data_root=root,
        split='test',
        pipeline=PIPELINE,
        text_pipeline=TEXT,
        on_bad_sample='skip')
    with pytest.raises(BadImageError, match='change the protocol'):
        ds[1]


def test_pipeline_bug_is_not_taken_for_a_bad_image(make_tipr):
    """A transform that fails on a good image raises its own error."""

    def buggy_transform(results):
        raise ZeroDivisionError('a bug in the pipeline')

    root, _ = make_tipr('CUHKPEDES')
    ds = CUHKPEDES(
        data_root=root,
        split='train',
        on_bad_sample='skip',
        text_pipeline=TEXT,
        pipeline=[dict(type='LoadImageFromFile'), buggy_transform])
    with pytest.raises(ZeroDivisionError, match='a bug in the pipeline'):
        ds[0]
    assert ds.num_bad_images == 0


def test_image_file_problem(tmp_path, make_tipr):
    root, _ = make_tipr('CUHKPEDES')
    good = osp.join(root, 'imgs', 'cam_a', '0001_a.jpg')
    assert image_file_problem(good) is None
    assert 'does not exist' in image_file_problem(str(tmp_path / 'no.jpg'))
    assert 'not a file' in image_file_problem(str(tmp_path))


def test_missing_images_skipped_at_load(make_tipr, mm_records):
    root, _ = make_tipr('CUHKPEDES')
    os.remove(osp.join(root, 'imgs', 'CUHK03', '0001_b.jpg'))  # entry #1
    ds = CUHKPEDES(data_root=root, split='train', on_bad_sample='skip')
    # entry #1 had 2 of the 9 train captions
    assert len(ds) == 7
    assert ds.metainfo['num_skipped'] == 1
    assert ds.metainfo['num_images'] == 3
    assert ds.skipped[0].startswith(osp.join(root, 'reid_raw.json'))
    assert 'entry #1 (id=1)' in ds.skipped[0]
    assert any('skipped 1 bad samples' in m for m in messages(mm_records))
    assert all('CUHK03' not in ds.get_data_info(i)['img_path']
               for i in range(len(ds)))


# ----------------------------------------------------------------------
# annotation entries with on_bad_sample='skip'


def test_skip_bad_entries_and_captions(make_tipr, mm_records):
    entries = cuhk_entries()
    entries[0]['captions'] = ['A man in a black coat.', '   ', 7]
    del entries[3]['id']  # train entry of id 2
    entries.append('not an entry')
    root, _ = make_tipr('CUHKPEDES', entries)
    ds = CUHKPEDES(data_root=root, split='train', on_bad_sample='skip')
    captions = [ds.get_data_info(i)['caption'] for i in range(len(ds))]
    assert captions[0] == 'A man in a black coat.'
    assert 'A woman with a white hat.' not in captions  # entry #3 dropped
    assert len(ds) == 1 + 2 + 3
    assert ds.metainfo['num_skipped'] == 4
    reasons = '\n'.join(ds.skipped)
    assert 'entry #0' in reasons and 'caption 1 is empty' in reasons
    assert 'caption 2 must be a string' in reasons
    assert "entry #3 (file_path='cam_b/0002_a.jpg') lacks the field 'id'" in (
        reasons)
    assert 'entry #9 is a str' in reasons
    # pids are remapped over what is left: ids 1 and 3
    assert ds.metainfo['num_classes'] == 2
    assert any('skipped 4 bad samples' in m for m in messages(mm_records))


def test_error_mode_is_the_default(make_tipr):
    entries = cuhk_entries()
    entries[0]['captions'] = ['ok', '   ']
    root, _ = make_tipr('CUHKPEDES', entries)
    with pytest.raises(AnnotationError, match='entry #0 .*caption 1 is empty'):
        CUHKPEDES(data_root=root, split='train')


def test_split_emptied_by_skips_is_an_error(make_tipr):
    entries = cuhk_entries()
    for e in entries:
        if e['split'] == 'val':
            e['id'] = 'four'
    root, _ = make_tipr('CUHKPEDES', entries)
    with pytest.raises(AnnotationError) as err:
        CUHKPEDES(data_root=root, split='val', on_bad_sample='skip')
    msg = str(err.value)
    assert "split 'val' has no entries" in msg
    assert '2 bad entries were skipped' in msg


def test_bad_on_bad_sample_value(make_tipr):
    root, _ = make_tipr('CUHKPEDES')
    with pytest.raises(ValueError, match="on_bad_sample must be one of"):
        CUHKPEDES(data_root=root, on_bad_sample='ignore')


# ----------------------------------------------------------------------
# duplicates


def test_duplicated_entry_is_an_error(make_tipr):
    entries = cuhk_entries()
    entries.append(dict(entries[5]))  # entry #9 repeats entry #5
    root, _ = make_tipr('CUHKPEDES', entries)
    with pytest.raises(AnnotationError) as err:
        CUHKPEDES(data_root=root, split='train')
    msg = str(err.value)
    assert 'entry #9 repeats entry #5' in msg and 'CUHK01/0003_a.jpg' in msg
    assert osp.join(root, 'reid_raw.json') in msg
    ds = CUHKPEDES(data_root=root, split='train', on_bad_sample='skip')
    assert len(ds) == 9 and ds.metainfo['num_skipped'] == 1


def test_image_with_two_ids_is_skipped_when_asked(make_tipr):
    entries = cuhk_entries()
    entries.append(
        dict(split='test', captions=['x'], file_path='cam_a/0006_a.jpg', id=5))
    root, _ = make_tipr('CUHKPEDES', entries)
    ds = CUHKPEDES(data_root=root, split='test', on_bad_sample='skip')
    assert len(ds) == 3 + 6  # entry #9 dropped, the test split unchanged
    assert 'entry #9 gives image' in ds.skipped[0]


def test_repeated_image_with_new_captions_is_merged_and_logged(
        make_tipr, mm_records):
    entries = cuhk_entries()
    entries.append(
        dict(
            split='test',
            captions=['Another look at the child.'],
            file_path='cam_a/0006_a.jpg',
            id=6))
    root, _ = make_tipr('CUHKPEDES', entries)
    ds = CUHKPEDES(data_root=root, split='test')
    assert len(ds) == 3 + 7
    assert any('1 entries of split \'test\' repeat the image' in m
               for m in messages(mm_records))


# ----------------------------------------------------------------------
# encodings and text


def test_non_utf8_annotation_file(make_tipr):
    root, _ = make_tipr('CUHKPEDES')
    path = osp.join(root, 'reid_raw.json')
    text = open(path, encoding='utf-8').read()
    with open(path, 'wb') as f:
        f.write(text.encode('utf-16'))
    with pytest.raises(AnnotationError, match='not UTF-8') as err:
        CUHKPEDES(data_root=root)
    assert path in str(err.value)


def test_non_ascii_captions_tokenised(make_tipr):
    entries = cuhk_entries()
    entries[4]['captions'] = [
        'Ein Mann mit grüner Jacke, 日本語のキャプション.',
        'Émilie porte une écharpe — très longue.'
    ]
    root, _ = make_tipr('CUHKPEDES', entries)
    tokenize = dict(
        type='TokenizeCaption',
        tokenizer=dict(type='OpenCLIPTokenizer', context_length=32))
    ds = CUHKPEDES(
        data_root=root,
        split='test',
        pipeline=PIPELINE,
        text_pipeline=[tokenize])
    out = ds[3]  # the first caption
    assert out['data_samples'].caption == entries[4]['captions'][0]
    ids = out['inputs']['texts']
    assert ids[0] == 49406 and (ids == 49407).sum() == 1
    tokenizer = TRANSFORMS.build(tokenize).tokenizer
    decoded = tokenizer.decode(ids[1:int((ids == 49407).nonzero())].tolist())
    assert 'grüner' in decoded and '日本語' in decoded


def test_long_caption_counted_logged_truncated(make_tipr, mm_records):
    entries = cuhk_entries()
    long_caption = ' '.join(['a person in a long red coat'] * 20)
    entries[6]['captions'] = [long_caption, 'short.']  # val, caption 2
    root, _ = make_tipr('CUHKPEDES', entries)
    ds = TextImageDataset(
        data_root=root,
        ann_file='reid_raw.json',
        split='val',
        text_pipeline=[
            dict(
                type='TokenizeCaption',
                tokenizer=dict(type='OpenCLIPTokenizer', context_length=16))
        ])
    outs = [ds[i] for i in range(2, len(ds))]  # the text items
    texts = torch.stack([o['inputs']['texts'] for o in outs])
    assert texts.shape == (4, 16)
    assert texts[2, -1] == 49407  # cut, with the end token kept
    tokenize = ds.text_pipeline.transforms[0]
    assert tokenize.num_truncated == 1 and tokenize.num_seen == 4
    logged = [m for m in messages(mm_records) if 'truncated' in m]
    assert len(logged) == 1 and 'caption 2 has' in logged[0]
    assert '> context length 16' in logged[0]
