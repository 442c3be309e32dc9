"""The inference API on an image-ReID (CLIP-ReID / CCAF) config."""
import os.path as osp

import numpy as np
import pytest
import torch

from mmreid_clip.apis import PersonReIdentifier, encode_images, init_model

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CCAF_TINY = osp.join(ROOT, 'configs/ccaf/ccaf_clip-tiny_synthcc-tiny.py')
MICRO = {
    'model.image_encoder.arch': 'clip-micro',
    'model.image_encoder.pretrained': None,
    'model.image_encoder.img_size': (128, 64),
    'model.text_encoder.arch': 'clip-micro',
    'model.text_encoder.pretrained': None,
    'model.head.in_channels': (64, 48),
}


@pytest.fixture(scope='module')
def gallery(tmp_path_factory):
    import cv2
    root = tmp_path_factory.mktemp('people')
    rng = np.random.default_rng(0)
    for i in range(6):
        img = rng.integers(0, 255, (128, 64, 3), dtype=np.uint8)
        cv2.imwrite(str(root / f'p{i}.png'), img)
    return root


def test_ccaf_config_encodes_unlabelled_images(gallery):
    """ReID pipelines pack labels; free images get 'unlabelled' ones."""
    model = init_model(CCAF_TINY, cfg_options=dict(MICRO))
    paths = sorted(str(p) for p in gallery.iterdir())
    feats = encode_images(model, paths, batch_size=4)
    assert feats.shape == (6, 64 + 48)
    assert torch.allclose(feats.norm(dim=1), torch.ones(6), atol=1e-5)
    # image-to-image search over a folder with the same model
    searcher = PersonReIdentifier(model)
    searcher.index_folder(str(gallery))
    result = searcher.query(paths[2], topk=3)
    assert len(result.paths) == 3
    assert osp.basename(result.paths[0]) != 'p2.png'  # the query is left out
