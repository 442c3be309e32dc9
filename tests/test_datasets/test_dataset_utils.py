"""mmreid_clip/datasets/utils.py: image extensions, pipeline building and
the log of load-time skips, shared by every dataset and the search API."""
import logging

import pytest
from mmengine.registry import DefaultScope

from mmreid_clip.datasets.transforms import RandomErasing
from mmreid_clip.datasets.utils import (IMG_EXTENSIONS, compose_pipeline,
                                        is_image_file, log_skipped)


@pytest.mark.parametrize('name', ['a.jpg', 'dir/b.JPEG', 'c.Png', 'd.bmp',
                                  'e.tif', 'f.TIFF', 'g.webp'])
def test_is_image_file(name):
    assert is_image_file(name)


@pytest.mark.parametrize('name', ['Thumbs.db', '.DS_Store', 'README',
                                  'a.jpg.txt', 'jpg', 'mask.npy'])
def test_is_image_file_rejects_other_files(name):
    assert not is_image_file(name)


def test_is_image_file_with_other_extensions():
    assert is_image_file('x.GIF', ['.gif']) and not is_image_file(
        'x.jpg', ['.gif'])
    assert all(e.startswith('.') and e == e.lower() for e in IMG_EXTENSIONS)


def test_compose_pipeline_without_default_scope():
    """Our transforms resolve inside mmcv's wrappers even with no default
    scope set (a dataset built outside a Runner)."""
    marker = []
    with DefaultScope.overwrite_default_scope(None):
        pipeline = compose_pipeline([
            dict(
                type='RandomApply',
                transforms=[dict(type='RandomErasing', erase_prob=1.0)],
                prob=1.0), marker.append
        ])
    assert isinstance(pipeline.transforms[0].transforms.transforms[0],
                      RandomErasing)
    assert pipeline.transforms[1] == marker.append  # callables kept as is
    assert compose_pipeline(None).transforms == []


@pytest.fixture
def warnings_logged(mm_records):
    def get():
        return [
            r.getMessage() for r in mm_records
            if r.levelno == logging.WARNING
        ]

    return get


def test_log_skipped_flat(warnings_logged):
    log_skipped('CUHK-PEDES train (ann.json)',
                [f'entry #{i} is bad' for i in range(7)], num_shown=3)
    (msg, ) = warnings_logged()
    assert msg.startswith("CUHK-PEDES train (ann.json): on_bad_sample='skip' "
                          'skipped 7 bad samples:')
    assert 'entry #2 is bad' in msg and 'entry #3' not in msg
    assert msg.endswith('... and 4 more')


def test_log_skipped_by_kind(warnings_logged):
    log_skipped('LTCC train', {
        'unparseable file names': ['a.jpg', 'b.jpg'],
        'missing masks': ['m1', 'm2', 'm3']
    },
                num_shown=2)
    (msg, ) = warnings_logged()
    assert 'skipped 5 bad samples' in msg
    lines = msg.splitlines()
    assert lines[1:] == [
        '  2 unparseable file names:', '    a.jpg', '    b.jpg',
        '  3 missing masks:', '    m1', '    m2', '    ... and 1 more'
    ]


def test_log_skipped_nothing(warnings_logged):
    log_skipped('LTCC train', {})
    log_skipped('LTCC train', [])
    assert warnings_logged() == []


def test_old_pipeline_name_stays_importable():
    # the CLIP-ReID equivalence harness imports the pre-merge name
    from mmreid_clip.datasets.cloth_changing.base import _compose
    from mmreid_clip.datasets.utils import compose_pipeline
    assert _compose is compose_pipeline
