"""Gallery search indexes: a changed folder is never searched silently, a
bad image never stops the indexing (docs/reliability.md, "Search")."""
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from helpers.tiny_search_setup import write_config

from mmreid_clip.apis import (PersonReIdentifier, StaleGalleryError,
                              StaleIndexError, init_model)


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    folder = tmp_path_factory.mktemp('search_model')
    config = write_config(str(folder / 'tiny.py'), str(folder))
    torch.manual_seed(0)
    return init_model(config)


def _image(path, seed):
    rng = np.random.default_rng(seed)
    os.makedirs(osp.dirname(path), exist_ok=True)
    cv2.imwrite(str(path), rng.integers(0, 255, (32, 16, 3), np.uint8))


@pytest.fixture
def gallery(tmp_path):
    root = tmp_path / 'gallery'
    for i in range(4):
        _image(root / f'cam{i % 2}' / f'{i:03d}.png', i)
    return root


def test_changed_folder_is_refused_by_load(model, gallery, tmp_path):
    searcher = PersonReIdentifier(model)
    assert searcher.index_folder(str(gallery)) == 4
    index = searcher.save(str(tmp_path / 'g.npz'))
    # unchanged: loads
    assert len(PersonReIdentifier(model).load(index)) == 4
    _image(gallery / 'cam0' / 'new.png', 10)
    with pytest.raises(StaleGalleryError,
                       match=r'does not match the folder .*1 added '
                       r'\(e\.g\. cam0/new\.png\)'):
        PersonReIdentifier(model).load(index)
    os.remove(gallery / 'cam0' / 'new.png')
    # replaced in place by another image (another size and time)
    before = os.stat(gallery / 'cam1' / '001.png')
    cv2.imwrite(str(gallery / 'cam1' / '001.png'),
                np.zeros((40, 20, 3), np.uint8))
    os.utime(gallery / 'cam1' / '001.png',
             ns=(before.st_atime_ns, before.st_mtime_ns + 10**9))
    with pytest.raises(StaleGalleryError,
                       match=r'1 replaced or modified \(e\.g\. cam1/001'):
        PersonReIdentifier(model).load(index)
    os.remove(gallery / 'cam0' / '000.png')
    with pytest.raises(StaleGalleryError, match='1 removed'):
        PersonReIdentifier(model).load(index)
    # StaleGalleryError is a StaleIndexError: the demos exit with it
    assert issubclass(StaleGalleryError, StaleIndexError)
    # the caller may opt out
    stale = PersonReIdentifier(model).load(index, check_folder=False)
    assert len(stale) == 4


def test_load_or_build_reindexes_a_changed_folder(model, gallery, tmp_path):
    index = str(tmp_path / 'g.npz')
    first = PersonReIdentifier.load_or_build(model, str(gallery), index)
    assert len(first) == 4
    _image(gallery / 'cam1' / 'late.png', 11)
    second = PersonReIdentifier.load_or_build(model, str(gallery), index)
    assert 'cam1/late.png' in second.rel_paths and len(second) == 5
    # the rebuilt index was saved: it loads as it is now
    assert len(PersonReIdentifier(model).load(index)) == 5
    # and the new image is found
    result = second.query(str(gallery / 'cam1' / 'late.png'), topk=1,
                          exclude_self=False)
    assert result.rel_paths == ['cam1/late.png']


def test_index_without_folder_fingerprint_is_refused(model, gallery,
                                                     tmp_path):
    searcher = PersonReIdentifier(model)
    searcher.index_folder(str(gallery))
    old = str(tmp_path / 'old.npz')
    searcher.index.save(
        old,
        dict(format='mmreid_clip.GalleryIndex/1', root=searcher.root,
             rel_paths=searcher.rel_paths, fingerprint=searcher.fingerprint))
    with pytest.raises(StaleGalleryError, match='no fingerprint'):
        PersonReIdentifier(model).load(old)


def test_unreadable_images_are_skipped_and_named(model, gallery):
    (gallery / 'empty.png').write_bytes(b'')
    (gallery / 'corrupt.jpg').write_bytes(b'\xff\xd8 not a jpeg')
    os.symlink(str(gallery / 'gone.png'), str(gallery / 'dangling.png'))
    searcher = PersonReIdentifier(model)
    assert searcher.index_folder(str(gallery)) == 4
    assert sorted(searcher.skipped) == ['corrupt.jpg', 'dangling.png',
                                        'empty.png']
    assert 'empty' in searcher.skipped['empty.png']
    assert 'broken symbolic link' in searcher.skipped['dangling.png']
    assert 'decoded' in searcher.skipped['corrupt.jpg']
    assert not set(searcher.rel_paths) & set(searcher.skipped)


def test_a_folder_of_only_bad_images_is_an_error(model, tmp_path):
    root = tmp_path / 'bad'
    root.mkdir()
    (root / 'a.png').write_bytes(b'')
    (root / 'b.jpg').write_bytes(b'garbage')
    with pytest.raises(ValueError, match=r'none of the 2 images.*a\.png: '
                       r'the file is empty'):
        PersonReIdentifier(model).index_folder(str(root))


# ----------------------------------------------------------------------
# the web demo (tools/demo/search_app.py), without gradio


def _search_app():
    import importlib.util
    path = osp.join(
        osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__)))),
        'tools/demo/search_app.py')
    spec = importlib.util.spec_from_file_location('search_app_tool', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class _Searcher:
    """Stands for a TextPersonSearcher over ``gallery``."""

    def __init__(self, gallery):
        from mmreid_clip.apis.searchers import SearchResult
        self.gallery, self.calls = gallery, []
        rel = sorted(
            osp.relpath(osp.join(d, f), gallery)
            for d, _, files in os.walk(gallery) for f in files)
        self.result = SearchResult(
            paths=[osp.join(gallery, r) for r in rel], rel_paths=rel,
            scores=[1.0 - i / 10 for i in range(len(rel))],
            indices=list(range(len(rel))))

    def __len__(self):
        return len(self.result)

    def query(self, text, k):
        self.calls.append(text)
        return self.result


def test_search_app_sends_images_not_paths(gallery):
    from PIL import Image
    tool = _search_app()
    (gallery / 'notes.txt').write_text('private')
    searcher = _Searcher(str(gallery))
    searcher.result.paths = [p for p in searcher.result.paths
                             if p.endswith('.png')]
    items, status = tool.make_search_fn(searcher)('a man', 3)
    assert all(isinstance(image, Image.Image) for image, _ in items)
    args = tool.parse_args(['cfg.py', 'ckpt.pth', '--gallery', str(gallery)])
    options = tool.launch_options(args)
    # no folder is shared: only the result images reach the browser
    assert 'allowed_paths' not in options
    assert options['max_file_size'] == '1mb'


def test_search_app_refuses_long_queries(gallery):
    tool = _search_app()
    searcher = _Searcher(str(gallery))
    search = tool.make_search_fn(searcher, max_query_chars=20)
    items, status = search('x' * 21, 3)
    assert items == [] and 'too long (21 characters; at most 20)' in status
    assert searcher.calls == []  # the model never ran
    assert len(search('a man in red', 'not a number')[0]) == 4


def test_search_app_bounds_its_queue_and_uploads(gallery):
    tool = _search_app()
    args = tool.parse_args([
        'cfg.py', 'ckpt.pth', '--gallery', str(gallery), '--queue-size',
        '4', '--max-upload-size', '200kb'
    ])
    calls = {}

    class App:

        def queue(self, **kwargs):
            calls['queue'] = kwargs

        def launch(self, server_name=None, server_port=None,
                   max_file_size=None, allowed_paths=None):
            calls['launch'] = dict(max_file_size=max_file_size,
                                   allowed_paths=allowed_paths)

    tool.serve(App(), args)
    assert calls['queue'] == dict(max_size=4, default_concurrency_limit=1)
    assert calls['launch'] == dict(max_file_size='200kb', allowed_paths=None)

    class OldGradio:

        def queue(self, **kwargs):
            raise AssertionError('must not start')

        def launch(self, server_name=None, server_port=None):
            raise AssertionError('must not start')

    with pytest.raises(RuntimeError, match='gradio >= 4.21'):
        tool.serve(OldGradio(), args)
    with pytest.raises(SystemExit):
        tool.parse_args(['cfg.py', 'ckpt.pth', '--gallery', str(gallery),
                         '--queue-size', '0'])
