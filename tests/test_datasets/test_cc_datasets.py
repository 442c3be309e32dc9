"""Cloth-changing datasets (PRCC, LTCC, VC-Clothes, DeepChange) on tiny fake
folder trees in each real layout: parsed labels, relabelling, pid2clothes,
masks, error messages and counted skips."""
import logging
import os
import os.path as osp
import re

import cv2
import numpy as np
import pytest

from mmreid_clip.datasets import (LTCC, PRCC, AnnotationError, DeepChange,
                                  VCClothes)
from mmreid_clip.registry import DATASETS

_counter = [0]


def _image(path, mask=False):
    """Write an 8 x 4 image (or a uint8 label map) at ``path``."""
    os.makedirs(osp.dirname(path), exist_ok=True)
    _counter[0] += 1
    if mask:
        arr = np.full((8, 4), 5, np.uint8)
        arr[:2] = 2
    else:
        arr = np.full((8, 4, 3), _counter[0] % 256, np.uint8)
        arr[..., 2] = 200
    assert cv2.imwrite(path, arr)


def _tree(root, files, with_masks=None):
    """``files``: paths relative to ``root``; ``with_masks``: a function
    mapping a relative image path to its relative mask path."""
    for rel in files:
        _image(osp.join(root, rel))
        if with_masks is not None:
            _image(osp.join(root, with_masks(rel)), mask=True)
    return root


def _items(ds):
    return [ds.get_data_info(i) for i in range(len(ds))]


def _rows(ds, *keys):
    return [tuple(it[k] for k in keys) for it in _items(ds)]


def _png_mask(folder_suffix='-mask'):

    def f(rel):
        folder, name = rel.split('/', 1)
        return f'{folder}{folder_suffix}/{osp.splitext(name)[0]}.png'

    return f


# ---------------------------------------------------------------------------
# LTCC

LTCC_FILES = [
    'train/001_1_c1_000001.png',
    'train/001_1_c2_000002.png',
    'train/001_2_c11_000003.png',
    'train/005_1_c1_000010.png',
    'query/010_1_c1_000001.png',
    'test/010_1_c2_000002.png',
    'test/010_2_c3_000003.png',
    'test/011_1_c4_000004.png',
]


@pytest.fixture
def ltcc(tmp_path):
    root = _tree(str(tmp_path / 'LTCC_ReID'), LTCC_FILES, _png_mask())
    # not images: ignored
    (tmp_path / 'LTCC_ReID' / 'train' / 'Thumbs.db').write_bytes(b'x')
    (tmp_path / 'LTCC_ReID' / 'test' / 'notes.txt').write_text('x')
    return root


def test_ltcc_train(ltcc):
    ds = LTCC(data_root=ltcc, split='train')
    assert _rows(ds, 'pid', 'camid', 'clothes_id', 'subset') == [
        (0, 1, 0, 'train'),
        (0, 2, 0, 'train'),
        (0, 11, 1, 'train'),
        (1, 1, 2, 'train'),
    ]
    first = ds.get_data_info(0)
    assert first['img_path'] == osp.join(ltcc, 'train', '001_1_c1_000001.png')
    assert osp.isabs(first['img_path'])
    assert first['mask_path'] is None
    meta = ds.metainfo
    assert meta['num_pids'] == 2 and meta['num_clothes'] == 3
    assert meta['pid2clothes'].dtype == bool
    np.testing.assert_array_equal(meta['pid2clothes'],
                                  [[True, True, False], [False, False, True]])
    assert meta['num_skipped'] == {}
    assert not ds.test_mode
    np.testing.assert_array_equal(ds.get_pids(), [0, 0, 0, 1])
    assert ds.get_cat_ids(3) == [1]


def test_ltcc_test_split_query_then_gallery(ltcc):
    ds = LTCC(data_root=ltcc, split='test')
    # dataset ids; clothes strings 010_1, 010_2, 011_1 -> 0, 1, 2
    assert _rows(ds, 'pid', 'camid', 'clothes_id', 'subset') == [
        (10, 1, 0, 'query'),
        (10, 2, 0, 'gallery'),
        (10, 3, 1, 'gallery'),
        (11, 4, 2, 'gallery'),
    ]
    assert ds.test_mode
    meta = ds.metainfo
    assert meta['subset_sizes'] == {'query': 1, 'gallery': 3}
    assert meta['num_identities'] == 2
    assert 'pid2clothes' not in meta and 'num_pids' not in meta


def test_ltcc_masks(ltcc):
    ds = LTCC(data_root=ltcc, split='test', with_mask=True)
    assert [
        osp.relpath(p, ltcc) for p in (it['mask_path'] for it in _items(ds))
    ] == [
        'query-mask/010_1_c1_000001.png', 'test-mask/010_1_c2_000002.png',
        'test-mask/010_2_c3_000003.png', 'test-mask/011_1_c4_000004.png'
    ]
    # a mask elsewhere: absolute template
    other = osp.join(osp.dirname(ltcc), 'parsing')
    for name in ('001_1_c1_000001', '001_1_c2_000002', '001_2_c11_000003',
                 '005_1_c1_000010'):
        _image(osp.join(other, 'train', name + '.png'), mask=True)
    ds = LTCC(
        data_root=ltcc,
        split='train',
        with_mask=True,
        mask_dir=osp.join(other, '{folder}'))
    assert ds.get_data_info(3)['mask_path'] == osp.join(
        other, 'train', '005_1_c1_000010.png')


def test_ltcc_missing_mask(ltcc):
    missing = osp.join(ltcc, 'train-mask', '001_2_c11_000003.png')
    os.remove(missing)
    with pytest.raises(FileNotFoundError) as e:
        LTCC(data_root=ltcc, split='train', with_mask=True)
    assert missing in str(e.value)
    assert osp.join(ltcc, 'train', '001_2_c11_000003.png') in str(e.value)
    # without masks nothing is needed
    assert len(LTCC(data_root=ltcc, split='train')) == 4
    # skipped and counted on request
    ds = LTCC(
        data_root=ltcc, split='train', with_mask=True, on_bad_sample='skip')
    assert len(ds) == 3
    assert ds.metainfo['num_skipped'] == {'missing mask': 1}
    # the skipped image took its clothes id with it: 001_2 no longer exists
    assert ds.metainfo['num_clothes'] == 2


def test_ltcc_missing_folders(ltcc, tmp_path):
    import shutil
    shutil.rmtree(osp.join(ltcc, 'query-mask'))
    with pytest.raises(
            FileNotFoundError, match=re.escape(osp.join(ltcc, 'query-mask'))):
        LTCC(data_root=ltcc, split='test', with_mask=True)
    # a missing mask folder is never skipped
    with pytest.raises(FileNotFoundError, match='mask folder'):
        LTCC(
            data_root=ltcc, split='test', with_mask=True, on_bad_sample='skip')
    shutil.rmtree(osp.join(ltcc, 'query'))
    with pytest.raises(FileNotFoundError) as e:
        LTCC(data_root=ltcc, split='test')
    assert osp.join(ltcc, 'query') in str(e.value)
    assert 'PPP_C_cKK_FFFFFF' in str(e.value)
    with pytest.raises(FileNotFoundError, match='does not exist'):
        LTCC(data_root=str(tmp_path / 'nowhere'), split='train')


def test_ltcc_unparseable_name(ltcc, mm_records):
    bad = osp.join(ltcc, 'train', 'img_0001.png')
    _image(bad)
    with pytest.raises(AnnotationError) as e:
        LTCC(data_root=ltcc, split='train')
    msg = str(e.value)
    assert bad in msg and 'PPP_C_cKK_FFFFFF.png' in msg
    assert "on_bad_sample='skip'" in msg
    # an image-extension file is never silently ignored: upper case too
    os.remove(bad)
    bad = osp.join(ltcc, 'train', 'IMG_0002.PNG')
    _image(bad)
    with pytest.raises(AnnotationError, match=re.escape(bad)):
        LTCC(data_root=ltcc, split='train')
    _image(osp.join(ltcc, 'train', 'x_1_c2_000001.jpg'))
    ds = LTCC(data_root=ltcc, split='train', on_bad_sample='skip')
    assert len(ds) == 4
    assert ds.metainfo['num_skipped'] == {'unparseable file names': 2}
    warnings = [
        r.getMessage() for r in mm_records if r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1
    assert 'skipped 2 bad samples' in warnings[0]
    assert 'IMG_0002.PNG' in warnings[0]


def test_ltcc_nested_folder_is_not_dropped_silently(ltcc):
    nested = osp.join(ltcc, 'train', 'train')
    _image(osp.join(nested, '002_1_c1_000001.png'))
    with pytest.raises(AnnotationError) as e:
        LTCC(data_root=ltcc, split='train')
    assert nested in str(e.value) and 'only image files' in str(e.value)
    ds = LTCC(data_root=ltcc, split='train', on_bad_sample='skip')
    assert len(ds) == 4
    assert ds.metainfo['num_skipped'] == {'unexpected folders': 1}


def test_bad_arguments(ltcc):
    with pytest.raises(ValueError, match="no 'val' split"):
        LTCC(data_root=ltcc, split='val')
    with pytest.raises(ValueError, match='on_bad_sample'):
        LTCC(data_root=ltcc, on_bad_sample='ignore')
    with pytest.raises(ValueError, match='data_root'):
        LTCC(data_root='')
    # one template for query/ and test/ would mix their masks
    with pytest.raises(ValueError, match='{folder}'):
        LTCC(data_root=ltcc, split='test', with_mask=True, mask_dir='masks')


def test_lazy_init_pipeline_registry_and_subset(ltcc):
    ds = DATASETS.build(
        dict(
            type='LTCC',
            data_root=ltcc,
            split='train',
            with_mask=True,
            lazy_init=True,
            pipeline=[dict(type='LoadImageFromFile')]))
    assert not ds._fully_initialized
    out = ds[1]
    assert out['img'].shape == (8, 4, 3) and out['img'].dtype == np.uint8
    assert out['pid'] == 0 and out['camid'] == 2
    assert out['mask_path'].endswith('train-mask/001_1_c2_000002.png')
    sub = ds.get_subset([3, 0])
    np.testing.assert_array_equal(sub.get_pids(), [1, 0])
    # the metainfo of the whole split stays (the model's class count)
    assert sub.metainfo['num_pids'] == 2


def test_identity_sampler_reads_pids(ltcc):
    from mmreid_clip.datasets.samplers.identity_sampler import dataset_pids
    ds = LTCC(data_root=ltcc, split='train')
    np.testing.assert_array_equal(dataset_pids(ds), [0, 0, 0, 1])


# ---------------------------------------------------------------------------
# PRCC

PRCC_FILES = [
    'rgb/train/001/A_cropped_rgb001.jpg',
    'rgb/train/001/B_cropped_rgb002.jpg',
    'rgb/train/001/C_cropped_rgb003.jpg',
    'rgb/train/003/A_cropped_rgb001.jpg',
    'rgb/train/003/C_cropped_rgb005.jpg',
    'rgb/val/002/B_cropped_rgb001.jpg',
    'rgb/val/002/C_cropped_rgb002.jpg',
    'rgb/test/A/010/cropped_rgb001.jpg',
    'rgb/test/A/011/cropped_rgb001.jpg',
    'rgb/test/B/010/cropped_rgb002.jpg',
    'rgb/test/C/010/cropped_rgb003.jpg',
    'rgb/test/C/011/cropped_rgb004.jpg',
]


def _prcc_mask(rel):
    return 'mask/' + osp.splitext(rel[len('rgb/'):])[0] + '.png'


@pytest.fixture
def prcc(tmp_path):
    root = _tree(str(tmp_path / 'prcc'), PRCC_FILES, _prcc_mask)
    (tmp_path / 'prcc' / 'rgb' / 'train' / '001' / 'Thumbs.db').write_text('')
    os.makedirs(tmp_path / 'prcc' / 'sketch' / 'train')  # not read
    return root


def test_prcc_train_and_val(prcc):
    ds = PRCC(data_root=prcc, split='train', with_mask=True)
    # clothes strings 001, 001C, 003, 003C; cameras A, B, C -> 0, 1, 2
    assert _rows(ds, 'pid', 'camid', 'clothes_id', 'subset') == [
        (0, 0, 0, 'train'),
        (0, 1, 0, 'train'),
        (0, 2, 1, 'train'),
        (1, 0, 2, 'train'),
        (1, 2, 3, 'train'),
    ]
    np.testing.assert_array_equal(
        ds.metainfo['pid2clothes'],
        [[True, True, False, False], [False, False, True, True]])
    assert ds.get_data_info(2)['mask_path'] == osp.join(
        prcc, 'mask', 'train', '001', 'C_cropped_rgb003.png')
    val = PRCC(data_root=prcc, split='val')
    assert _rows(val, 'pid', 'camid', 'clothes_id',
                 'subset') == [(0, 1, 0, 'val'), (0, 2, 1, 'val')]
    assert val.metainfo['num_pids'] == 1 and not val.test_mode


def test_prcc_test_split(prcc):
    ds = PRCC(data_root=prcc, split='test', with_mask=True)
    # B (same-clothes queries), then C (cloth-changing queries), then A;
    # clothes strings 010, 010C, 011, 011C -> 0, 1, 2, 3
    assert _rows(ds, 'pid', 'camid', 'clothes_id', 'subset') == [
        (10, 1, 0, 'query_sc'),
        (10, 2, 1, 'query_cc'),
        (11, 2, 3, 'query_cc'),
        (10, 0, 0, 'gallery'),
        (11, 0, 2, 'gallery'),
    ]
    assert ds.get_data_info(0)['img_path'] == osp.join(prcc, 'rgb', 'test',
                                                       'B', '010',
                                                       'cropped_rgb002.jpg')
    assert ds.get_data_info(0)['mask_path'] == osp.join(
        prcc, 'mask', 'test', 'B', '010', 'cropped_rgb002.png')
    assert ds.metainfo['subset_sizes'] == {
        'query_sc': 1,
        'query_cc': 2,
        'gallery': 2
    }


def test_prcc_errors(prcc):
    bad = osp.join(prcc, 'rgb', 'train', '003', 'D_cropped_rgb009.jpg')
    _image(bad)
    with pytest.raises(AnnotationError) as e:
        PRCC(data_root=prcc, split='train')
    assert bad in str(e.value) and 'A, B or C' in str(e.value)
    os.remove(bad)

    stray = osp.join(prcc, 'rgb', 'train', 'A_0001.jpg')
    _image(stray)
    with pytest.raises(AnnotationError, match=re.escape(stray)):
        PRCC(data_root=prcc, split='train')
    os.remove(stray)
    folder = osp.join(prcc, 'rgb', 'train', 'extra')
    _image(osp.join(folder, 'A_1.jpg'))
    with pytest.raises(AnnotationError) as e:
        PRCC(data_root=prcc, split='train')
    assert folder in str(e.value) and 'numeric <pid> folders' in str(e.value)
    _image(stray)
    ds = PRCC(data_root=prcc, split='train', on_bad_sample='skip')
    assert len(ds) == 5
    assert ds.metainfo['num_skipped'] == {
        'misplaced images': 1,
        'unexpected folders': 1
    }

    os.remove(osp.join(prcc, 'mask', 'test', 'A', '011', 'cropped_rgb001.png'))
    with pytest.raises(
            FileNotFoundError,
            match=re.escape(
                osp.join(prcc, 'mask', 'test', 'A', '011',
                         'cropped_rgb001.png'))):
        PRCC(data_root=prcc, split='test', with_mask=True)

    import shutil
    shutil.rmtree(osp.join(prcc, 'rgb', 'test', 'B'))
    with pytest.raises(
            FileNotFoundError,
            match=re.escape(osp.join(prcc, 'rgb', 'test', 'B'))):
        PRCC(data_root=prcc, split='test')


# ---------------------------------------------------------------------------
# VC-Clothes

VC_FILES = [
    'train/0001-01-01-01.jpg',
    'train/0001-03-02-01.jpg',
    'train/0002-02-01-01.jpg',
    'query/0010-03-01-01.jpg',
    'gallery/0010-02-01-02.jpg',
    'gallery/0010-04-02-01.jpg',
    'gallery/0011-01-01-01.jpg',
]


@pytest.fixture
def vcc(tmp_path):
    return _tree(str(tmp_path / 'VC-Clothes'), VC_FILES, _png_mask())


def test_vc_clothes(vcc):
    ds = VCClothes(data_root=vcc, split='train', with_mask=True)
    # camid is the camera number of the name; clothes = pid + outfit
    assert _rows(ds, 'pid', 'camid', 'clothes_id', 'subset') == [
        (0, 1, 0, 'train'),
        (0, 3, 1, 'train'),
        (1, 2, 2, 'train'),
    ]
    assert ds.get_data_info(1)['mask_path'] == osp.join(
        vcc, 'train-mask', '0001-03-02-01.png')
    np.testing.assert_array_equal(ds.metainfo['pid2clothes'],
                                  [[True, True, False], [False, False, True]])
    test = VCClothes(data_root=vcc, split='test')
    assert _rows(test, 'pid', 'camid', 'clothes_id', 'subset') == [
        (10, 3, 0, 'query'),
        (10, 2, 0, 'gallery'),
        (10, 4, 1, 'gallery'),
        (11, 1, 2, 'gallery'),
    ]
    bad = osp.join(vcc, 'gallery', '0012_01_01_01.jpg')
    _image(bad)
    with pytest.raises(AnnotationError) as e:
        VCClothes(data_root=vcc, split='test')
    assert bad in str(e.value) and 'PPPP-CC-OO-NN' in str(e.value)
    skipped = VCClothes(data_root=vcc, split='test', on_bad_sample='skip')
    assert len(skipped) == 4
    assert skipped.metainfo['num_skipped'] == {'unparseable file names': 1}


# ---------------------------------------------------------------------------
# DeepChange

DC_LISTS = {
    'train-set':
    [('P0003_C02_D01_F0001.jpg', 7), ('P0003_C05_D02_F0002.jpg', 8),
     ('P0001_C01_D01_F0003.jpg', 2)],
    'val-set-query': [('P0100_C01_D03_F0001.jpg', 1)],
    'val-set-gallery': [('P0100_C01_D04_F0002.jpg', 2)],
    'test-set-query': [('P0200_C03_D01_F0001.jpg', 11)],
    'test-set-gallery': [('P0200_C03_D01_F0002.jpg', 12),
                         ('P0200_C04_D05_F0003.jpg', 13),
                         ('P0201_C01_D01_F0004.jpg', 14)],
}


def _write_deepchange(root, lists):
    for folder, entries in lists.items():
        for name, _ in entries:
            _image(osp.join(root, folder, name))
            _image(
                osp.join(root, f'{folder}-mask',
                         osp.splitext(name)[0] + '.png'),
                mask=True)
        with open(osp.join(root, f'{folder}-bbox.txt'), 'w') as f:
            f.write(''.join(f'{n},{t}\n' for n, t in entries))
    return root


@pytest.fixture
def deepchange(tmp_path):
    root = _write_deepchange(str(tmp_path / 'DeepChangeDataset'), DC_LISTS)
    # an image the list does not name is not read
    _image(osp.join(root, 'train-set', 'P0009_C01_D01_F0009.jpg'))
    return root


def test_deepchange_splits(deepchange):
    ds = DeepChange(data_root=deepchange, split='train', with_mask=True)
    # list order; pseudo clothes P0001_D01, P0003_D01, P0003_D02
    assert _rows(ds, 'pid', 'camid', 'clothes_id', 'tracklet_id',
                 'subset') == [
                     (1, 2, 1, 7, 'train'),
                     (1, 5, 2, 8, 'train'),
                     (0, 1, 0, 2, 'train'),
                 ]
    assert ds.get_data_info(0)['mask_path'] == osp.join(
        deepchange, 'train-set-mask', 'P0003_C02_D01_F0001.png')
    np.testing.assert_array_equal(ds.metainfo['pid2clothes'],
                                  [[True, False, False], [False, True, True]])
    val = DeepChange(data_root=deepchange, split='val')
    assert _rows(val, 'pid', 'camid', 'clothes_id', 'tracklet_id',
                 'subset') == [(100, 1, 0, 1, 'query'),
                               (100, 1, 1, 2, 'gallery')]
    test = DeepChange(data_root=deepchange, split='test', with_mask=True)
    assert _rows(test, 'pid', 'camid', 'clothes_id', 'tracklet_id',
                 'subset') == [
                     (200, 3, 0, 11, 'query'),
                     (200, 3, 0, 12, 'gallery'),
                     (200, 4, 1, 13, 'gallery'),
                     (201, 1, 2, 14, 'gallery'),
                 ]
    assert test.get_data_info(3)['mask_path'] == osp.join(
        deepchange, 'test-set-gallery-mask', 'P0201_C01_D01_F0004.png')


def test_deepchange_errors(deepchange):
    list_file = osp.join(deepchange, 'train-set-bbox.txt')
    with open(list_file, 'a') as f:
        f.write('P0004_C01_D01_F0001.jpg\n')  # no tracklet id
        f.write('\n')  # blank lines are fine
        f.write('frame0001.jpg,3\n')  # unparseable name
        f.write('P0004_C01_D01_F0009.jpg,3\n')  # listed, not on disk
    with pytest.raises(AnnotationError) as e:
        DeepChange(data_root=deepchange, split='train')
    assert f'{list_file}, line 4' in str(e.value)
    assert 'filename,tracklet_id' in str(e.value)
    ds = DeepChange(data_root=deepchange, split='train', on_bad_sample='skip')
    assert len(ds) == 3
    assert ds.metainfo['num_skipped'] == {
        'malformed list lines': 1,
        'unparseable file names': 1,
        'missing images': 1
    }
    with open(list_file, 'w') as f:
        f.write('frame0001.jpg,3\n')
    with pytest.raises(
            AnnotationError, match="'frame0001.jpg'.*<letter><pid>"):
        DeepChange(data_root=deepchange, split='train')
    with open(list_file, 'w') as f:
        f.write('P0004_C01_D01_F0009.jpg,3\n')
    with pytest.raises(
            FileNotFoundError,
            match=re.escape(
                osp.join(deepchange, 'train-set', 'P0004_C01_D01_F0009.jpg'))):
        DeepChange(data_root=deepchange, split='train')
    os.remove(osp.join(deepchange, 'test-set-gallery-bbox.txt'))
    with pytest.raises(
            FileNotFoundError,
            match=re.escape(osp.join(deepchange,
                                     'test-set-gallery-bbox.txt'))):
        DeepChange(data_root=deepchange, split='test')
