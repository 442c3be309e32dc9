"""RandomErasing: mmpretrain's by default, timm's with impl='timm'."""
import random

import numpy as np
import pytest
import torch
from mmpretrain.datasets.transforms import \
    RandomErasing as MMPretrainRandomErasing
from timm.data.random_erasing import RandomErasing as TimmRandomErasing

from mmreid_clip.datasets.transforms import RandomErasing
from mmreid_clip.registry import TRANSFORMS
from mmreid_clip.utils import register_all_modules

MEAN = STD = (127.5, 127.5, 127.5)
H, W = 64, 32


def timm_cfg(**kw):
    cfg = dict(type='RandomErasing', erase_prob=0.5, min_area_ratio=0.02,
               max_area_ratio=1 / 3, mode='pixel', impl='timm',
               fill_color=MEAN, fill_std=STD)
    cfg.update(kw)
    return cfg


def build(cfg):
    register_all_modules()
    return TRANSFORMS.build(cfg)


def test_registered_name_resolves_to_ours_and_default_is_mmpretrain():
    t = build(dict(type='RandomErasing', erase_prob=1.0, mode='rand',
                   fill_std=(40, 40, 40)))
    assert isinstance(t, RandomErasing) and t.impl == 'mmpretrain'
    ref = MMPretrainRandomErasing(erase_prob=1.0, mode='rand',
                                  fill_std=(40, 40, 40))
    img = np.random.default_rng(0).integers(0, 256, (H, W, 3), np.uint8)
    np.random.seed(3)
    ours = t(dict(img=img.copy()))['img']
    np.random.seed(3)
    theirs = ref(dict(img=img.copy()))['img']
    assert ours.dtype == np.uint8 and np.array_equal(ours, theirs)


def test_timm_impl_is_timm_on_the_normalised_image():
    """Same python random state: the same rectangle and fill as timm's own
    transform on the normalised tensor, mapped back to 0-255 as float32."""
    t = build(timm_cfg(erase_prob=1.0))
    img = np.random.default_rng(1).integers(0, 256, (H, W, 3), np.uint8)
    ref = TimmRandomErasing(probability=1.0, min_area=0.02, max_area=1 / 3,
                            mode='pixel', device='cpu')
    for seed in range(5):
        random.seed(seed)
        torch.manual_seed(seed)
        ours = t(dict(img=img.copy()))['img']
        random.seed(seed)
        torch.manual_seed(seed)
        x = torch.from_numpy((img.astype(np.float32) - 127.5) / 127.5)
        expected = ref(x.permute(2, 0, 1).contiguous()).permute(1, 2, 0)
        assert ours.dtype == np.float32
        np.testing.assert_allclose((ours - 127.5) / 127.5, expected.numpy(),
                                   rtol=0, atol=1e-6)


def test_timm_impl_statistics_differ_from_mmpretrain_clipping():
    """Erased values are N(0, 1) in normalised units, unclipped; the
    rectangle never spans the full width (timm redraws instead of
    clipping), and the output is always float32 so batches stack."""
    t = build(timm_cfg())
    grey = np.full((256, 128, 3), 128, np.uint8)
    random.seed(0)
    torch.manual_seed(0)
    hits, values, full_width = 0, [], 0
    for _ in range(400):
        out = t(dict(img=grey.copy()))['img']
        assert out.dtype == np.float32
        erased = (out != 128).any(-1)
        if erased.any():
            hits += 1
            values.append((out[erased] - 127.5) / 127.5)
            full_width += int(erased.any(0).all())
    v = np.concatenate(values).ravel()
    assert 0.4 < hits / 400 < 0.6
    assert abs(v.mean()) < 0.05 and abs(v.std() - 1) < 0.05
    assert np.abs(v).max() > 3  # beyond the 0-255 clip limits (|z| = 1)
    assert full_width == 0


def test_timm_impl_needs_the_normalisation_and_a_known_mode():
    with pytest.raises(ValueError, match='fill_std'):
        build(timm_cfg(fill_std=None))
    with pytest.raises(ValueError, match="mode 'const', 'rand' or 'pixel'"):
        build(timm_cfg(mode='uniform'))
    with pytest.raises(ValueError, match='impl must be one of'):
        build(timm_cfg(impl='torchvision'))
