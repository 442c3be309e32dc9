"""Config values of the wrong kind are named by their key before anything
is built (docs/reliability.md, section 2)."""
import os.path as osp
import runpy
import sys

import pytest
from mmengine.config import Config, DictAction

from mmreid_clip.utils.config_check import (ConfigValueError,
                                            check_config_keys)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
TINY = osp.join(ROOT, 'configs/baselines/clip-baseline_synthpedes-tiny.py')


def _with_options(*options):
    cfg = Config.fromfile(TINY)
    parsed = {}
    for option in options:
        key, value = option.split('=', 1)
        parsed[key] = DictAction._parse_iterable(value)
    cfg.merge_from_dict(parsed)
    return cfg


@pytest.mark.parametrize('option, expected', [
    ('optim_wrapper.optimizer.lr=abc',
     r"optim_wrapper\.optimizer\.lr='abc' must be a number"),
    ('randomness.seed=abc', r"randomness\.seed='abc' must be an integer"),
    ('randomness.seed=1.5', r'randomness\.seed=1\.5 must be an integer'),
    ('train_cfg.max_epochs=six',
     r"train_cfg\.max_epochs='six' must be an integer"),
    ('train_dataloader.batch_size=8x',
     r"train_dataloader\.batch_size='8x' must be an integer"),
    ('param_scheduler.1.eta_min=small',
     r"param_scheduler\[1\]\.eta_min='small' must be a number"),
    ('optim_wrapper.optimizer.betas=(0.9,x)',
     r'optim_wrapper\.optimizer\.betas=.* must be numbers'),
    ('randomness.deterministic=yes',
     r"randomness\.deterministic='yes' must be True or False"),
])
def test_wrong_kinds_name_the_key(option, expected):
    with pytest.raises(ConfigValueError, match=expected):
        check_config_keys(_with_options(option))


def test_right_kinds_pass():
    check_config_keys(
        _with_options('optim_wrapper.optimizer.lr=3e-4', 'randomness.seed=7',
                      'randomness.seed=None'))


def test_train_tool_names_the_key_before_building(monkeypatch, tmp_path):
    monkeypatch.setenv('LOCAL_RANK', '0')
    monkeypatch.setattr(sys, 'argv', [
        'train.py', TINY, '--work-dir',
        str(tmp_path / 'work'), '--cfg-options',
        'optim_wrapper.optimizer.lr=abc', 'randomness.seed=abc'
    ])
    with pytest.raises(ConfigValueError) as err:
        runpy.run_path(osp.join(ROOT, 'tools/train.py'), run_name='__main__')
    assert "optim_wrapper.optimizer.lr='abc'" in str(err.value)
    assert "randomness.seed='abc'" in str(err.value)
    assert not osp.exists(tmp_path / 'work')
