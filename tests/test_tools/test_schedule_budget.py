"""``--epochs`` rescales every schedule; a schedule that does not fit the
budget is named at start-up; ``vis_scheduler.py`` draws both stages.

Config-level checks run in-process in milliseconds; one tiny training run
checks ``tools/train.py --epochs`` end to end.
"""
import csv
import os
import os.path as osp
import subprocess
import sys
from types import SimpleNamespace

import pytest
from mmengine.config import Config

from mmreid_clip.engine import ScheduleBudgetHook
from mmreid_clip.utils import rescale_epochs, schedule_budget_problems

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tool_loader import load_tool  # noqa: E402

TINY = osp.join(ROOT, 'configs/baselines/clip-baseline_synthpedes-tiny.py')
CCAF_TINY = osp.join(ROOT, 'configs/ccaf/ccaf_clip-tiny_synthcc-tiny.py')
CCAF_LTCC = osp.join(ROOT, 'configs/ccaf/ccaf_vit-b16_ltcc.py')
CFINE = osp.join(ROOT, 'configs/cfine/cfine_vit-b16-bert_cuhk-pedes.py')


def _by_type(scheds, type_):
    found = [s for s in scheds if s['type'] == type_]
    assert len(found) == 1, scheds
    return found[0]


def test_single_stage_rescale_and_warning():
    cfg = Config.fromfile(TINY)
    assert schedule_budget_problems(cfg) == []
    # the README's old advice: shortening max_epochs alone
    cfg.train_cfg.max_epochs = 3
    problems = schedule_budget_problems(cfg)
    assert any('CosineAnnealingLR ends at epoch 6' in p and
               'after epoch 3' in p for p in problems), problems
    assert '--epochs' in problems[-1]

    cfg = Config.fromfile(TINY)
    changes = rescale_epochs(cfg, 3)
    assert cfg.train_cfg.max_epochs == 3 and cfg.max_epochs == 3
    cos = _by_type(cfg.param_scheduler, 'CosineAnnealingLR')
    warm = _by_type(cfg.param_scheduler, 'LinearLR')
    # whole epochs, the cosine still after the warm-up (1 of 6 -> 0.5 -> 1)
    assert (warm['begin'], warm['end']) == (0, 1)
    assert (cos['begin'], cos['end']) == (1, 3)
    assert cfg.train_cfg.val_interval == 1
    assert 'param_scheduler CosineAnnealingLR: end 6 -> 3' in changes
    assert schedule_budget_problems(cfg) == []

    # lengthening moves milestones and the warm-up with the budget
    cfg = Config.fromfile(CFINE)
    rescale_epochs(cfg, 100)
    step = _by_type(cfg.param_scheduler, 'MultiStepLR')
    assert step['milestones'] == [40, 50, 70] and step['end'] == 100
    assert _by_type(cfg.param_scheduler, 'LinearLR')['end'] == 22
    assert schedule_budget_problems(cfg) == []


def test_two_stage_rescale_and_warning():
    # the CCAF case: stages shortened by hand
    cfg = Config.fromfile(CCAF_TINY)
    cfg.train_cfg.update(stage1_epochs=2, max_epochs=6)
    problems = '\n'.join(schedule_budget_problems(cfg))
    assert 'prompt: TimmCosineLR ends at epoch 10' in problems
    assert 'across the end of stage 1' in problems
    assert 'encoder: LinearLR begins at epoch 10' in problems
    assert 'never runs' in problems
    # stage 1 shortened, budget kept: the encoder's warm-up comes late
    cfg = Config.fromfile(CCAF_TINY)
    cfg.train_cfg.stage1_epochs = 2
    problems = '\n'.join(schedule_budget_problems(cfg))
    assert 'encoder: its schedulers begin at epoch 10, after stage 2 starts' \
        in problems

    cfg = Config.fromfile(CCAF_TINY)
    rescale_epochs(cfg, 6, stage1_epochs=2)
    tc = cfg.train_cfg
    assert (tc.max_epochs, tc.stage1_epochs) == (6, 2)
    prompt = cfg.param_scheduler['prompt'][0]
    assert (prompt['begin'], prompt['end'], prompt['t_max']) == (0, 2, 2)
    assert prompt['warmup_t'] == 1
    enc = cfg.param_scheduler['encoder']
    warm = _by_type(enc, 'LinearLR')
    # 2 of 40 epochs -> 0.2, but a linear warm-up keeps 2 to reach its end
    assert (warm['begin'], warm['end']) == (2, 4)
    step = _by_type(enc, 'MultiStepLR')
    assert (step['begin'], step['end'], step['milestones']) == (2, 6, [3])
    # validation and the checkpoint every stage-2 length, as before
    assert tc.val_interval == 4
    assert cfg.default_hooks.checkpoint.interval == 4
    assert schedule_budget_problems(cfg) == []

    # proportional split by default (120 + 60 -> 8 + 4); the 10-epoch
    # warm-up keeps two epochs so that it still reaches its end factor
    cfg = Config.fromfile(CCAF_LTCC)
    rescale_epochs(cfg, 12)
    assert cfg.train_cfg.stage1_epochs == 8
    warm = _by_type(cfg.param_scheduler['encoder'], 'LinearLR')
    assert (warm['begin'], warm['end']) == (8, 10)
    assert schedule_budget_problems(cfg) == []
    with pytest.raises(ValueError, match='two-stage'):
        rescale_epochs(Config.fromfile(TINY), 3, stage1_epochs=1)
    with pytest.raises(ValueError, match='both stages'):
        rescale_epochs(Config.fromfile(CCAF_LTCC), 1)


def test_hook_logs_the_problems():
    cfg = Config.fromfile(TINY)
    cfg.train_cfg.max_epochs = 2
    warnings = []
    runner = SimpleNamespace(
        cfg=cfg, logger=SimpleNamespace(warning=warnings.append))
    ScheduleBudgetHook().before_train(runner)
    assert len(warnings) == 1
    assert 'CosineAnnealingLR ends at epoch 6' in warnings[0]
    warnings.clear()
    ScheduleBudgetHook().before_train(
        SimpleNamespace(cfg=Config.fromfile(TINY), logger=runner.logger))
    assert warnings == []


def test_vis_scheduler_draws_both_stages(tmp_path):
    tool = load_tool('tools/analysis/vis_scheduler.py')
    png, table = str(tmp_path / 'lr.png'), str(tmp_path / 'lr.csv')
    tool.main([
        CCAF_TINY, '--epochs', '6', '--stage1-epochs', '2',
        '--iters-per-epoch', '3', '--stage1-iters-per-epoch', '2',
        '--save-path', png, '--table', table
    ])
    assert osp.getsize(png) > 0
    rows = list(csv.DictReader(open(table)))
    assert len(rows) == 2 * 2 + 4 * 3
    assert [r['stage'] for r in rows] == ['1'] * 4 + ['2'] * 12
    cols = list(rows[0])
    prompt = next(c for c in cols if c.startswith('prompt:'))
    enc = [c for c in cols if c.startswith('encoder:')]
    assert len(enc) == 2  # weights, and the biases at 2x
    # the prompt rate moves in stage 1 only; the encoder warms up from
    # 0.1x at the first stage-2 iteration, then drops x0.1 at the milestone
    p = [float(r[prompt]) for r in rows]
    assert p[0] != p[2] and len(set(p[4:])) == 1
    e = [float(r[enc[0]]) for r in rows]
    assert e[4] == pytest.approx(3e-5) and e[7] == pytest.approx(3e-4)
    assert e[-1] == pytest.approx(3e-5)


def test_vis_scheduler_iteration_based_warmup(tmp_path):
    tool = load_tool('tools/analysis/vis_scheduler.py')
    result = tool.main([
        TINY, '--iters-per-epoch', '4', '--save-path',
        str(tmp_path / 'lr.png')
    ])
    (label, ) = result['lines']
    lrs = [r[label] for r in result['rows']]
    assert len(lrs) == 6 * 4
    # LinearLR converted to iterations: rises within the first epoch
    assert lrs[0] == pytest.approx(1e-4)
    assert lrs[0] < lrs[1] < lrs[2] < lrs[3] == pytest.approx(1e-3)
    assert lrs[5] < lrs[4]  # the cosine from epoch 2 on
    assert lrs[-1] < 1e-4


@pytest.mark.slow
def test_train_epochs_flag_end_to_end(tmp_path):
    from mmreid_synth import generate_synth_pedes
    root = str(tmp_path / 'synth')
    generate_synth_pedes(
        root, seed=1, train_ids=4, val_ids=2, test_ids=2, images_per_id=2)
    work = str(tmp_path / 'work')
    env = dict(os.environ, OMP_NUM_THREADS='1')
    proc = subprocess.run([
        sys.executable, 'tools/train.py', TINY, '--epochs', '1',
        '--no-validate', '--work-dir', work, '--data-root', root,
        '--cfg-options', 'train_dataloader.batch_size=8',
        'model.id_head.num_classes=4'
    ],
                          cwd=ROOT,
                          env=env,
                          capture_output=True,
                          text=True,
                          timeout=600)
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert '--epochs rescaled the config' in out
    assert 'CosineAnnealingLR: begin 1 -> 0, end 6 -> 1' in out
    assert 'does not fit the training budget' not in out
    dumped = Config.fromfile(osp.join(work, osp.basename(TINY)))
    assert _by_type(dumped.param_scheduler, 'CosineAnnealingLR')['end'] == 1
    assert osp.isfile(osp.join(work, 'epoch_1.pth'))


def test_two_stage_warns_on_epoch_schedulers_converted_to_iterations():
    cfg = Config.fromfile(CCAF_TINY)
    assert schedule_budget_problems(cfg) == []
    s1 = cfg.train_cfg.stage1_epochs
    cfg.param_scheduler.encoder[0].update(convert_to_iter_based=True)
    assert cfg.param_scheduler.encoder[0].begin == s1
    problems = schedule_budget_problems(cfg)
    assert any('encoder: LinearLR is by_epoch with convert_to_iter_based'
               in p and 'stage1_batch_size' in p for p in problems), problems
    # from epoch 0 to the end of training nothing depends on an epoch length
    cfg = Config.fromfile(CCAF_TINY)
    cfg.param_scheduler.clothes_prompt[0].update(
        convert_to_iter_based=True, begin=0,
        end=cfg.train_cfg.max_epochs)
    assert not any('convert_to_iter_based' in p
                   for p in schedule_budget_problems(cfg))
