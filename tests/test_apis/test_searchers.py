"""TextPersonSearcher / PersonReIdentifier: index, save, load, query."""
import os.path as osp
import shutil

import cv2
import pytest
import torch
import torch.nn.functional as F
from mmengine.config import Config
from mmengine.model import BaseModel
from helpers.tiny_search_setup import write_config

from mmreid_clip.apis import (PersonReIdentifier, StaleIndexError,
                              TextPersonSearcher, encode_images, encode_texts,
                              init_model, list_images)
from mmreid_clip.models.retrievers.clip_text_image import assign_features
from mmreid_clip.registry import MODELS

QUERY = 'A woman wearing a green jacket and a grey skirt.'


@pytest.fixture(scope='module')
def model(tiny):
    return init_model(tiny.config, tiny.checkpoint)


@pytest.fixture(scope='module')
def index_file(tiny, model, tmp_path_factory):
    searcher = TextPersonSearcher(model, batch_size=3)
    assert searcher.index_folder(tiny.gallery) == 8
    return searcher.save(str(tmp_path_factory.mktemp('idx') / 'g.npz'))


def test_round_trip_gives_the_same_ranking_and_scores(tiny, model, index_file):
    first = TextPersonSearcher(model)
    first.index_folder(tiny.gallery)
    before = first.query(QUERY, topk=5)
    assert len(before) == 5
    assert before.scores == sorted(before.scores, reverse=True)
    assert set(before.rel_paths) <= set(list_images(tiny.gallery))
    assert all(osp.isfile(p) for p in before.paths)
    # a fresh model from the same checkpoint reads the saved index
    again = TextPersonSearcher(init_model(tiny.config, tiny.checkpoint))
    again.load(index_file)
    after = again.query(QUERY, topk=5)
    assert after.rel_paths == before.rel_paths
    assert after.scores == before.scores
    assert len(again.query(QUERY, topk=100)) == 8


def test_scores_are_cosines_of_the_features(model, index_file):
    searcher = TextPersonSearcher(model).load(index_file)
    result = searcher.query(QUERY, topk=8)
    text = encode_texts(model, [QUERY])[0]
    image = encode_images(model, result.paths)
    assert torch.allclose(image @ text, torch.tensor(result.scores), atol=1e-5)


def test_stale_index_is_refused(tiny, index_file, tmp_path):
    other = TextPersonSearcher(init_model(tiny.config, tiny.other_checkpoint))
    with pytest.raises(StaleIndexError, match='weights differ'):
        other.load(index_file)
    # same weights, another image pipeline (input size): stale as well
    cfg = write_config(str(tmp_path / 'other_size.py'), tiny.root, (24, 48))
    resized = TextPersonSearcher(init_model(cfg, tiny.checkpoint))
    with pytest.raises(StaleIndexError, match='image_pipeline'):
        resized.load(index_file)


def test_moved_gallery_loads_with_root(tiny, model, index_file, tmp_path):
    moved = str(tmp_path / 'moved')
    shutil.copytree(tiny.gallery, moved)
    searcher = TextPersonSearcher(model).load(index_file, root=moved)
    result = searcher.query(QUERY, 3)
    assert all(p.startswith(moved) and osp.isfile(p) for p in result.paths)


def test_person_reidentifier_reads_the_same_index(tiny, model, index_file):
    reid = PersonReIdentifier(model).load(index_file)
    query = reid.paths[2]
    result = reid.query(query, topk=3)
    assert query not in result.paths and len(result) == 3
    with_self = reid.query(query, topk=3, exclude_self=False)
    assert with_self.paths[0] == query
    assert with_self.scores[0] == pytest.approx(1.0, abs=1e-5)
    # an array query is not a gallery file: nothing is excluded
    assert len(reid.query(cv2.imread(query), topk=8)) == 8


@MODELS.register_module(force=True)
class ToyImageReID(BaseModel):
    """An image-only model: predict sets img_feat, there is no text tower.

    The mean colour of 8 horizontal bands, so that images of different
    people (different clothes) get different features.
    """

    def __init__(self, data_preprocessor=None):
        super().__init__(
            data_preprocessor=data_preprocessor or dict(
                type='TextImageDataPreprocessor'))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        feats = F.adaptive_avg_pool2d(inputs['images'], (8, 1)).flatten(1)
        if mode == 'predict':
            return assign_features(data_samples, F.normalize(feats, dim=1),
                                   None)
        return feats


def test_person_reidentifier_works_with_an_image_only_model(tiny):
    cfg = Config(
        dict(
            default_scope='mmreid_clip',
            model=dict(type='ToyImageReID'),
            test_dataloader=dict(
                collate_fn=dict(type='text_image_collate'),
                dataset=dict(pipeline=[
                    dict(type='LoadImageFromFile'),
                    dict(type='Resize', scale=(16, 32))
                ]))))
    model = init_model(cfg)
    reid = PersonReIdentifier(model)
    reid.index_folder(tiny.gallery)
    assert reid.index.dim == 24  # the toy's 8 bands x 3 channels
    feats = encode_images(model, reid.paths)
    for q, query in enumerate(reid.paths):
        result = reid.query(query, topk=8, exclude_self=False)
        assert result.paths[0] == query
        assert result.scores[0] == pytest.approx(1.0, abs=1e-5)
        expected = torch.sort(
            feats @ feats[q], descending=True, stable=True).indices
        assert result.indices == expected.tolist()
    with pytest.raises(ValueError, match='text_pipeline'):
        TextPersonSearcher.load_or_build(model, tiny.gallery).query('a man')


def test_searcher_errors(tiny, model, tmp_path):
    with pytest.raises(ValueError, match='unknown index kind'):
        TextPersonSearcher(model, index_kind='annoy')
    searcher = TextPersonSearcher(model)
    with pytest.raises(RuntimeError, match='index_folder'):
        searcher.query(QUERY)
    empty = tmp_path / 'empty'
    empty.mkdir()
    with pytest.raises(ValueError, match='no image'):
        searcher.index_folder(str(empty))
    with pytest.raises(ValueError, match='non-empty description'):
        TextPersonSearcher.load_or_build(model, tiny.gallery).query(' ')


def test_faiss_flat_searcher_matches_exact(tiny, model, tmp_path):
    pytest.importorskip('faiss', reason='faiss-cpu is not installed')
    exact = TextPersonSearcher(model)
    exact.index_folder(tiny.gallery)
    flat = TextPersonSearcher(model, index_kind='flat')
    flat.index_folder(tiny.gallery)
    path = flat.save(str(tmp_path / 'flat.npz'))
    loaded = TextPersonSearcher(model).load(path)
    assert loaded.index_kind == 'flat'
    a, b = exact.query(QUERY, 8), loaded.query(QUERY, 8)
    assert a.rel_paths == b.rel_paths
    assert b.scores == pytest.approx(a.scores, abs=1e-5)
