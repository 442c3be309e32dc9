"""init_model / encode_images / encode_texts on a tiny random model."""
import copy
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from mmengine.runner import Runner
from PIL import Image

from mmreid_clip.apis import (encode_images, encode_texts, init_model,
                              list_images, model_fingerprint)
from mmreid_clip.safe_load import UnsafeCheckpointError


class NotWeights:
    """A pickled object that has no business in a checkpoint."""


@pytest.fixture(scope='module')
def model(tiny):
    return init_model(tiny.config, tiny.checkpoint)


def test_init_model_loads_the_checkpoint(tiny, model):
    saved = torch.load(tiny.checkpoint, weights_only=True)['state_dict']
    own = model.state_dict()
    assert set(saved) == set(own)
    assert all(torch.equal(saved[k], own[k]) for k in own)
    assert not model.training
    assert model.checkpoint_meta['seed'] == 0
    other = init_model(tiny.config, tiny.other_checkpoint)
    assert model_fingerprint(other)['weights'] != model_fingerprint(
        model)['weights']
    assert model_fingerprint(init_model(
        tiny.config, tiny.checkpoint)) == model_fingerprint(model)


def test_init_model_refuses_bad_checkpoints(tiny, tmp_path):
    state = torch.load(tiny.checkpoint, weights_only=True)['state_dict']
    partial = dict(state)
    partial.pop('image_encoder.visual.ln_post.weight')
    path = str(tmp_path / 'partial.pth')
    torch.save({'state_dict': partial}, path)
    with pytest.raises(
            ValueError, match='1 parameters missing.*ln_post.weight'):
        init_model(tiny.config, path)
    # the project's safe loader is used: arbitrary pickles are refused
    path = str(tmp_path / 'pickled.pth')
    torch.save({'state_dict': state, 'meta': {'x': NotWeights()}}, path)
    with pytest.raises(UnsafeCheckpointError, match='NotWeights'):
        init_model(tiny.config, path)
    with pytest.raises(FileNotFoundError, match='absent.pth'):
        init_model(tiny.config, str(tmp_path / 'absent.pth'))
    with pytest.raises(FileNotFoundError, match='pretrained weights'):
        init_model(
            tiny.config,
            cfg_options={
                'model.image_encoder.pretrained': str(tmp_path / 'clip.pt')
            })


def _test_split_features(model):
    """img_feat / text_feat as tools/test.py computes them."""
    loader_cfg = copy.deepcopy(model.cfg.test_dataloader)
    loader = Runner.build_dataloader(loader_cfg, seed=0)
    images, texts = {}, {}
    with torch.no_grad():
        for batch in loader:
            for s in model.test_step(batch):
                if s.has_image:
                    images[s.img_path] = s.img_feat
                if s.has_text:
                    texts[s.caption] = s.text_feat
    return images, texts


def test_features_equal_those_of_the_test_run(model):
    images, texts = _test_split_features(model)
    paths = sorted(images)
    feats = encode_images(model, paths, batch_size=3)
    assert feats.shape == (len(paths), 48) and feats.dtype == torch.float32
    assert torch.allclose(
        feats, torch.stack([images[p] for p in paths]), atol=1e-6)
    # images loaded by a worker process give the same features
    assert torch.allclose(
        encode_images(model, paths, batch_size=4, num_workers=1), feats)
    captions = sorted(texts)[:5]
    tfeats = encode_texts(model, captions, batch_size=2)
    assert torch.allclose(
        tfeats, torch.stack([texts[c] for c in captions]), atol=1e-6)
    assert torch.allclose(tfeats.norm(dim=1), torch.ones(5))


def test_paths_arrays_and_pil_images_agree(tiny, model):
    path = osp.join(tiny.gallery, list_images(tiny.gallery)[0])
    bgr = cv2.imread(path)
    rgb = np.ascontiguousarray(bgr[:, :, ::-1])
    by_path = encode_images(model, [path])
    assert torch.allclose(encode_images(model, [bgr]), by_path, atol=1e-6)
    assert torch.allclose(
        encode_images(model, [rgb], array_order='rgb'), by_path, atol=1e-6)
    assert torch.allclose(
        encode_images(model, [Image.fromarray(rgb)]), by_path, atol=1e-6)
    # the channel order matters: the model sees colours
    assert not torch.allclose(encode_images(model, [rgb]), by_path, atol=1e-4)


def test_bad_inputs_name_the_problem(tiny, model, tmp_path):
    with pytest.raises(FileNotFoundError, match='nope.jpg'):
        encode_images(model, [str(tmp_path / 'nope.jpg')])
    broken = tmp_path / 'broken.jpg'
    broken.write_bytes(b'not a jpeg')
    with pytest.raises(ValueError, match='broken.jpg'):
        encode_images(model, [str(broken)])
    with pytest.raises(ValueError, match='H x W x 3'):
        encode_images(model, [np.zeros((4, 4, 2), np.uint8)])
    with pytest.raises(ValueError, match='text #1 must be a non-empty'):
        encode_texts(model, ['a man', '  '])
    bare = init_model(tiny.config)
    del bare.cfg
    with pytest.raises(AttributeError, match='init_model'):
        encode_texts(bare, ['a man'])


def test_list_images_is_sorted_relative_and_filtered(tmp_path):
    for name in ('b/2.JPG', 'a/1.png', 'a/notes.txt', 'c.jpeg', '.hidden.jpg'):
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b'')
    assert list_images(str(tmp_path)) == ['a/1.png', 'b/2.JPG', 'c.jpeg']
    assert list_images(str(tmp_path), recursive=False) == ['c.jpeg']
    with pytest.raises(NotADirectoryError):
        list_images(str(tmp_path / 'c.jpeg'))
