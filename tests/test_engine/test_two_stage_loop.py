"""CLIP-ReID / CCAF's two-stage loop end to end on a small SynthCC.

Micro CLIP, 64x32 images, one stage-1 and one stage-2 epoch: the loop
caches features, switches stages, evaluates with ReIDMetric, and a run
resumed from the stage-1 checkpoint ends exactly where an uninterrupted run
ends (the stage boundary is resumable).
"""
import os.path as osp

import pytest
import torch
from helpers.two_stage_setup import BASELINE, SMALL, TINY, small_cfg
from mmengine.runner import Runner

pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def synth_cc(tmp_path_factory):
    from mmreid_synth import generate_synth_cc
    root = tmp_path_factory.mktemp('synthcc')
    generate_synth_cc(str(root), seed=3, **SMALL)
    return str(root / 'LTCC_ReID')


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


def test_max_iters_recounted_with_each_stage2_epoch_length():
    """'exhaust' sampling varies the epoch's length; the total follows."""
    from mmreid_clip.engine.runner.two_stage_loop import \
        TwoStageEpochBasedTrainLoop

    class Loader:
        def __init__(self):
            self.length = 7

        def __len__(self):
            return self.length

    loop = object.__new__(TwoStageEpochBasedTrainLoop)
    loop.dataloader = Loader()
    loop._max_epochs, loop._epoch, loop._iter = 6, 3, 40
    loop._recount_max_iters()
    assert loop.max_iters == 40 + 3 * 7
    loop.dataloader.length, loop._epoch, loop._iter = 5, 5, 54
    loop._recount_max_iters()
    assert loop.max_iters == 54 + 1 * 5
