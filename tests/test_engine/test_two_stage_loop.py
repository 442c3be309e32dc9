"""CLIP-ReID / CCAF's two-stage loop end to end on a small SynthCC.

Micro CLIP, 64x32 images, one stage-1 and one stage-2 epoch: the loop
caches features, switches stages, evaluates with ReIDMetric, and a run
resumed from the stage-1 checkpoint ends exactly where an uninterrupted run
ends (the stage boundary is resumable).
"""
import os.path as osp

import pytest
import torch
from mmengine.config import Config
from mmengine.runner import Runner

from mmreid_clip.compat import apply_patches
from mmreid_clip.utils import register_all_modules

pytestmark = pytest.mark.slow
ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'configs/ccaf/ccaf_clip-tiny_synthcc-tiny.py')
BASELINE = osp.join(ROOT,
                    'configs/ccaf/ccaf_clip-tiny_synthcc-tiny_ablation-'
                    'baseline.py')

SMALL = dict(
    train_ids=8,
    test_ids=4,
    outfits_per_id=2,
    cameras_per_outfit=2,
    frames_per_camera=2,
    num_cameras=4)


@pytest.fixture(scope='module')
def synth_cc(tmp_path_factory):
    from mmreid_synth import generate_synth_cc
    root = tmp_path_factory.mktemp('synthcc')
    generate_synth_cc(str(root), seed=3, **SMALL)
    return str(root / 'LTCC_ReID')


def small_cfg(base: str, data_root: str, work_dir: str,
              max_epochs: int = 2) -> Config:
    register_all_modules()
    apply_patches()  # safe checkpoint loading, as tools/train.py does
    cfg = Config.fromfile(base)
    # 64x32 inputs for the micro CLIP (patch 8): resize the 128x64 images
    for loader in ('train_dataloader', 'stage1_dataloader',
                   'test_dataloader', 'val_dataloader'):
        ds = cfg[loader].dataset
        ds.data_root = data_root
        for t in ds.pipeline:
            if t['type'] == 'Resize':
                t['scale'] = (32, 64)
            if t['type'] in ('JointRandomCrop', 'RandomCrop'):
                t['crop_size'] = (64, 32)
        cfg[loader].num_workers = 0
    cfg.train_dataloader.batch_size = 16
    cfg.train_dataloader.sampler.batch_size = 16
    m = cfg.model
    m.image_encoder.update(arch='clip-micro', pretrained=None,
                           img_size=(64, 32))
    m.text_encoder.update(arch='clip-micro', pretrained=None)
    m.head.in_channels = (64, 48)
    m.num_classes = SMALL['train_ids']
    if m.get('num_clothes'):
        m.num_clothes = SMALL['train_ids'] * SMALL['outfits_per_id']
    cfg.train_cfg.update(max_epochs=max_epochs, stage1_epochs=1,
                         stage1_batch_size=16, val_interval=1, val_begin=2)
    cfg.default_hooks.checkpoint.update(interval=1, max_keep_ckpts=3)
    cfg.default_hooks.logger.interval = 1
    cfg.randomness = dict(seed=0, deterministic=True)
    cfg.work_dir = work_dir
    cfg.launcher = 'none'
    return cfg


def final_metrics(runner: Runner) -> dict:
    return runner.val_loop.run()


def test_ccaf_two_stages_train_evaluate_and_resume(synth_cc, tmp_path):
    full = Runner.from_cfg(small_cfg(TINY, synth_cc, str(tmp_path / 'a')))
    full.train()
    # stage 2 switched on the identity text features; stage 1 learnt them
    model = full.model
    assert model._t_id is not None and model._t_id.shape == (8, 48)
    assert not model.id_prompt.ctx.requires_grad
    assert model.pid2clothes.sum() == 16  # 8 ids x 2 outfits
    metrics = final_metrics(full)
    for key in ('general/R@1', 'general/mAP', 'cc/R@1', 'cc/mAP'):
        assert 0 <= metrics[key] <= 100
    assert osp.isfile(tmp_path / 'a' / 'epoch_1.pth')
    assert osp.isfile(tmp_path / 'a' / 'epoch_2.pth')

    # interrupted at the stage boundary: a 1-epoch run, then --resume
    part = Runner.from_cfg(
        small_cfg(TINY, synth_cc, str(tmp_path / 'b'), max_epochs=1))
    part.train()
    del part
    cfg = small_cfg(TINY, synth_cc, str(tmp_path / 'b'))
    cfg.resume = True
    resumed = Runner.from_cfg(cfg)
    resumed.train()
    assert resumed.train_loop.epoch == 2
    for (name, p), (_, q) in zip(full.model.named_parameters(),
                                 resumed.model.named_parameters()):
        assert torch.equal(p, q), name
    again = final_metrics(resumed)
    for key, value in metrics.items():
        assert again[key] == pytest.approx(value, abs=1e-9), key


def test_clip_reid_baseline_runs_without_masks(synth_cc, tmp_path):
    cfg = small_cfg(BASELINE, synth_cc, str(tmp_path / 'base'))
    assert cfg.train_dataloader.dataset.with_mask is False
    runner = Runner.from_cfg(cfg)
    runner.train()
    metrics = final_metrics(runner)
    assert 'cc/mAP' in metrics and 'general/R@1' in metrics
