"""The CFine paper configs: official LR trace, parameter groups, fail-fast."""
import glob
import os.path as osp
import subprocess
import sys

import pytest
import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.optim import build_optim_wrapper

from mmreid_clip.registry import PARAM_SCHEDULERS

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
PAPER = osp.join(ROOT, 'configs/cfine/cfine_vit-b16-bert_cuhk-pedes.py')


class _NamedLikeCFine(nn.Module):
    """Stand-in with CFine's parameter names, one tensor per group."""

    def __init__(self):
        super().__init__()
        self.image_encoder = nn.Linear(2, 2, bias=False)
        self.text_encoder = nn.Linear(2, 2, bias=False)
        self.neck = nn.Linear(2, 2, bias=False)
        self.losses = nn.ModuleList([nn.Module()])
        self.losses[0].cmpc_W = nn.Parameter(torch.zeros(2, 3))


def test_lr_trace_matches_the_official_log():
    cfg = Config.fromfile(PAPER)
    model = _NamedLikeCFine()
    wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
    schedulers = [
        PARAM_SCHEDULERS.build(dict(s, optimizer=wrapper))
        for s in cfg.param_scheduler
    ]
    groups = {
        name: next(g for g in wrapper.optimizer.param_groups
                   if g['params'][0] is param)
        for name, param in model.named_parameters()
    }
    trace = {}
    for epoch in range(1, cfg.train_cfg.max_epochs + 1):
        trace[epoch] = {n: g['lr'] for n, g in groups.items()}
        for s in schedulers:  # ParamSchedulerHook: once per epoch
            s.step()
    new, enc = 'neck.weight', 'image_encoder.weight'
    # docs/methods/cfine.md §8 and issue: epoch 1 -> 1e-6/1e-7, 11 ->
    # 1e-4/1e-5,
    # 21 -> 1e-5/1e-6, 36 -> 1e-7/1e-8 (new / encoder groups)
    for epoch, (lr_new, lr_enc) in {1: (1e-6, 1e-7), 11: (1e-4, 1e-5),
                                    21: (1e-5, 1e-6), 26: (1e-6, 1e-7),
                                    36: (1e-7, 1e-8)}.items():
        assert trace[epoch][new] == pytest.approx(lr_new, rel=1e-6), epoch
        assert trace[epoch][enc] == pytest.approx(lr_enc, rel=1e-6), epoch
        assert trace[epoch]['text_encoder.weight'] == pytest.approx(lr_enc)
        assert trace[epoch]['losses.0.cmpc_W'] == pytest.approx(lr_new)
    assert trace[2][new] == pytest.approx(1.09e-5, rel=1e-6)
    assert trace[10][new] == pytest.approx(9.01e-5, rel=1e-6)
    # weight decay 4e-5 on the image tower only (cfine.md §8)
    assert groups[enc]['weight_decay'] == pytest.approx(4e-5)
    for name in ('text_encoder.weight', new, 'losses.0.cmpc_W'):
        assert groups[name]['weight_decay'] == 0


@pytest.mark.parametrize('path', sorted(glob.glob(
    osp.join(ROOT, 'configs/cfine/*.py'))))
def test_every_cfine_config_parses(path):
    cfg = Config.fromfile(path)
    assert cfg.model.type == 'CFine'
    assert cfg.default_scope == 'mmreid_clip'


def test_paper_config_without_data_or_weights_fails_fast(tmp_path):
    proc = subprocess.run(
        [sys.executable, 'tools/train.py', PAPER, '--work-dir',
         str(tmp_path)], cwd=ROOT,
        capture_output=True, text=True, timeout=300)
    assert proc.returncode != 0
    err = proc.stderr
    for name in ('data/CUHK-PEDES', 'checkpoints/clip/ViT-B-16.pt',
                 'checkpoints/bert-base-uncased',
                 'checkpoints/bert-base-uncased/vocab.txt'):
        assert name in err, name
    # one clear message, not a deep traceback from inside the model build
    assert 'The config names files that are not there' in err
    assert 'Traceback' not in err.split('FileNotFoundError')[-1]
