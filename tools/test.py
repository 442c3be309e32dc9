"""Evaluate a checkpoint on the test split of a config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--cfg-options key=value ...] [--launcher {none,pytorch}]
"""
import argparse
import json
import os
import os.path as osp

from mmengine.config import Config, DictAction
from mmengine.runner import Runner

from mmreid_clip.utils import explain_build_errors, setup_runtime


def parse_args():
    parser = argparse.ArgumentParser(description='Test a mmreid_clip model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save logs')
    parser.add_argument('--out', help='write the metrics to this JSON file')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='load a checkpoint with arbitrary pickled objects (only for '
        'files you trust)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, key=value')
    parser.add_argument(
        '--launcher',
        choices=['none', 'pytorch', 'slurm', 'mpi'],
        default='none',
        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args()
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} not found')
    cfg.load_from = args.checkpoint
    cfg.resume = False
    cfg.launcher = args.launcher
    # evaluating a checkpoint that does not fit the config would report
    # the numbers of mostly random weights: any difference is an error
    cfg.setdefault('default_hooks', {})
    cfg.default_hooks.checkpoint_match = dict(
        type='CheckpointMatchHook', strict=True, source=args.checkpoint)
    setup_runtime(
        cfg,
        trust_checkpoint=args.trust_checkpoint,
        loaders=('test_dataloader', ))
    with explain_build_errors():
        runner = Runner.from_cfg(cfg)
        metrics = runner.test()
    if runner.rank == 0:
        width = max(len(k) for k in metrics)
        lines = [f'  {k:<{width}}  {v:8.2f}' for k, v in metrics.items()]
        print(f'\nTest metrics of {args.checkpoint} '
              f'({cfg.test_dataloader.dataset.get("type")}, split '
              f'{cfg.test_dataloader.dataset.get("split")!r}):\n' +
              '\n'.join(lines), flush=True)
    if args.out and runner.rank == 0:
        with open(args.out, 'w') as f:
            json.dump(metrics, f, indent=2)
        runner.logger.info(f'metrics written to {args.out}')


if __name__ == '__main__':
    main()
