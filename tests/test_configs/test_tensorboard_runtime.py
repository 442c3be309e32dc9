"""The TensorBoard opt-in: off by default, on with runtime_tensorboard.py."""
import glob
import importlib.util
import json
import os.path as osp

import pytest
from mmengine.config import Config

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
BASE = osp.join(ROOT, 'configs/_base_')
BASELINE = osp.join(ROOT, 'configs/baselines/clip-baseline_synthpedes-tiny.py')
BOTH = ['LocalVisBackend', 'TensorboardVisBackend']


def _backends(cfg):
    return [b['type'] for b in cfg.visualizer.vis_backends]


def _tb_config(tmp_path):
    path = tmp_path / 'tb_cfg.py'
    path.write_text(f'''_base_ = [r'{BASE}/datasets/synth_pedes.py',
          r'{BASE}/runtime_tensorboard.py']
''')
    return Config.fromfile(str(path))


def test_default_runtime_stays_json_only():
    assert _backends(Config.fromfile(BASELINE)) == ['LocalVisBackend']
    assert _backends(Config.fromfile(osp.join(
        BASE, 'default_runtime.py'))) == ['LocalVisBackend']


def test_fragment_adds_tensorboard_and_keeps_the_rest(tmp_path):
    cfg = _tb_config(tmp_path)
    assert _backends(cfg) == BOTH
    assert cfg.visualizer.type == 'Visualizer'
    default = Config.fromfile(osp.join(BASE, 'default_runtime.py'))
    for key in ('default_scope', 'default_hooks', 'log_processor', 'env_cfg',
                'randomness'):
        assert cfg[key] == default[key], key


def test_override_in_an_inheriting_config(tmp_path):
    """The line default_runtime.py documents for configs built on others."""
    path = tmp_path / 'child.py'
    path.write_text(f'''_base_ = [r'{BASELINE}']
visualizer = dict(vis_backends=[dict(type='LocalVisBackend'),
                                dict(type='TensorboardVisBackend')])
''')
    assert _backends(Config.fromfile(str(path))) == BOTH


@pytest.mark.skipif(
    importlib.util.find_spec('tensorboard') is None,
    reason='the tensorboard extra is not installed')
def test_visualizer_writes_events_and_json(tmp_path):
    from mmreid_clip.registry import VISUALIZERS
    cfg = _tb_config(tmp_path).visualizer
    cfg.update(name='tb_opt_in_test', save_dir=str(tmp_path / 'run'))
    visualizer = VISUALIZERS.build(cfg)
    visualizer.add_scalars({'loss': 1.5, 't2i/R@1': 12.0}, step=3)
    visualizer.close()
    assert glob.glob(
        str(tmp_path / 'run' / '**' / 'events.out.*'), recursive=True)
    # the Runner passes <work_dir>/<timestamp>; the backends add vis_data/
    row = json.loads(
        (tmp_path / 'run' / 'vis_data' / 'scalars.json').read_text())
    assert row == {'loss': 1.5, 't2i/R@1': 12.0, 'step': 3}
