"""The SynthPedes study's `*_init` configs keep CFine's optimizer structure.

Builds each config's optim wrapper on the real tiny model (no weights, no
data, no training) and checks every parameter's learning rate and weight
decay, the warm-up trace and the absence of gradient clipping
(configs/cfine/README.md, "Measured by this implementation").
"""
import glob
import os.path as osp

import pytest
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

import mmreid_clip  # noqa: F401  (registers the models)
from mmreid_clip.registry import MODELS, PARAM_SCHEDULERS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFINE = osp.join(ROOT, 'configs/cfine/cfine_clip-tiny_synthpedes-tiny_init.py')
BASELINE = osp.join(ROOT,
                    'configs/baselines/clip-baseline_synthpedes-tiny_init.py')
CFINE_V2 = osp.join(ROOT, 'configs/cfine/cfine_clip-tiny-p8_synthpedes-v2.py')
BASELINE_V2 = osp.join(
    ROOT, 'configs/baselines/clip-baseline_clip-tiny-p8_synthpedes-v2.py')
# Study 2 and Study 3 (SynthPedes v2, same recipe): the four CFine rows
# (full + 3 ablations) and the baseline of each
CONFIGS = sorted(glob.glob(CFINE.replace('_init.py', '_init*.py'))) + [
    BASELINE
] + sorted(glob.glob(CFINE_V2.replace('.py', '*.py'))) + [BASELINE_V2]
ENCODERS = ('image_encoder.', 'text_encoder.')
LR_NEW = 1e-4  # the official rate of the new parameters
WARMUP = 25
ITERS = 2 * 63  # 2 epochs x 63 iterations of batch 64


def _build(path):
    cfg = Config.fromfile(path)
    for tower in ('image_encoder', 'text_encoder'):
        cfg.model[tower]['pretrained'] = None  # no init file needed here
    model = MODELS.build(cfg.model)
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    groups = {}
    for name, param in model.named_parameters():
        if not param.requires_grad:  # the BN necks' frozen biases
            continue
        matches = [g for g in wrapper.optimizer.param_groups
                   if any(p is param for p in g['params'])]
        assert len(matches) == 1, name
        groups[name] = matches[0]
    return cfg, model, wrapper, groups


def test_the_five_rows_of_each_study_are_found():
    assert len(CONFIGS) == 10


def test_study3_rows_differ_from_study2_only_in_data_arch_and_init():
    for old, new in zip(CONFIGS[:5], CONFIGS[5:]):
        a, b = Config.fromfile(old), Config.fromfile(new)
        assert a.optim_wrapper == b.optim_wrapper
        assert a.param_scheduler == b.param_scheduler
        assert a.train_cfg == b.train_cfg
        assert a.train_dataloader.batch_size == b.train_dataloader.batch_size
        assert b.train_dataloader.dataset.data_root == 'data/synth-pedes-v2'
        assert b.test_dataloader.dataset.data_root == 'data/synth-pedes-v2'
        for tower in ('image_encoder', 'text_encoder'):
            assert b.model[tower].arch == 'clip-tiny-p8'
            assert b.model[tower].pretrained == \
                'checkpoints/synth-clip/clip-tiny-p8-synth.pth'
            am, bm = dict(a.model[tower]), dict(b.model[tower])
            for key in ('arch', 'pretrained'):
                am.pop(key), bm.pop(key)
            assert am == bm
        ma, mb = dict(a.model), dict(b.model)
        for key in ('image_encoder', 'text_encoder'):
            ma.pop(key), mb.pop(key)
        assert ma == mb


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_param_groups_follow_cfine(path):
    cfg, model, wrapper, groups = _build(path)
    # the official code: torch Adam (coupled L2), no gradient clipping
    assert cfg.optim_wrapper.optimizer.type == 'Adam'
    assert 'clip_grad' not in cfg.optim_wrapper
    assert not getattr(wrapper, 'clip_grad_kwargs', None)
    assert cfg.train_cfg.max_epochs == 2
    assert cfg.train_dataloader.batch_size == 64
    n_new = 0
    for name, group in groups.items():
        if name.startswith('image_encoder.'):
            # the official image-tower group: lr / 10 and L2 4e-5 on every
            # tensor of it, biases and norms included
            assert group['lr'] == pytest.approx(0.1 * LR_NEW), name
            assert group['weight_decay'] == pytest.approx(4e-5), name
        elif name.startswith('text_encoder.'):
            assert group['lr'] == pytest.approx(0.1 * LR_NEW), name
            assert group['weight_decay'] == 0, name
        else:  # MGF, BN necks, CMPC W, ID head, InfoNCE temperature
            n_new += 1
            assert group['lr'] == pytest.approx(LR_NEW), name
            assert group['weight_decay'] == 0, name
    assert n_new > 0


@pytest.mark.parametrize('path', CONFIGS, ids=osp.basename)
def test_warmup_is_linear_from_one_hundredth_then_flat(path):
    cfg, model, wrapper, groups = _build(path)
    schedulers = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper))
        for s in cfg.param_scheduler
    ]
    assert all(not s.by_epoch for s in schedulers)  # stepped per iteration
    enc = next(n for n in groups if n.startswith('image_encoder.'))
    new = next(n for n in groups if not n.startswith(ENCODERS))
    trace = []
    for _ in range(ITERS):
        trace.append((groups[new]['lr'], groups[enc]['lr']))
        for s in schedulers:
            s.step()
    for i, (lr_new, lr_enc) in enumerate(trace):
        factor = 0.01 + 0.99 * min(i, WARMUP) / WARMUP
        assert lr_new == pytest.approx(LR_NEW * factor, rel=1e-6), i
        # the towers stay at one tenth of the new parameters throughout
        assert lr_enc == pytest.approx(0.1 * lr_new, rel=1e-6), i
    assert trace[0][0] == pytest.approx(1e-6)
    assert trace[-1][0] == pytest.approx(LR_NEW)


def test_baseline_and_cfine_share_the_recipe():
    base, cfine = Config.fromfile(BASELINE), Config.fromfile(CFINE)
    assert base.optim_wrapper == cfine.optim_wrapper
    assert base.param_scheduler == cfine.param_scheduler
    assert base.train_cfg == cfine.train_cfg
    assert (base.model.image_encoder.pretrained ==
            cfine.model.image_encoder.pretrained)
