"""What a run tells its user: stage-aware iteration counts and ETA in the
two-stage loop, the first iteration logged at once, a short console start-up
with an honest device line, the torch thread choice, the progress bar only
in terminals."""
import glob
import io
import math
import os
import os.path as osp
import re

import pytest
import torch
from helpers.two_stage_setup import TINY, small_cfg
from mmengine.config import Config

from mmreid_clip.engine import ReIDRunner
from mmreid_clip.engine.progress import ProgressLine, interactive, progress
from mmreid_clip.utils import (choose_torch_threads, ensure_custom_hooks,
                               register_all_modules)

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
SMALL = dict(train_ids=4, test_ids=2, outfits_per_id=2, cameras_per_outfit=2,
             frames_per_camera=2, num_cameras=4)  # 32 training images


@pytest.fixture(scope='module')
def synth_cc(tmp_path_factory):
    from mmreid_synth import generate_synth_cc
    root = tmp_path_factory.mktemp('feedback_cc')
    generate_synth_cc(str(root), seed=3, **SMALL)
    return str(root / 'LTCC_ReID')


def _two_stage_cfg(data_root: str, work_dir: str) -> Config:
    cfg = small_cfg(TINY, data_root, work_dir, small=SMALL)
    for loader in ('train_dataloader', 'stage1_dataloader', 'test_dataloader',
                   'val_dataloader'):
        cfg[loader].persistent_workers = False
    # stage 1: 32 cached images in batches of 12 -> 3 iterations per epoch
    cfg.train_cfg.update(max_epochs=3, stage1_epochs=2, stage1_batch_size=12,
                         val_interval=10, val_begin=10)
    cfg.param_scheduler = None
    cfg.val_cfg = cfg.val_dataloader = cfg.val_evaluator = None
    cfg.default_hooks.checkpoint = dict(type='CheckpointHook', interval=10)
    cfg.default_hooks.logger.interval = 3
    ensure_custom_hooks(cfg, 'ProgressHook')
    return cfg


@pytest.mark.slow
def test_two_stage_counts_eta_and_first_line(synth_cc, tmp_path):
    runner = ReIDRunner.from_cfg(_two_stage_cfg(synth_cc, str(tmp_path)))
    stage2 = len(runner.train_dataloader)
    runner.train()
    loop = runner.train_loop
    assert loop.stage1_iters_per_epoch == math.ceil(32 / 12) == 3
    assert loop.max_iters == 2 * 3 + 1 * stage2 == runner.iter
    log = open(glob.glob(osp.join(str(tmp_path), '*', '*.log'))[0]).read()
    lines = re.findall(r'Epoch\(train\) +\[(\d+)\]\[ *(\d+)/(\d+)\]', log)
    # stage-1 epochs count their own 3 iterations, stage 2 the loader's
    assert lines[0] == ('1', '1', '3')  # the first iteration, at once
    assert ('2', '3', '3') in lines
    assert lines[-1] == ('3', str(stage2), str(stage2))
    etas = re.findall(r'eta: (\S+)', log)
    assert etas[-1] == '0:00:00'
    assert 'Stage 1: epochs 1-2 of 3, prompt learning on cached features, ' \
        '3 iterations per epoch' in log
    assert 'Stage 2: epochs 3-3 of 3' in log
    # the honest device line, in the file's environment report too
    assert 'GPU number' not in log
    want = 'cuda:' if torch.cuda.is_available() else 'cpu (no CUDA device)'
    assert f'Device: {want}' in log


def test_console_start_up_is_short_and_the_file_is_complete(
        tmp_path, capfd):
    register_all_modules()
    cfg = Config(
        dict(
            model=dict(type='mmpretrain.ImageClassifier', backbone=dict(
                type='mmpretrain.LeNet5')),
            work_dir=str(tmp_path),
            experiment_name='feedback_console',
            default_scope='mmreid_clip',
            launcher='none'))
    ReIDRunner.verbose = False
    ReIDRunner.from_cfg(cfg)
    console = capfd.readouterr().out
    log = open(glob.glob(osp.join(str(tmp_path), '*', '*.log'))[0]).read()
    assert 'Config:' not in console and 'Hooks will be executed' not in console
    assert 'System environment' not in console
    assert re.search(r'Device: (cpu \(no CUDA device\)|cuda:\d)', console)
    for text in ('Config:', 'Hooks will be executed', 'System environment',
                 'Device:'):
        assert text in log, text
    # --verbose: everything on the console as well
    ReIDRunner.verbose = True
    try:
        cfg.work_dir = str(tmp_path / 'v')
        cfg.experiment_name = 'feedback_verbose'
        ReIDRunner.from_cfg(cfg)
    finally:
        ReIDRunner.verbose = False
    assert 'Config:' in capfd.readouterr().out


def test_random_init_line_names_the_checkpoint(tmp_path, capfd):
    register_all_modules()
    cfg = Config(
        dict(
            model=dict(type='OpenCLIPVisionTransformer', arch='clip-micro',
                       img_size=(64, 32)),
            work_dir=str(tmp_path),
            load_from=str(tmp_path / 'trained.pth'),
            experiment_name='feedback_random_init',
            default_scope='mmreid_clip',
            launcher='none'))
    ReIDRunner.from_cfg(cfg)
    out = capfd.readouterr().out
    assert ('random initialisation, replaced by the checkpoint loaded next'
            in out)


def test_thread_choice(monkeypatch):
    before = torch.get_num_threads()
    try:
        monkeypatch.setenv('OMP_NUM_THREADS', '2')
        assert 'OMP_NUM_THREADS=2' in choose_torch_threads()
        monkeypatch.delenv('OMP_NUM_THREADS')
        monkeypatch.setenv('MMREID_NUM_THREADS', '1')
        assert choose_torch_threads().startswith('1 of ')
        assert torch.get_num_threads() == 1
        monkeypatch.delenv('MMREID_NUM_THREADS')
        # a small machine: one thread, whatever its load
        monkeypatch.setattr(os, 'sched_getaffinity', lambda pid: {0, 1})
        note = choose_torch_threads()
        assert note.startswith('1 of 2 ') and 'small machine' in note
        assert torch.get_num_threads() == 1
        # a larger one keeps torch's default, split among the processes
        monkeypatch.setattr(os, 'sched_getaffinity',
                            lambda pid: set(range(8)))
        monkeypatch.setenv('WORLD_SIZE', '2')
        torch.set_num_threads(8)
        assert choose_torch_threads().startswith('4 of 8 ')
    finally:
        torch.set_num_threads(before)


def test_progress_bar_only_in_terminals(monkeypatch):
    monkeypatch.delenv('MMREID_PROGRESS', raising=False)

    class Tty(io.StringIO):

        def isatty(self):
            return True

    assert not interactive(io.StringIO())
    assert interactive(Tty())
    monkeypatch.setenv('MMREID_PROGRESS', '0')
    assert not interactive(Tty())
    monkeypatch.delenv('MMREID_PROGRESS')
    out = Tty()
    line = ProgressLine(4, 'test', stream=out)
    for _ in range(4):
        line.update()
    assert '4/4' in out.getvalue() and '|' in out.getvalue()
    line.clear()
    assert out.getvalue().endswith('\r\033[K')
    silent = io.StringIO()
    assert list(progress(range(3), enabled=False)) == [0, 1, 2]
    ProgressLine(3, 'x', stream=silent).update()
    assert silent.getvalue() == ''
