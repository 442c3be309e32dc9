import pytest
import torch

from mmreid_clip.models.utils.text_image_data_preprocessor import (CLIP_MEAN,
                                                                   CLIP_STD)
from mmreid_clip.registry import MODELS


def test_normalises_bgr_images_and_passes_texts():
    pre = MODELS.build(dict(type='TextImageDataPreprocessor'))
    bgr = torch.zeros(2, 3, 4, 2, dtype=torch.uint8)
    bgr[:, 0] = 255  # blue channel in BGR order
    texts = torch.randint(0, 100, (3, 7))
    out = pre(dict(inputs=dict(images=bgr, texts=texts), data_samples=[]))
    img = out['inputs']['images']
    assert img.dtype == torch.float32 and img.shape == (2, 3, 4, 2)
    # after the flip blue is the last (RGB) channel
    assert torch.allclose(img[:, 2], torch.tensor(
        (255 - CLIP_MEAN[2]) / CLIP_STD[2]))
    assert torch.allclose(img[:, 0], torch.tensor(-CLIP_MEAN[0] / CLIP_STD[0]))
    assert torch.equal(out['inputs']['texts'], texts)


def test_text_only_batch_and_bad_shapes():
    pre = MODELS.build(dict(type='TextImageDataPreprocessor'))
    out = pre(dict(inputs=dict(texts=torch.ones(2, 5, dtype=torch.long))))
    assert 'images' not in out['inputs']
    with pytest.raises(ValueError, match='N x 3 x H x W'):
        pre(dict(inputs=dict(images=torch.zeros(3, 4, 4))))
    with pytest.raises(ValueError, match='3 values'):
        MODELS.build(dict(type='TextImageDataPreprocessor', mean=(1, 2)))
