"""tools/analysis/plot_logs.py on a log written by a real MMEngine run.

The run is MMEngine's own Runner with a 2-parameter model (two loss terms)
and a metric named like ours, 2 epochs x 3 iterations, so the JSON files are
exactly what LoggerHook + LocalVisBackend write, in about a second.
"""
import json
import os.path as osp

import numpy as np
import pytest
import torch
from mmengine.evaluator import BaseMetric
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch.utils.data import Dataset

ROOT = osp.dirname(osp.dirname(osp.dirname(osp.abspath(__file__))))
from helpers.tool_loader import load_tool  # noqa: E402


def _tool():
    return load_tool('tools/analysis/plot_logs.py')


class _Points(Dataset):

    def __len__(self):
        return 12

    def __getitem__(self, i):
        return dict(inputs=torch.tensor([float(i), 1.0]))


class _TwoLossModel(BaseModel):

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.tensor([2.0, -1.0]))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        out = inputs @ self.w  # default_collate stacked the batch
        if mode == 'loss':
            return dict(
                loss_fit=out.pow(2).mean(), loss_reg=self.w.abs().sum())
        return [dict(score=float(s)) for s in out]


class _FakeRetrievalMetric(BaseMetric):

    def process(self, data_batch, data_samples):
        self.results += [s['score'] for s in data_samples]

    def compute_metrics(self, results):
        mean = float(np.mean(np.abs(results)))
        return {'t2i/R@1': 100 / (1 + mean), 't2i/mAP': 50 / (1 + mean)}


@pytest.fixture(scope='module')
def work_dir(tmp_path_factory):
    work = str(tmp_path_factory.mktemp('plot_logs') / 'work')
    loader = dict(
        dataset=_Points(),
        sampler=dict(type='DefaultSampler', shuffle=False),
        batch_size=4,
        collate_fn=dict(type='default_collate'))
    runner = Runner(
        model=_TwoLossModel(),
        work_dir=work,
        train_dataloader=loader,
        val_dataloader=loader,
        val_evaluator=[_FakeRetrievalMetric()],
        train_cfg=dict(by_epoch=True, max_epochs=2, val_interval=1),
        val_cfg=dict(),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        default_hooks=dict(
            logger=dict(type='LoggerHook', interval=1),
            checkpoint=dict(type='CheckpointHook', interval=100)),
        log_processor=dict(by_epoch=True, window_size=1),
        default_scope='mmengine')
    runner.train()
    return work


def test_the_run_wrote_mmengine_logs(work_dir):
    tool = _tool()
    [log] = tool.find_logs(work_dir)
    assert log.endswith(osp.join('vis_data', 'scalars.json'))
    train, val = tool.load_log(log)
    assert [r['iter'] for r in train] == [1, 2, 3, 4, 5, 6]
    assert [r['epoch'] for r in train] == [1, 1, 1, 2, 2, 2]
    assert [r['step'] for r in val] == [1, 2]
    assert {'loss', 'loss_fit', 'loss_reg', 'lr'} <= set(train[0])
    assert {'t2i/R@1', 't2i/mAP'} <= set(val[0])
    # the LoggerHook's <timestamp>.json holds the same rows
    run = osp.dirname(osp.dirname(log))
    other = osp.join(run, 'vis_data', osp.basename(run) + '.json')
    assert tool.load_log(other) == (train, val)


def _png_size(path):
    with open(path, 'rb') as f:
        head = f.read(24)
    assert head[:8] == b'\x89PNG\r\n\x1a\n', path
    return int.from_bytes(head[16:20],
                          'big'), int.from_bytes(head[20:24], 'big')


def test_default_plots_losses_and_metrics(work_dir, tmp_path):
    tool = _tool()
    out = str(tmp_path / 'plots')
    assert tool.main([work_dir, '--out-dir', out]) == 0
    # 3 loss panels (loss, loss_fit, loss_reg) in one row; 2 metric panels
    assert _png_size(osp.join(out, 'train_curves.png')) == (1500, 340)
    assert _png_size(osp.join(out, 'val_metrics.png')) == (1000, 340)
    train, val = tool.load_log(tool.find_logs(work_dir)[0])
    assert tool.default_keys(tool._scalar_keys(train),
                             tool._scalar_keys(val)) == ([
                                 'loss', 'loss_fit', 'loss_reg'
                             ], ['t2i/R@1', 't2i/mAP'])


def test_keys_select_panels_and_default_out_dir(work_dir):
    tool = _tool()
    written = tool.plot_logs([work_dir], keys=['loss_*', 'lr', 't2i/R@1'])
    [log] = tool.find_logs(work_dir)
    assert osp.dirname(written['train']) == osp.join(
        osp.dirname(osp.dirname(log)), 'plots')
    assert _png_size(written['train']) == (1500, 340)  # 3 panels
    assert _png_size(written['val']) == (500, 340)  # 1 panel
    only_val = tool.plot_logs([log], keys=['t2i/*'])
    assert set(only_val) == {'val'}


def test_several_logs_are_overlaid(work_dir, tmp_path):
    tool = _tool()
    [log] = tool.find_logs(work_dir)
    written = tool.plot_logs([work_dir, log],
                             out_dir=str(tmp_path),
                             labels=['a', 'b'])
    assert set(written) == {'train', 'val'}
    with pytest.raises(ValueError, match='2 --labels for 1 inputs'):
        tool.plot_logs([log], labels=['a', 'b'])


def test_clear_errors(work_dir, tmp_path, capsys):
    tool = _tool()
    empty = tmp_path / 'empty_work_dir'
    empty.mkdir()
    assert tool.main([str(empty)]) == 1
    err = capsys.readouterr().err
    assert osp.join(str(empty), '<timestamp>', 'vis_data',
                    'scalars.json') in err
    with pytest.raises(tool.LogNotFoundError, match='20990101_000000'):
        tool.find_logs(work_dir, run='20990101_000000')

    assert tool.main([work_dir, '--keys', 'loss_nope']) == 1
    err = capsys.readouterr().err
    assert "'loss_nope' matches no logged scalar" in err
    assert 'loss_fit' in err and 't2i/R@1' in err

    bad = tmp_path / 'bad.json'
    bad.write_text(
        json.dumps({
            'loss': 1.0,
            'iter': 1,
            'step': 1
        }) + '\n{not json\n')
    with pytest.raises(ValueError, match='bad.json:2'):
        tool.load_log(str(bad))


def test_resumed_runs_are_concatenated(tmp_path):
    tool = _tool()
    rows = {
        '20260101_000000': [(1, 1, 4.0), (2, 1, 3.0)],
        '20260102_000000': [(3, 2, 2.0), (4, 2, 1.0)],
    }
    for stamp, steps in rows.items():
        vis = tmp_path / stamp / 'vis_data'
        vis.mkdir(parents=True)
        lines = [
            json.dumps(dict(loss=v, epoch=e, iter=i, step=i))
            for i, e, v in steps
        ]
        lines.append(
            json.dumps({
                't2i/R@1': 10.0 * steps[0][1],
                'step': steps[0][1]
            }))
        (vis / f'{stamp}.json').write_text('\n'.join(lines) + '\n')
    latest = tool.find_logs(str(tmp_path))
    assert latest == [
        str(tmp_path / '20260102_000000' / 'vis_data' / '20260102_000000.json')
    ]
    train, val = tool.load_logs(tool.find_logs(str(tmp_path), all_runs=True))
    assert [r['loss'] for r in train] == [4.0, 3.0, 2.0, 1.0]
    assert [r['t2i/R@1'] for r in val] == [10.0, 20.0]
    first = tool.find_logs(str(tmp_path), run='20260101_000000')
    assert tool.load_logs(first)[0][-1]['iter'] == 2
