"""ReIDDataPreprocessor: BGR->RGB and normalisation of every image view."""
import pytest
import torch

from mmreid_clip.models.utils import ReIDDataPreprocessor
from mmreid_clip.registry import MODELS


def bgr_batch(b=2, h=4, w=2):
    x = torch.zeros(b, 3, h, w, dtype=torch.uint8)
    x[:, 0] = 255  # blue, first in BGR
    x[:, 1] = 51  # green
    return x


def test_default_is_clip_reid_half_half_on_every_view():
    pre = MODELS.build(dict(type='ReIDDataPreprocessor'))
    assert isinstance(pre, ReIDDataPreprocessor)
    shield = bgr_batch()
    shield[:, :, :2] = 0  # a filled (black) shielded region
    data = dict(
        inputs=dict(
            images=bgr_batch(),
            shield_images=shield,
            clothes_images=bgr_batch()),
        data_samples=['s0', 's1'])
    out = pre(data)
    assert set(out['inputs']) == {'images', 'shield_images', 'clothes_images'}
    assert out['data_samples'] == ['s0', 's1']
    for key, img in out['inputs'].items():
        assert img.dtype == torch.float32 and img.shape == (2, 3, 4, 2), key
    img = out['inputs']['images']
    # RGB order after the flip: red 0 -> -1, green 51 -> -0.6, blue 255 -> 1
    assert torch.allclose(img[:, 0], torch.tensor(-1.0))
    assert torch.allclose(img[:, 1], torch.tensor(51 / 127.5 - 1))
    assert torch.allclose(img[:, 2], torch.tensor(1.0))
    # black fill normalises to -1 (docs/methods/ccaf.md §6.2, default v = 0)
    assert torch.allclose(out['inputs']['shield_images'][:, :, :2],
                          torch.tensor(-1.0))
    assert torch.allclose(out['inputs']['shield_images'][:, 2, 2:],
                          torch.tensor(1.0))


def test_custom_mean_std_and_no_flip():
    pre = ReIDDataPreprocessor(
        mean=(10., 20., 30.), std=(2., 4., 5.), to_rgb=False)
    out = pre(dict(inputs=dict(images=bgr_batch())))
    img = out['inputs']['images']
    # no flip: channel 0 stays the 255 plane, normalised with mean[0]/std[0]
    assert torch.allclose(img[:, 0], torch.tensor((255 - 10) / 2))
    assert torch.allclose(img[:, 1], torch.tensor((51 - 20) / 4))
    assert torch.allclose(img[:, 2], torch.tensor(-30 / 5))


def test_bad_inputs_name_the_key():
    pre = ReIDDataPreprocessor()
    with pytest.raises(ValueError, match=r"inputs\['shield_images'\]"):
        pre(
            dict(
                inputs=dict(
                    images=bgr_batch(), shield_images=torch.zeros(2, 4, 4))))
    with pytest.raises(TypeError, match='dict of image views'):
        pre(dict(inputs=bgr_batch()))
    with pytest.raises(ValueError, match='3 values'):
        ReIDDataPreprocessor(mean=(1, 2))
    with pytest.raises(ValueError, match='positive'):
        ReIDDataPreprocessor(std=(1, 0, 1))
