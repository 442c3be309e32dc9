"""Evaluate a checkpoint on the test split of a config.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out FILE]
        [--data-root DIR] [--cfg-options key=value ...]
        [--launcher {none,pytorch}]

A checkpoint that holds every weight needs no pretrained file: towers whose
CLIP / BERT file is missing are built without it (and the checkpoint must
then supply all their weights).
"""
import argparse
import json
import os
import os.path as osp

from mmengine.config import Config, DictAction

from mmreid_clip.apis.inference import checkpoint_state_dict
from mmreid_clip.engine import ReIDRunner
from mmreid_clip.utils import (ensure_custom_hooks, explain_build_errors,
                               finish_distributed, setup_runtime)
from mmreid_clip.utils.data_root import apply_data_root_args
from mmreid_clip.utils.pretrained import drop_missing_pretrained


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
        '--data-root',
        help='dataset folder (or its parent) of the test dataloader')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, key=value')
    parser.add_argument(
        '--verbose',
        action='store_true',
        help='also print the config, the full environment and the hooks on '
        'the console (they are always in the work dir\'s .log file)')
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


def check_writable(path: str) -> None:
    """Exit before any evaluation when ``--out`` cannot be written."""
    folder = osp.dirname(osp.abspath(path))
    if osp.isdir(path):
        raise SystemExit(f'error: --out {path!r} is a folder; name a file')
    if not osp.isdir(folder):
        try:
            os.makedirs(folder, exist_ok=True)
        except OSError as err:
            raise SystemExit(f'error: cannot create the folder of --out '
                             f'{path!r}: {err}')
    if not os.access(folder, os.W_OK) or (osp.exists(path)
                                          and not os.access(path, os.W_OK)):
        raise SystemExit(f'error: --out {path!r} is not writable')


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    data_root_notes = apply_data_root_args(
        cfg, args.data_root, args.cfg_options, loaders=('test_dataloader', ))
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint {args.checkpoint} not found')
    if args.out:
        check_writable(args.out)
    # the checkpoint holds every weight: pretrained files that are not there
    # are not needed (the strict CheckpointMatchHook below checks it)
    pretrained_notes = drop_missing_pretrained(
        cfg.model, lambda: checkpoint_state_dict(args.checkpoint))
    cfg.load_from = args.checkpoint
    cfg.resume = False
    cfg.launcher = args.launcher
    # evaluating a checkpoint that does not fit the config would report
    # the numbers of mostly random weights: any difference is an error
    cfg.setdefault('default_hooks', {})
    cfg.default_hooks.checkpoint_match = dict(
        type='CheckpointMatchHook', strict=True, source=args.checkpoint)
    ensure_custom_hooks(cfg, 'ProgressHook')
    setup_runtime(
        cfg,
        trust_checkpoint=args.trust_checkpoint,
        loaders=('test_dataloader', ))
    ReIDRunner.verbose = args.verbose
    with explain_build_errors():
        runner = ReIDRunner.from_cfg(cfg)
        for note in data_root_notes:
            runner.logger.info(f'--data-root: {note}')
        for note in pretrained_notes:
            runner.logger.info(note)
        metrics = runner.test()
    finish_distributed()
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
