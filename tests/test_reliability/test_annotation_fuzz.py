"""Property tests of the TIPR annotation parsers with ``hypothesis``.

Whatever the file holds, loading either succeeds with well-formed items or
raises :class:`AnnotationError` (never a ``TypeError``/``KeyError`` from
deep inside), and ``on_bad_sample`` only decides between raising and
skipping: the error mode succeeds exactly when the skip mode has nothing
to skip, and then both give the same items.
"""
import json
import os.path as osp
import tempfile

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mmreid_clip.datasets import CUHKPEDES, RSTPReid, TextImageDataset
from mmreid_clip.datasets.text_image_dataset import AnnotationError

FUZZ = settings(
    max_examples=100,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
    database=None)

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-3, 3),
                         st.floats(allow_nan=False), st.text(max_size=8))
json_values = st.recursive(
    json_scalars,
    lambda children: st.one_of(
        st.lists(children, max_size=3),
        st.dictionaries(st.text(max_size=6), children, max_size=3)),
    max_leaves=6)
captions = st.one_of(
    st.text(max_size=24), st.sampled_from(['', '   ', '\n\t', 'ok',
                                           '日本 très']), json_scalars)


def entries(path_key: str):
    """Entries of the common shape, often broken, from small pools so that
    repeated images, repeated entries and conflicting ids come up."""
    valid = st.fixed_dictionaries({
        'split':
        st.sampled_from(['train', 'val', 'test']),
        'captions':
        st.lists(captions, max_size=3),
        path_key:
        st.sampled_from(['a.jpg', 'b.jpg', 'c/d.jpg']),
        'id':
        st.integers(0, 3),
    })

    @st.composite
    def broken(draw):
        entry = draw(valid)
        key = draw(st.sampled_from(sorted(entry)))
        if draw(st.booleans()):
            del entry[key]
        else:
            entry[key] = draw(json_values)
        return entry

    return st.one_of(valid, valid, broken(), json_values)


DATASETS = [(TextImageDataset, 'file_path'), (CUHKPEDES, 'file_path'),
            (RSTPReid, 'img_path')]


def load(cls, root: str, split: str, on_bad_sample: str):
    """The dataset and its items, or the AnnotationError it raised."""
    try:
        ds = cls(
            data_root=root,
            ann_file='ann.json',
            split=split,
            check_files=False,
            on_bad_sample=on_bad_sample,
            # mmengine's serialisation runs gc.collect() on every load
            serialize_data=False)
    except AnnotationError as err:
        assert osp.join(root, 'ann.json') in str(err)
        return err
    return ds, [ds.get_data_info(i) for i in range(len(ds))]


def write(root: str, content: str) -> str:
    with open(osp.join(root, 'ann.json'), 'w', encoding='utf-8') as f:
        f.write(content)
    return root


def check_items(ds, items, split):
    assert len(items) > 0
    for item in items:
        assert isinstance(item['pid'], int)
        assert isinstance(item['image_id'], int) and item['image_id'] >= 0
        if 'caption' in item:
            assert isinstance(item['caption'], str)
            assert item['caption'].strip()
        if 'img_path' in item:
            assert osp.isabs(item['img_path'])
    num_texts = sum('caption' in it for it in items)
    assert num_texts == ds.metainfo['num_captions'] > 0
    if split == 'train':
        assert {it['pid']
                for it in items} == set(range(ds.metainfo['num_classes']))


@pytest.mark.parametrize('cls, path_key', DATASETS)
@FUZZ
@given(data=st.data())
def test_entries_parse_or_raise_annotation_error(cls, path_key, data):
    ann = data.draw(st.lists(entries(path_key), max_size=8), label='entries')
    split = data.draw(st.sampled_from(cls.SPLITS), label='split')
    content = json.dumps(ann, ensure_ascii=data.draw(st.booleans()))
    with tempfile.TemporaryDirectory() as root:
        write(root, content)
        strict = load(cls, root, split, 'error')
        lenient = load(cls, root, split, 'skip')
    if isinstance(lenient, AnnotationError):
        # nothing usable at all: the strict mode cannot do better
        assert isinstance(strict, AnnotationError)
        return
    ds, items = lenient
    check_items(ds, items, split)
    assert ds.metainfo['num_skipped'] == len(ds.skipped)
    if ds.skipped:
        assert isinstance(strict, AnnotationError)
        # the strict error is the first problem the lenient mode skipped
        assert str(strict).splitlines()[0] in '\n'.join(ds.skipped)
    else:
        assert not isinstance(strict, AnnotationError), strict
        assert strict[1] == items


@FUZZ
@given(text=st.one_of(st.text(max_size=60), json_values.map(json.dumps)))
def test_arbitrary_file_content(text):
    with tempfile.TemporaryDirectory() as root:
        write(root, text)
        for on_bad_sample in ('error', 'skip'):
            result = load(TextImageDataset, root, 'train', on_bad_sample)
            if not isinstance(result, AnnotationError):
                check_items(result[0], result[1], 'train')
