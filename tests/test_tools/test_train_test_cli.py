"""End-to-end runs of tools/train.py, tools/test.py and dist_train.sh.

A tiny SynthPedes split and the tiny demo config: a couple of iterations per
run, so the whole file stays within a minute or two on 2 cores.
"""
import json
import os
import os.path as osp
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
CFG = osp.join(ROOT, 'configs/baselines/clip-baseline_synthpedes-tiny.py')
pytestmark = pytest.mark.slow


@pytest.fixture(scope='module')
def synth_root(tmp_path_factory):
    from mmreid_synth import generate_synth_pedes
    root = str(tmp_path_factory.mktemp('synth') / 'synth-pedes')
    generate_synth_pedes(
        root, seed=1, train_ids=8, val_ids=3, test_ids=3, images_per_id=2)
    return root


def _options(root, work_dir, epochs=1):
    # val runs on the test split so that tools/test.py can be compared
    return [
        '--work-dir', work_dir, '--cfg-options',
        f'train_dataloader.dataset.data_root={root}',
        f'val_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        'val_dataloader.dataset.split=test', 'train_dataloader.batch_size=16',
        'model.id_head.num_classes=8', f'train_cfg.max_epochs={epochs}',
        'train_cfg.val_interval=1', 'default_hooks.logger.interval=1'
    ]


def _run(args, extra_env=None):
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env.update(extra_env or {})
    proc = subprocess.run(
        args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return proc.stdout + proc.stderr


def _last_val_metrics(work_dir):
    logs = sorted(
        osp.join(dp, f) for dp, _, fs in os.walk(work_dir) for f in fs
        if f.endswith('.json') and f != 'test_metrics.json'
        and 'vis_data' in dp and f != 'scalars.json')
    rows = [json.loads(line) for line in open(logs[-1])]
    return [r for r in rows if 't2i/R@1' in r][-1]


def test_train_test_resume(synth_root, tmp_path):
    work = str(tmp_path / 'work')
    py = sys.executable
    out = _run([py, 'tools/train.py', CFG] + _options(synth_root, work))
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    assert 't2i/R@1' in out
    val = _last_val_metrics(work)

    metrics_file = str(tmp_path / 'test_metrics.json')
    _run([
        py, 'tools/test.py', CFG,
        osp.join(work, 'epoch_1.pth'), '--out', metrics_file, '--work-dir',
        str(tmp_path / 'test'), '--cfg-options',
        f'test_dataloader.dataset.data_root={synth_root}',
        'model.id_head.num_classes=8'
    ])
    test = json.load(open(metrics_file))
    for key in ('t2i/R@1', 't2i/R@5', 't2i/R@10', 't2i/mAP', 't2i/mINP'):
        assert test[key] == pytest.approx(val[key], abs=1e-6), key

    # --resume continues from the last checkpoint of the work dir
    out = _run([py, 'tools/train.py', CFG, '--resume'] +
               _options(synth_root, work, epochs=2))
    assert 'resumed epoch: 1' in out
    assert osp.isfile(osp.join(work, 'epoch_2.pth'))


def test_missing_data_and_weights_fail_fast(tmp_path):
    out = subprocess.run([
        sys.executable, 'tools/train.py',
        osp.join(ROOT,
                 'configs/baselines/clip-baseline_vit-b16_cuhk-pedes.py'),
        '--work-dir', str(tmp_path / 'w'), '--cfg-options',
        f'train_dataloader.dataset.data_root={tmp_path}/nowhere'
    ], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    err = out.stderr
    assert 'nowhere' in err and 'checkpoints/clip/ViT-B-16.pt' in err
    assert 'FileNotFoundError' in err


@pytest.mark.skipif(sys.platform != 'linux', reason='torchrun with gloo')
def test_distributed_two_processes_cpu(synth_root, tmp_path):
    work = str(tmp_path / 'dist')
    env = dict(PYTHON=sys.executable, PORT=str(29500 + os.getpid() % 1000))
    out = _run(['bash', 'tools/dist_train.sh', CFG, '2'] +
               _options(synth_root, work), extra_env=env)
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))
    assert 't2i/R@1' in out


def test_amp_on_cpu_uses_bf16_autocast(synth_root, tmp_path):
    if __import__('torch').cuda.is_available():
        pytest.skip('checks the CPU path of --amp')
    work = str(tmp_path / 'amp')
    _run([sys.executable, 'tools/train.py', CFG, '--amp', '--no-validate'] +
         _options(synth_root, work))
    dumped = open(osp.join(work, osp.basename(CFG))).read()
    assert "type='CPUAutocastOptimWrapper'" in dumped
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))


def test_apply_amp_switches_every_wrapper_of_a_multi_optimizer_config():
    from mmengine.config import Config

    from mmreid_clip.utils import apply_amp
    cfg = Config.fromfile('configs/ccaf/ccaf_clip-tiny_synthcc-tiny.py')
    ow = cfg.optim_wrapper.to_dict()
    want = ('AmpOptimWrapper' if __import__('torch').cuda.is_available() else
            'CPUAutocastOptimWrapper')
    apply_amp(ow, dtype='bfloat16')
    for key in ('prompt', 'encoder', 'clothes_prompt'):
        assert ow[key]['type'] == want and ow[key]['dtype'] == 'bfloat16'
    assert ow['constructor'] == 'MultiOptimWrapperConstructor'
    # a plain wrapper, and one that cannot be switched
    single = apply_amp(dict(optimizer=dict(type='AdamW', lr=1e-3)))
    assert single['type'] == want
    with pytest.raises(ValueError, match='ZeroRedundancyOptimizer'):
        apply_amp(dict(type='ZeroRedundancyOptimizer'))
    with pytest.raises(ValueError, match='no wrapper entry'):
        apply_amp(dict(constructor='MultiOptimWrapperConstructor', a=None))
