"""Bad dataset inputs give a named error or a counted skip, never a silent
wrong result (docs/reliability.md, sections 1 and 2)."""
import json
import os
import os.path as osp
import struct
import tempfile
import zlib

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from helpers.tipr_fixtures import write_jpeg

from mmreid_clip.datasets import LTCC, TextImageDataset
from mmreid_clip.datasets.text_image_dataset import (AnnotationError,
                                                     BadImageError)
from mmreid_clip.datasets.transforms import (ImageTooLargeError,
                                             LoadImageFromFile)
from mmreid_clip.registry import TRANSFORMS

FUZZ = settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None,
    derandomize=True)


def _tipr(root, entries, **kwargs):
    os.makedirs(root, exist_ok=True)
    with open(osp.join(root, 'ann.json'), 'w') as f:
        json.dump(entries, f)
    kwargs.setdefault('check_files', False)
    return TextImageDataset(
        data_root=root, ann_file='ann.json', serialize_data=False, **kwargs)


def _entry(path, pid=1, split='train', captions=('a man in red', )):
    return dict(split=split, captions=list(captions), file_path=path, id=pid)


# ----------------------------------------------------------------------
# image paths are confined to the image folder


@pytest.mark.parametrize('path', ['../secret.jpg', 'a/../../secret.jpg',
                                  '/etc/passwd', '..'])
def test_paths_outside_the_image_folder_are_refused(tmp_path, path):
    root = str(tmp_path / 'data')
    entries = [_entry('ok.jpg'), _entry(path, pid=2)]
    with pytest.raises(AnnotationError,
                       match=r'entry #1 .*points outside the image folder '
                       r'.*allow_outside_root=True'):
        _tipr(root, entries)
    ds = _tipr(root, entries, on_bad_sample='skip')
    assert ds.metainfo['num_skipped'] == 1
    assert [it['img_path'] for it in map(ds.get_data_info, range(len(ds)))
            ] == [osp.join(root, 'imgs', 'ok.jpg')]


def test_allow_outside_root_reads_elsewhere(tmp_path):
    elsewhere = str(tmp_path / 'elsewhere' / 'p.jpg')
    write_jpeg(elsewhere)
    root = str(tmp_path / 'data')
    ds = _tipr(root, [_entry(elsewhere)], allow_outside_root=True,
               check_files=True)
    assert ds.get_data_info(0)['img_path'] == elsewhere


@FUZZ
@given(spellings=st.lists(
    st.sampled_from(['a/b.jpg', 'a/./b.jpg', './a/b.jpg', 'a//b.jpg',
                     'a/c/../b.jpg', 'a/b.jpg/.']),
    min_size=2, max_size=5))
def test_one_image_under_several_spellings_is_one_image(spellings):
    entries = [
        _entry(p, split='test', captions=[f'caption {i}'])
        for i, p in enumerate(spellings)
    ]
    with tempfile.TemporaryDirectory() as root:
        ds = _tipr(root, entries, split='test')
        images = [
            it for it in map(ds.get_data_info, range(len(ds)))
            if 'img_path' in it
        ]
    assert [it['img_path'] for it in images] == [
        osp.join(root, 'imgs', 'a', 'b.jpg')
    ]
    assert ds.metainfo['num_captions'] == len(spellings)


# ----------------------------------------------------------------------
# annotation files that used to escape the checks


def test_deeply_nested_json_is_an_annotation_error(tmp_path):
    path = tmp_path / 'ann.json'
    path.write_text('[' * 200000 + ']' * 200000)
    with pytest.raises(AnnotationError, match='nested too deeply'):
        TextImageDataset(data_root=str(tmp_path), ann_file='ann.json',
                         check_files=False)


@FUZZ
@given(pid=st.one_of(st.integers(), st.integers(2**62, 2**70),
                     st.integers(-2**70, -2**62)),
       split=st.sampled_from(['train', 'test']))
def test_any_integer_id_loads_or_names_the_entry(pid, split):
    with tempfile.TemporaryDirectory() as root:
        try:
            ds = _tipr(root, [_entry('a.jpg', pid=pid, split=split)],
                       split=split)
        except AnnotationError as err:
            assert not -2**63 <= pid < 2**63
            assert 'entry #0' in str(err) and 'out of range' in str(err)
            return
        assert -2**63 <= pid < 2**63
        assert len(ds.get_pids()) >= 1


# ----------------------------------------------------------------------
# LTCC names and cloth-changing images


def _png(path, value=0):
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(path, np.full((16, 8, 3), value, np.uint8))


@pytest.fixture
def ltcc(tmp_path):
    root = str(tmp_path / 'LTCC_ReID')
    for name in ('001_1_c1_000001.png', '001_2_c2_000002.png',
                 '002_1_c3_000003.png'):
        _png(osp.join(root, 'train', name))
    return root


def test_ltcc_copy_of_an_image_is_not_a_new_outfit(ltcc):
    _png(osp.join(ltcc, 'train', '001_1_c1_000001_copy.png'))
    with pytest.raises(AnnotationError,
                       match=r'001_1_c1_000001_copy\.png.*PPP_C_cKK_FFFFFF'):
        LTCC(data_root=ltcc, split='train')
    ds = LTCC(data_root=ltcc, split='train', on_bad_sample='skip')
    assert ds.metainfo['num_clothes'] == 3  # 001_1, 001_2, 002_1
    assert ds.metainfo['num_skipped'] == {'unparseable file names': 1}


@pytest.mark.parametrize('content', [b'', b'\x89PNG\r\n\x1a\n broken'])
def test_cloth_changing_bad_image_is_named(ltcc, content):
    bad = osp.join(ltcc, 'train', '002_1_c3_000003.png')
    with open(bad, 'wb') as f:
        f.write(content)
    pipeline = [dict(type='LoadImageFromFile')]
    ds = LTCC(data_root=ltcc, split='train', pipeline=pipeline)
    idx = [ds.get_data_info(i)['img_path'] for i in range(len(ds))].index(bad)
    with pytest.raises(BadImageError, match=r'LTCC train: item \d .*' +
                       bad.replace('.', r'\.')):
        ds.prepare_data(idx)
    skipping = LTCC(data_root=ltcc, split='train', pipeline=pipeline,
                    on_bad_sample='skip')
    assert skipping.prepare_data(idx) is None
    assert skipping.num_bad_images == 1
    assert skipping.prepare_data(0)['img'].shape == (16, 8, 3)


# ----------------------------------------------------------------------
# the pixel limit


def _png_header(width: int, height: int) -> bytes:
    """A PNG whose header announces ``width x height`` (a decompression
    bomb's first bytes; the pixel data is not needed to read the size)."""

    def chunk(kind, data):
        return (struct.pack('>I', len(data)) + kind + data +
                struct.pack('>I', zlib.crc32(kind + data) & 0xffffffff))

    ihdr = struct.pack('>IIBBBBB', width, height, 8, 2, 0, 0, 0)
    return (b'\x89PNG\r\n\x1a\n' + chunk(b'IHDR', ihdr) +
            chunk(b'IDAT', zlib.compress(b'\x00' * 64)) + chunk(b'IEND', b''))


def test_pipelines_get_the_pixel_limited_loader():
    assert type(TRANSFORMS.build(dict(type='LoadImageFromFile'))) is \
        LoadImageFromFile


def test_huge_image_is_refused_before_decoding(tmp_path, monkeypatch):
    bomb = str(tmp_path / 'bomb.png')
    with open(bomb, 'wb') as f:
        f.write(_png_header(20000, 20000))
    load = TRANSFORMS.build(dict(type='LoadImageFromFile'))
    with pytest.raises(ImageTooLargeError,
                       match=r'bomb\.png is 20000 x 20000 = 400,000,000 '
                       r'pixels .*MMREID_MAX_IMAGE_PIXELS'):
        load(dict(img_path=bomb))
    # configurable: in the pipeline, or for every loader by the variable
    small = str(tmp_path / 'small.png')
    _png(small)
    with pytest.raises(ImageTooLargeError, match='over the limit of 100'):
        LoadImageFromFile(max_pixels=100)(dict(img_path=small))
    monkeypatch.setenv('MMREID_MAX_IMAGE_PIXELS', '100')
    with pytest.raises(ImageTooLargeError):
        load(dict(img_path=small))
    monkeypatch.setenv('MMREID_MAX_IMAGE_PIXELS', 'lots')
    with pytest.raises(ValueError, match='MMREID_MAX_IMAGE_PIXELS'):
        load(dict(img_path=small))
    monkeypatch.delenv('MMREID_MAX_IMAGE_PIXELS')
    assert load(dict(img_path=small))['img'].shape == (16, 8, 3)


def test_huge_image_in_a_dataset_is_a_named_bad_image(tmp_path):
    root = str(tmp_path / 'data')
    write_jpeg(osp.join(root, 'imgs', 'ok.jpg'))
    os.makedirs(osp.join(root, 'imgs'), exist_ok=True)
    with open(osp.join(root, 'imgs', 'bomb.png'), 'wb') as f:
        f.write(_png_header(20000, 20000))
    entries = [_entry('ok.jpg'), _entry('bomb.png', pid=2)]
    ds = _tipr(root, entries, pipeline=[dict(type='LoadImageFromFile')])
    with pytest.raises(BadImageError, match=r'bomb\.png.*400,000,000'):
        ds.prepare_data(1)


# ----------------------------------------------------------------------
# identity classifiers against the training set


class _Runner:
    """What NumClassesCheckHook reads of a Runner."""

    def __init__(self, model, dataset):
        from types import SimpleNamespace
        self.model = model
        self.train_dataloader = SimpleNamespace(dataset=dataset)


@pytest.mark.parametrize('num_classes', [2, 3, 5, 40])
def test_num_classes_must_equal_the_training_identities(
        tmp_path, num_classes):
    import torch.nn as nn

    from mmreid_clip.engine.hooks import NumClassesCheckHook
    from mmreid_clip.registry import HOOKS, MODELS
    dataset = _tipr(str(tmp_path / 'data'),
                    [_entry(f'{i}.jpg', pid=10 + i) for i in range(3)])
    assert dataset.metainfo['num_classes'] == 3
    model = nn.Module()
    model.id_head = MODELS.build(
        dict(type='SharedIDHead', in_channels=8, num_classes=num_classes))
    hook = HOOKS.build(dict(type='NumClassesCheckHook'))
    assert isinstance(hook, NumClassesCheckHook)
    if num_classes == 3:
        hook.before_train(_Runner(model, dataset))
        return
    with pytest.raises(ValueError,
                       match=rf'model\.id_head\.num_classes={num_classes} but '
                       r'the training set \(TextImageDataset.*\) has 3 '
                       r'identities; set model\.id_head\.num_classes=3'):
        hook.before_train(_Runner(model, dataset))


def test_default_runtime_checks_num_classes():
    from mmengine.config import Config
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(
        osp.join(root, 'configs/baselines/clip-baseline_synthpedes-tiny.py'))
    assert cfg.default_hooks.num_classes_check.type == 'NumClassesCheckHook'


# ----------------------------------------------------------------------
# configs' datasets build outside a Runner (no default scope)


def test_ltcc_training_config_builds_without_a_default_scope(
        ltcc, monkeypatch):
    """mmcv's TransformBroadcaster builds its inner RandomErasing through
    the default scope; without one (a dataset built outside a Runner) it
    used to look in mmengine's registry and fail."""
    import collections

    from mmengine.config import Config
    from mmengine.registry import DefaultScope

    from mmreid_clip.registry import DATASETS
    for name in os.listdir(osp.join(ltcc, 'train')):
        mask = osp.join(ltcc, 'train-mask', name)
        os.makedirs(osp.dirname(mask), exist_ok=True)
        cv2.imwrite(mask, np.full((16, 8), 5, np.uint8))
    root = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
    cfg = Config.fromfile(osp.join(root, 'configs/ccaf/ccaf_vit-b16_ltcc.py'))
    dataset_cfg = cfg.train_dataloader.dataset
    dataset_cfg.data_root = ltcc
    monkeypatch.setattr(DefaultScope, '_instance_dict',
                        collections.OrderedDict())
    assert DefaultScope.get_current_instance() is None
    dataset = DATASETS.build(dataset_cfg)
    sample = dataset[0]
    assert tuple(sample['inputs']['images'].shape[-2:]) == (256, 128)
    assert DefaultScope.get_current_instance() is None


def test_list_file_paths_outside_the_dataset_are_refused(tmp_path):
    """MSMT17's (and DeepChange's) list files name image paths; one that
    climbs out of the image folder is named, never read."""
    from helpers.std_reid_fixtures import write_msmt17

    from mmreid_clip.datasets import MSMT17
    root = write_msmt17(str(tmp_path / 'MSMT17_V1'))
    name = '0001_000_15_0303afternoon_0421_0.jpg'  # a valid MSMT17 name
    _png(str(tmp_path / 'elsewhere' / name))
    with open(osp.join(root, 'list_train.txt'), 'a') as f:
        f.write(f'../../elsewhere/{name} 1\n')
    with pytest.raises(AnnotationError,
                       match=r'list_train\.txt, line \d+: '
                       r"'\.\./\.\./elsewhere/.*' points outside"):
        MSMT17(data_root=root, split='train')
    ds = MSMT17(data_root=root, split='train', on_bad_sample='skip')
    assert ds.metainfo['num_skipped']['paths outside the dataset'] == 1
    assert all(str(tmp_path / 'elsewhere') not in ds.get_data_info(i)[
        'img_path'] for i in range(len(ds)))
