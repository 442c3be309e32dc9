"""Market-1501, DukeMTMC-reID, Occluded-Duke and MSMT17 on tiny trees in
each real layout: parsed labels, relabelling, 0-based cameras, junk and
distractors, the count check against the full release, and errors on bad
input."""
import logging
import os
import os.path as osp
import re

import numpy as np
import pytest
from helpers.std_reid_fixtures import (DUKE_FILES, MARKET_COUNTS,
                                       MSMT_LISTS, write_image,
                                       write_market_layout, write_msmt17)

from mmreid_clip.datasets import (MSMT17, AnnotationError, CountMismatchError,
                                  DukeMTMCReID, Market1501, OccludedDuke)
from mmreid_clip.registry import DATASETS


def _items(ds):
    return [ds.get_data_info(i) for i in range(len(ds))]


def _rows(ds, *keys):
    return [tuple(it[k] for k in keys) for it in _items(ds)]


def _names(ds):
    return [osp.basename(it['img_path']) for it in _items(ds)]


@pytest.fixture
def market(tmp_path):
    return write_market_layout(str(tmp_path / 'Market-1501-v15.09.15'))


@pytest.fixture
def duke(tmp_path):
    return write_market_layout(str(tmp_path / 'DukeMTMC-reID'), DUKE_FILES)


@pytest.fixture
def msmt(tmp_path):
    return write_msmt17(str(tmp_path / 'MSMT17_V1'))


# ---------------------------------------------------------------------------
# Market-1501


def test_market_train_relabels_and_uses_0_based_cameras(market):
    ds = Market1501(data_root=market, split='train')
    # raw pids 0002, 0002, 0007, 0010 -> 0, 0, 1, 2; cameras c1 c3 c2 c6
    assert _rows(ds, 'pid', 'camid', 'clothes_id', 'subset') == [
        (0, 0, 0, 'train'),
        (0, 2, 0, 'train'),
        (1, 1, 1, 'train'),
        (2, 5, 2, 'train'),
    ]
    first = ds.get_data_info(0)
    assert first['img_path'] == osp.join(market, 'bounding_box_train',
                                         '0002_c1s1_000451_03.jpg')
    meta = ds.metainfo
    assert meta['dataset_name'] == 'Market-1501'
    assert meta['num_pids'] == 3 and meta['num_cameras'] == 6
    assert meta['num_junk'] == {'bounding_box_train': 0}
    assert meta['num_skipped'] == {}
    # one "outfit" per identity: clothes id = relabelled pid
    np.testing.assert_array_equal(meta['pid2clothes'], np.eye(3, dtype=bool))
    assert not ds.test_mode
    np.testing.assert_array_equal(ds.get_pids(), [0, 0, 1, 2])


def test_market_test_drops_junk_keeps_distractors(market, mm_records):
    ds = Market1501(data_root=market, split='test')
    # queries first, then the gallery in name order; no -1 image anywhere
    assert _names(ds) == [
        '0003_c1s1_001051_00.jpg', '0005_c4s2_000976_00.jpg',
        '0000_c1s1_000151_01.jpg', '0000_c3s2_000411_04.jpg',
        '0003_c1s1_001101_02.jpg', '0003_c2s1_000151_01.jpg',
        '0005_c5s3_000151_01.jpg'
    ]
    # the dataset's own pids (distractors 0) and 0-based cameras
    assert _rows(ds, 'pid', 'camid', 'subset') == [
        (3, 0, 'query'),
        (5, 3, 'query'),
        (0, 0, 'gallery'),
        (0, 2, 'gallery'),
        (3, 0, 'gallery'),
        (3, 1, 'gallery'),
        (5, 4, 'gallery'),
    ]
    # test clothes ids: one per identity of the split (pids 0, 3, 5)
    assert [it['clothes_id'] for it in _items(ds)] == [1, 2, 0, 0, 1, 1, 2]
    meta = ds.metainfo
    assert meta['subset_sizes'] == {'query': 2, 'gallery': 5}
    assert meta['num_junk'] == {'query': 0, 'bounding_box_test': 2}
    assert meta['num_distractors'] == 2
    assert meta['num_identities'] == 3
    assert ds.test_mode
    # the junk images are left out on purpose, but never silently
    infos = [
        r.getMessage() for r in mm_records
        if 'junk images' in r.getMessage()
    ]
    assert len(infos) == 1
    assert '2 junk images (pid -1)' in infos[0]
    assert osp.join(market, 'bounding_box_test') in infos[0]


def test_market_items_go_through_a_pipeline(market):
    ds = Market1501(
        data_root=market,
        split='test',
        pipeline=[
            dict(type='LoadImageFromFile'),
            dict(type='PackReIDInputs')
        ])
    out = ds[2]
    assert tuple(out['inputs']['images'].shape) == (3, 8, 4)
    sample = out['data_samples']
    assert (sample.pid, sample.camid, sample.subset) == (0, 0, 'gallery')


def test_market_unparseable_name_is_an_error_or_a_counted_skip(
        market, mm_records):
    # a Duke-style name in a Market folder
    bad = osp.join(market, 'bounding_box_train', '0002_c1_f0046182.jpg')
    write_image(bad)
    with pytest.raises(AnnotationError) as e:
        Market1501(data_root=market, split='train')
    msg = str(e.value)
    assert bad in msg and 'PPPP_cCsS_FFFFFF_BB.jpg' in msg
    assert "on_bad_sample='skip'" in msg
    ds = Market1501(data_root=market, split='train', on_bad_sample='skip')
    assert len(ds) == 4
    assert ds.metainfo['num_skipped'] == {'unparseable file names': 1}
    warnings = [
        r.getMessage() for r in mm_records if r.levelno == logging.WARNING
    ]
    assert len(warnings) == 1 and bad in warnings[0]


@pytest.mark.parametrize(
    'folder, name, expected',
    [
        # Market-1501 has cameras 1-6
        ('bounding_box_train', '0002_c7s1_000451_03.jpg',
         'camera 7 is outside 1..6'),
        ('query', '0003_c0s1_001051_00.jpg', 'camera 0 is outside 1..6'),
        # distractors exist only in the gallery
        ('query', '0000_c1s1_000151_01.jpg', 'marks a distractor'),
        ('bounding_box_train', '0000_c1s1_000151_01.jpg',
         'marks a distractor'),
    ])
def test_market_bad_labels_name_the_file(market, folder, name, expected):
    bad = osp.join(market, folder, name)
    write_image(bad)
    split = 'train' if folder == 'bounding_box_train' else 'test'
    with pytest.raises(AnnotationError) as e:
        Market1501(data_root=market, split=split)
    assert bad in str(e.value) and expected in str(e.value)


def test_missing_folder_names_the_path(market, tmp_path):
    os.rename(
        osp.join(market, 'query'), osp.join(market, 'query-renamed'))
    with pytest.raises(FileNotFoundError) as e:
        Market1501(data_root=market, split='test')
    msg = str(e.value)
    assert osp.join(market, 'query') in msg
    assert 'bounding_box_test' in msg  # the expected layout is quoted
    # a missing folder is never skipped
    with pytest.raises(FileNotFoundError):
        Market1501(data_root=market, split='test', on_bad_sample='skip')
    with pytest.raises(FileNotFoundError, match='nowhere'):
        Market1501(data_root=str(tmp_path / 'nowhere'), split='train')


class _TinyMarket(Market1501):
    """Market1501 with the fixture's counts as the "full release"."""
    EXPECTED_IMAGES = MARKET_COUNTS['images']
    EXPECTED_JUNK = MARKET_COUNTS['junk']
    EXPECTED_IDS = MARKET_COUNTS['ids']


def test_count_check_against_the_release(market):
    # the real tables: every folder of the tiny copy differs, all are named
    with pytest.raises(CountMismatchError) as e:
        Market1501(data_root=market, split='test', check_counts=True)
    msg = str(e.value)
    for part in [
            f'{osp.join(market, "query")}: 2 images (junk left out), the '
            'full release has 3,368',
            f'{osp.join(market, "bounding_box_test")}: 5 images (junk left '
            'out), the full release has 15,913',
            'the full release has 3,819',
            'gallery identities, the full release has 751',
            'check_counts=False',
    ]:
        assert part in msg, part
    with pytest.raises(CountMismatchError, match='12,936'):
        Market1501(data_root=market, split='train', check_counts=True)
    # off by default
    assert len(Market1501(data_root=market, split='train')) == 4
    # a complete copy passes
    for split in ('train', 'test'):
        _TinyMarket(data_root=market, split=split, check_counts=True)


def test_count_check_names_only_what_differs(market):
    # a truncated gallery: one image fewer, one identity (0005) gone
    os.remove(osp.join(market, 'bounding_box_test', '0005_c5s3_000151_01.jpg'))
    with pytest.raises(CountMismatchError) as e:
        _TinyMarket(data_root=market, split='test', check_counts=True)
    msg = str(e.value)
    gallery = osp.join(market, 'bounding_box_test')
    assert f'{gallery}: 4 images (junk left out), the full release has 5' \
        in msg
    assert f'{gallery}: 2 gallery identities, the full release has 3' in msg
    assert osp.join(market, 'query') not in msg
    # a missing junk image is a difference too
    os.remove(osp.join(market, 'bounding_box_test', '-1_c1s1_000401_03.jpg'))
    with pytest.raises(CountMismatchError, match='1 junk images'):
        _TinyMarket(data_root=market, split='test', check_counts=True)
    # skipped samples change the counts: the message says so
    write_image(osp.join(market, 'bounding_box_train', 'bad_name.jpg'))
    os.remove(osp.join(market, 'bounding_box_train',
                       '0010_c6s4_002452_02.jpg'))
    with pytest.raises(CountMismatchError, match='1 bad samples were skipped'):
        _TinyMarket(
            data_root=market,
            split='train',
            check_counts=True,
            on_bad_sample='skip')


# ---------------------------------------------------------------------------
# DukeMTMC-reID and Occluded-Duke


@pytest.mark.parametrize('cls', [DukeMTMCReID, OccludedDuke])
def test_duke_layout(duke, cls):
    train = cls(data_root=duke, split='train')
    # pids 0001, 0001, 0008 -> 0, 0, 1; cameras c2, c5, c8 -> 1, 4, 7
    assert _rows(train, 'pid', 'camid') == [(0, 1), (0, 4), (1, 7)]
    assert train.metainfo['num_cameras'] == 8
    assert train.metainfo['num_pids'] == 2
    test = cls(data_root=duke, split='test')
    assert _rows(test, 'pid', 'camid', 'subset') == [
        (5, 1, 'query'),
        (5, 0, 'gallery'),
        (5, 1, 'gallery'),
        (33, 2, 'gallery'),
    ]
    # Duke has no pid-0 distractors to count
    assert 'num_distractors' not in test.metainfo
    assert test.metainfo['num_junk'] == {'query': 0, 'bounding_box_test': 0}


def test_duke_errors_name_the_file(duke):
    # a Market-style name
    bad = osp.join(duke, 'query', '0005_c2s1_046985_00.jpg')
    write_image(bad)
    with pytest.raises(AnnotationError) as e:
        DukeMTMCReID(data_root=duke, split='test')
    assert bad in str(e.value) and 'PPPP_cC_fFFFFFFF.jpg' in str(e.value)
    os.remove(bad)
    bad = osp.join(duke, 'query', '0005_c9_f0046985.jpg')
    write_image(bad)
    with pytest.raises(AnnotationError, match=re.escape(bad)):
        OccludedDuke(data_root=duke, split='test')


def test_duke_and_occluded_duke_check_their_own_release(duke):
    with pytest.raises(CountMismatchError) as e:
        DukeMTMCReID(data_root=duke, split='train', check_counts=True)
    assert '16,522' in str(e.value) and 'has 702' in str(e.value)
    with pytest.raises(CountMismatchError) as e:
        OccludedDuke(data_root=duke, split='train', check_counts=True)
    assert '15,618' in str(e.value)
    with pytest.raises(CountMismatchError) as e:
        OccludedDuke(data_root=duke, split='test', check_counts=True)
    msg = str(e.value)
    assert '2,210' in msg and '17,661' in msg
    assert 'query identities, the full release has 519' in msg
    assert 'gallery identities, the full release has 1,110' in msg


# ---------------------------------------------------------------------------
# MSMT17


def test_msmt17_train_reads_train_and_val_lists(msmt):
    ds = MSMT17(data_root=msmt, split='train')
    assert [
        osp.relpath(it['img_path'], osp.join(msmt, 'train'))
        for it in _items(ds)
    ] == [rel for rel, _ in MSMT_LISTS['list_train.txt'][1]] + [
        rel for rel, _ in MSMT_LISTS['list_val.txt'][1]
    ]
    # labels 0 0 1 | 1 2 (shared by both lists); cameras 01 05 15 | 07 02
    assert _rows(ds, 'pid', 'camid', 'subset') == [
        (0, 0, 'train'),
        (0, 4, 'train'),
        (1, 14, 'train'),
        (1, 6, 'train'),
        (2, 1, 'train'),
    ]
    assert ds.metainfo['num_pids'] == 3
    assert ds.metainfo['num_cameras'] == 15
    assert ds.metainfo['num_junk'] == {'list_train.txt': 0, 'list_val.txt': 0}
    only_train = MSMT17(data_root=msmt, split='train', train_with_val=False)
    assert _rows(only_train, 'pid', 'camid') == [(0, 0), (0, 4), (1, 14)]


def test_msmt17_test_split(msmt):
    ds = MSMT17(data_root=msmt, split='test')
    assert _rows(ds, 'pid', 'camid', 'subset') == [
        (0, 2, 'query'),
        (0, 3, 'gallery'),
        (0, 2, 'gallery'),
        (4, 10, 'gallery'),
    ]
    assert ds.get_data_info(0)['img_path'] == osp.join(
        msmt, 'test', '0000', '0000_000_03_0303noon_1033_0.jpg')
    # the lists are authoritative: an unlisted image is not read
    write_image(osp.join(msmt, 'test', '0009', '0009_000_01_x_0001_0.jpg'))
    assert len(MSMT17(data_root=msmt, split='test')) == 4


def test_msmt17_bad_lists_name_file_and_line(msmt):
    listing = osp.join(msmt, 'list_query.txt')
    with open(listing, 'a') as f:
        f.write('0000/0000_000_03_0303noon_1040_0.jpg\n')  # no pid
    with pytest.raises(AnnotationError) as e:
        MSMT17(data_root=msmt, split='test')
    assert f'{listing}, line 2' in str(e.value)
    assert '"<path> <pid>"' in str(e.value)
    ds = MSMT17(data_root=msmt, split='test', on_bad_sample='skip')
    assert ds.metainfo['num_skipped'] == {'malformed list lines': 1}
    # a listed image that does not exist
    with open(listing, 'w') as f:
        f.write('0000/0000_000_03_0303noon_1040_0.jpg 0\n')
    missing = osp.join(msmt, 'test', '0000', '0000_000_03_0303noon_1040_0.jpg')
    with pytest.raises(FileNotFoundError) as e:
        MSMT17(data_root=msmt, split='test')
    assert missing in str(e.value) and f'{listing}, line 1' in str(e.value)
    # a name without the camera field
    with open(listing, 'w') as f:
        f.write('0000/query_0001.jpg 0\n')
    with pytest.raises(AnnotationError, match='cannot parse the file name'):
        MSMT17(data_root=msmt, split='test')
    # camera 16 of 15
    name = '0000/0000_000_16_0303noon_1033_0.jpg'
    write_image(osp.join(msmt, 'test', name))
    with open(listing, 'w') as f:
        f.write(f'{name} 0\n')
    with pytest.raises(AnnotationError, match='camera 16 is outside 1..15'):
        MSMT17(data_root=msmt, split='test')


def test_msmt17_missing_list_file(msmt):
    os.remove(osp.join(msmt, 'list_val.txt'))
    with pytest.raises(FileNotFoundError) as e:
        MSMT17(data_root=msmt, split='train')
    assert osp.join(msmt, 'list_val.txt') in str(e.value)
    assert 'list_gallery.txt' in str(e.value)  # the expected layout
    # without val the list is not needed
    assert len(MSMT17(data_root=msmt, split='train', train_with_val=False)) \
        == 3


def test_msmt17_count_check_names_the_list_files(msmt):
    with pytest.raises(CountMismatchError) as e:
        MSMT17(data_root=msmt, split='train', check_counts=True)
    msg = str(e.value)
    assert (f'{osp.join(msmt, "list_train.txt")}: 3 images (junk left out), '
            'the full release has 30,248') in msg
    assert 'the full release has 2,373' in msg
    assert (f'{osp.join(msmt, "list_train.txt")} + '
            f'{osp.join(msmt, "list_val.txt")}: 3 train identities, the full '
            'release has 1,041') in msg
    # train only: the identity count of list_train.txt alone is unknown
    with pytest.raises(CountMismatchError) as e:
        MSMT17(
            data_root=msmt,
            split='train',
            train_with_val=False,
            check_counts=True)
    assert 'identities' not in str(e.value)
    with pytest.raises(CountMismatchError, match='82,161'):
        MSMT17(data_root=msmt, split='test', check_counts=True)


# ---------------------------------------------------------------------------
# shared


@pytest.mark.parametrize('kind, fixture', [('Market1501', 'market'),
                                           ('DukeMTMCReID', 'duke'),
                                           ('OccludedDuke', 'duke'),
                                           ('MSMT17', 'msmt')])
def test_registry_and_bad_arguments(kind, fixture, request):
    root = request.getfixturevalue(fixture)
    ds = DATASETS.build(dict(type=kind, data_root=root, split='test'))
    assert type(ds).__name__ == kind
    assert ds.metainfo['subset_sizes']['query'] >= 1
    with pytest.raises(ValueError, match="no 'val' split"):
        DATASETS.build(dict(type=kind, data_root=root, split='val'))
    with pytest.raises(ValueError, match='data_root'):
        DATASETS.build(dict(type=kind, split='train'))
