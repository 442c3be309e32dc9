""".dev_scripts/run_seeds.py: commands, aggregation, resume, real runs."""
import json
import math
import os
import os.path as osp
import statistics
import subprocess
import sys

import pytest

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SCRIPT = osp.join(ROOT, '.dev_scripts/run_seeds.py')
from helpers.tool_loader import load_tool  # noqa: E402

BASELINE = 'configs/baselines/clip-baseline_synthpedes-tiny.py'
ABLATION = 'configs/cfine/cfine_clip-tiny_synthpedes-tiny_ablation-baseline.py'

run_seeds = load_tool('.dev_scripts/run_seeds.py')

# Per (config file name, seed) metrics the fake runner "measures".
FAKE = {
    ('clip-baseline_synthpedes-tiny', 0): {
        't2i/R@1': 10.0,
        'cc/mAP': 1.0
    },
    ('clip-baseline_synthpedes-tiny', 1): {
        't2i/R@1': 12.5,
        'cc/mAP': 2.0
    },
    ('clip-baseline_synthpedes-tiny', 2): {
        't2i/R@1': 20.0,
        'cc/mAP': 6.0
    },
    ('cfine_clip-tiny_synthpedes-tiny_ablation-baseline', 0): {
        't2i/R@1': 1.0,
        'cc/mAP': 3.0
    },
    ('cfine_clip-tiny_synthpedes-tiny_ablation-baseline', 1): {
        't2i/R@1': 1.0,
        'cc/mAP': 3.0
    },
    ('cfine_clip-tiny_synthpedes-tiny_ablation-baseline', 2): {
        't2i/R@1': 4.0,
        'cc/mAP': 0.0
    },
}


class FakeRunner:
    """Stands in for the subprocesses: writes what train/test.py would."""

    def __init__(self, fail_test_of=None):
        self.calls = []
        self.fail_test_of = fail_test_of

    def __call__(self, command, log_file, cwd):
        self.calls.append(command)
        args = command[command.index(sys.executable) + 1:]
        script, config = args[0], args[1]
        name = osp.splitext(osp.basename(config))[0]
        if script.endswith('train.py'):
            work = osp.join(cwd, args[args.index('--work-dir') + 1])
            ckpt = osp.join(work, 'epoch_1.pth')
            open(ckpt, 'w').close()
            with open(osp.join(work, 'last_checkpoint'), 'w') as f:
                f.write(ckpt)
            return
        seed_dir = osp.basename(osp.dirname(args[args.index('--out') + 1]))
        seed = int(seed_dir[len('seed'):])
        if (name, seed) == self.fail_test_of:
            raise RuntimeError('test crashed')
        out = osp.join(cwd, args[args.index('--out') + 1])
        with open(out, 'w') as f:
            json.dump(dict(FAKE[(name, seed)], extra=0.0), f)


def _study(tmp_path, runner, keys=('t2i/R@1', 'cc/mAP'), **kwargs):
    return run_seeds.run_study([BASELINE, ABLATION], [0, 1, 2],
                               str(tmp_path / 'study'),
                               keys=keys,
                               runner=runner,
                               cwd=ROOT,
                               **kwargs)


def _by_script(calls, name):
    return [c for c in calls if any(a.endswith(name) for a in c)]


def test_commands_and_aggregation(tmp_path):
    runner = FakeRunner()
    result = _study(
        tmp_path,
        runner,
        cfg_options=['train_cfg.max_epochs=1'],
        train_args=['--no-validate'],
        nice=5)
    trains = _by_script(runner.calls, 'train.py')
    tests = _by_script(runner.calls, 'test.py')
    assert len(trains) == len(tests) == 6
    # sequential, seed-major (all configs at seed 0 first), train then test
    order = [(osp.basename(c[c.index(sys.executable) + 2]),
              'train' if c in trains else 'test') for c in runner.calls]
    assert order[:2] == [(osp.basename(BASELINE), 'train'),
                         (osp.basename(BASELINE), 'test')]
    first = trains[0]
    assert first[:3] == ['nice', '-n', '5']
    assert first[first.index('--cfg-options') +
                 1:] == ['randomness.seed=0', 'train_cfg.max_epochs=1']
    assert '--no-validate' in first and '--resume' not in first
    assert first[first.index('--work-dir') + 1] == osp.join(
        str(tmp_path / 'study'), 'clip-baseline_synthpedes-tiny', 'seed0')
    assert [osp.basename(c[c.index(sys.executable) + 2]) for c in trains
            ] == [osp.basename(BASELINE),
                  osp.basename(ABLATION)] * 3
    assert ['randomness.seed=1' in c
            for c in trains] == [False, False, True, True, False, False]
    # the test runs on the checkpoint named by last_checkpoint
    assert tests[0][tests[0].index(sys.executable) +
                    3].endswith('seed0/epoch_1.pth')
    assert tests[0][-2:] == ['--cfg-options', 'train_cfg.max_epochs=1']

    summary = result['summary']['clip-baseline_synthpedes-tiny']
    r1 = summary['t2i/R@1']
    assert r1['values'] == [10.0, 12.5, 20.0]
    assert r1['mean'] == pytest.approx(42.5 / 3)
    # sample std: sqrt(sum((x - mean)^2) / (n - 1))
    mean = 42.5 / 3
    expected = math.sqrt(sum((x - mean)**2 for x in (10, 12.5, 20)) / 2)
    assert r1['std'] == pytest.approx(expected)
    assert r1['std'] == pytest.approx(statistics.stdev([10, 12.5, 20]))
    assert summary['cc/mAP']['mean'] == pytest.approx(3.0)
    assert summary['cc/mAP']['std'] == pytest.approx(math.sqrt(7))
    abl = result['summary'][
        'cfine_clip-tiny_synthpedes-tiny_ablation-baseline']
    assert abl['t2i/R@1']['mean'] == pytest.approx(2.0)
    assert abl['t2i/R@1']['std'] == pytest.approx(math.sqrt(3))
    assert result['runs']['clip-baseline_synthpedes-tiny']['1'][
        't2i/R@1'] == 12.5
    assert 'extra' not in result['runs']['clip-baseline_synthpedes-tiny']['1']
    assert result['budget']['clip-baseline_synthpedes-tiny'] == dict(
        max_epochs=1, batch_size=64, optimizer='AdamW', lr=1e-3)

    table = run_seeds.to_markdown(result)
    assert '| config | n | t2i/R@1 | cc/mAP |' in table
    assert ('| `clip-baseline_synthpedes-tiny` | 3 | 14.17 ± 5.20 | '
            '3.00 ± 2.65 |') in table
    assert '2.00 ± 1.73' in table


def test_resume_skips_finished_runs(tmp_path):
    first = FakeRunner(
        fail_test_of=('cfine_clip-tiny_synthpedes-tiny_'
                      'ablation-baseline', 1))
    updates = []
    with pytest.raises(RuntimeError, match='test crashed'):
        _study(
            tmp_path,
            first,
            on_update=lambda r: updates.append({
                k: v['t2i/R@1']['n']
                for k, v in r['summary'].items()
            }))
    # seed 0 of both and seed 1 of the baseline finished; the ablation's
    # seed 1 trained but its test failed
    assert len(_by_script(first.calls, 'train.py')) == 4
    assert [list(u.values()) for u in updates] == [[1], [1, 1], [2, 1]]

    second = FakeRunner()
    result = _study(tmp_path, second)
    trains = _by_script(second.calls, 'train.py')
    # ablation seed 1 has a checkpoint but no test JSON: resumed; seed 2 anew
    assert [('--resume' in c, 'randomness.seed=1' in c)
            for c in trains] == [(True, True), (False, False), (False, False)]
    assert len(_by_script(second.calls, 'test.py')) == 3
    # the wall time of a run done by an earlier call is kept
    assert result['runs']['clip-baseline_synthpedes-tiny']['0']['wall_s'] >= 0
    assert result['summary']['cfine_clip-tiny_synthpedes-tiny_ablation-'
                             'baseline']['cc/mAP']['mean'] == pytest.approx(2)

    third = FakeRunner()
    again = _study(tmp_path, third)
    assert third.calls == []
    assert again['summary'] == result['summary']


def test_skipped_run_without_wall_time(tmp_path):
    # a test JSON written by hand (or by an older study) has no wall time
    done = tmp_path / 'study' / 'clip-baseline_synthpedes-tiny' / 'seed0'
    done.mkdir(parents=True)
    (done / 'test_metrics.json').write_text(json.dumps({'t2i/R@1': 3.0}))
    runner = FakeRunner()
    result = run_seeds.run_study([BASELINE], [0],
                                 str(tmp_path / 'study'),
                                 keys=('t2i/R@1', ),
                                 runner=runner,
                                 cwd=ROOT)
    assert runner.calls == []
    assert result['runs']['clip-baseline_synthpedes-tiny']['0'] == {
        't2i/R@1': 3.0,
        'wall_s': None
    }


def test_missing_key_names_the_file(tmp_path):
    with pytest.raises(
            KeyError, match=r'test_metrics\.json lacks .*general/R@1'):
        _study(tmp_path, FakeRunner(), keys=('general/R@1', ))


def test_single_seed_and_bad_arguments(tmp_path):
    stats = run_seeds.summarize([7.0])
    assert stats['mean'] == 7.0 and stats['std'] is None
    assert run_seeds.to_markdown(
        dict(keys=['k'], seeds=[0], summary={'a': {
            'k': stats
        }}, command='')).count('| `a` | 1 | 7.00 |') == 1
    with pytest.raises(ValueError, match='distinct file names'):
        run_seeds.run_study([BASELINE, BASELINE], [0],
                            str(tmp_path),
                            runner=FakeRunner(),
                            cwd=ROOT)
    with pytest.raises(FileNotFoundError, match='nowhere.py'):
        run_seeds.run_study(['configs/nowhere.py'], [0],
                            str(tmp_path),
                            runner=FakeRunner(),
                            cwd=ROOT)
    with pytest.raises(SystemExit):
        run_seeds.parse_args(
            [BASELINE, '--work-dir', 'w', '--seeds', '1', '1'])


@pytest.mark.slow
def test_two_real_runs_of_the_tiny_baseline(tmp_path):
    """tools/train.py + tools/test.py for real, on a 4-identity dataset."""
    from mmreid_synth import generate_synth_pedes
    root = str(tmp_path / 'synth')
    generate_synth_pedes(
        root, seed=1, train_ids=4, val_ids=2, test_ids=2, images_per_id=2)
    work = str(tmp_path / 'study')
    options = [
        f'train_dataloader.dataset.data_root={root}',
        f'test_dataloader.dataset.data_root={root}',
        'train_dataloader.batch_size=16', 'model.id_head.num_classes=4',
        'train_cfg.max_epochs=1', 'default_hooks.logger.interval=1'
    ]
    cmd = [
        sys.executable, SCRIPT, BASELINE, '--work-dir', work, '--seeds', '0',
        '1', '--train-args=--no-validate', '--cfg-options', *options
    ]
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert 'study: OMP_NUM_THREADS=1 python .dev_scripts/run_seeds.py' \
        in proc.stdout
    summary = json.load(open(osp.join(work, 'summary.json')))
    runs = summary['runs']['clip-baseline_synthpedes-tiny']
    values = []
    for seed in ('0', '1'):
        metrics = json.load(
            open(
                osp.join(work, 'clip-baseline_synthpedes-tiny', f'seed{seed}',
                         'test_metrics.json')))
        assert runs[seed]['t2i/R@1'] == metrics['t2i/R@1']
        values.append(metrics['t2i/R@1'])
    stats = summary['summary']['clip-baseline_synthpedes-tiny']['t2i/R@1']
    assert stats['mean'] == pytest.approx(sum(values) / 2)
    assert stats['std'] == pytest.approx(abs(values[0] - values[1]) / 2**0.5)
    # the two seeds trained differently (the seed reached the run)
    ckpts = [
        osp.join(work, 'clip-baseline_synthpedes-tiny', f'seed{s}',
                 'epoch_1.pth') for s in (0, 1)
    ]
    import torch
    from mmreid_clip.safe_load import safe_torch_load
    w0, w1 = (
        safe_torch_load(c)['state_dict']['image_encoder.visual.conv1.weight']
        for c in ckpts)
    assert not torch.equal(w0, w1)
    assert open(osp.join(work, 'summary.md')).read().startswith(
        '| config | n | t2i/R@1 | t2i/R@5 | t2i/R@10 | t2i/mAP |')
    # a second call finds everything done and trains nothing
    proc = subprocess.run(
        cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count('done already') == 2
    assert 'train.py' not in proc.stdout.replace('run_seeds.py', '')
