"""Train a model from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [CKPT]] [--amp]
        [--epochs N [--stage1-epochs M]] [--data-root DIR]
        [--cfg-options key=value ...]
        [--launcher {none,pytorch}]

``--epochs`` changes the budget and every schedule with it (see
``mmreid_clip.utils.rescale_epochs``); a schedule that does not fit the
budget is named in a warning when training starts (``ScheduleBudgetHook``).
``--data-root`` points every loader at one dataset folder. The console
start-up is short (``ReIDRunner``; ``--verbose`` shows the config and the
environment there too, the work dir's log file always has them); a progress
bar runs in interactive terminals and the first iteration is logged
(``ProgressHook``).
"""
import argparse
import os
import os.path as osp

from mmengine.config import Config, DictAction

from mmreid_clip.engine import ReIDRunner
from mmreid_clip.utils import (ensure_custom_hooks, explain_build_errors,
                               finish_distributed, rescale_epochs,
                               setup_runtime)
from mmreid_clip.utils.data_root import apply_data_root_args


def parse_args():
    parser = argparse.ArgumentParser(description='Train a mmreid_clip model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume',
        nargs='?',
        type=str,
        const='auto',
        help='resume from the given checkpoint, or (no value) from the '
        'latest checkpoint in the work dir')
    parser.add_argument(
        '--amp', action='store_true', help='mixed precision (bf16 on CPU)')
    parser.add_argument(
        '--no-validate',
        action='store_true',
        help='do not evaluate checkpoints during training')
    parser.add_argument(
        '--auto-scale-lr',
        action='store_true',
        help='scale the learning rate with the total batch size')
    parser.add_argument(
        '--epochs',
        type=int,
        help='train for N epochs, rescaling every scheduler (begin/end, '
        'milestones, T_max, warm-up) and the validation/checkpoint intervals'
        ' with the budget; for two-stage configs both stages in proportion')
    parser.add_argument(
        '--stage1-epochs',
        type=int,
        help='with --epochs, for two-stage configs (CLIP-ReID, CCAF): the '
        'epochs of stage 1 (default: its share of the old budget)')
    parser.add_argument(
        '--trust-checkpoint',
        action='store_true',
        help='load checkpoints with arbitrary pickled objects (only for '
        'files you trust)')
    parser.add_argument(
        '--data-root',
        help='dataset folder (or its parent) for every dataloader of the '
        'config (train/val/test and stage1_dataloader)')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, key=value (e.g. '
        'train_cfg.max_epochs=2)')
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


def merge_args(cfg: Config, args) -> Config:
    """Fold the command line (but ``--epochs``) into the config."""
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir', None) is None:
        cfg.work_dir = osp.join('./work_dirs',
                                osp.splitext(osp.basename(args.config))[0])
    if args.amp:
        # also the per-group wrappers of CLIP-ReID / CCAF
        from mmreid_clip.utils import apply_amp
        apply_amp(cfg.optim_wrapper)
    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        cfg.resume = True
        cfg.load_from = args.resume
    if args.no_validate:
        cfg.val_cfg = None
        cfg.val_dataloader = None
        cfg.val_evaluator = None
    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg:
            raise KeyError('--auto-scale-lr needs `auto_scale_lr` '
                           '(base_batch_size) in the config')
        cfg.auto_scale_lr.enable = True
    cfg.launcher = args.launcher
    return cfg


def main():
    args = parse_args()
    cfg = Config.fromfile(args.config)
    budget_changes = []
    if args.epochs is not None:
        # from the config file's budget; --cfg-options still win
        budget_changes = rescale_epochs(cfg, args.epochs, args.stage1_epochs)
    elif args.stage1_epochs is not None:
        raise SystemExit('error: --stage1-epochs goes with --epochs')
    if args.cfg_options is not None:
        cfg.merge_from_dict(args.cfg_options)
    data_root_notes = apply_data_root_args(cfg, args.data_root,
                                           args.cfg_options)
    cfg = merge_args(cfg, args)
    # names the schedulers that do not fit the budget when training starts;
    # progress from the first iteration on
    ensure_custom_hooks(cfg, 'ScheduleBudgetHook', 'ProgressHook')
    setup_runtime(cfg, trust_checkpoint=args.trust_checkpoint)
    ReIDRunner.verbose = args.verbose
    # components are built in both calls; name close matches of a typo
    with explain_build_errors():
        runner = ReIDRunner.from_cfg(cfg)
        if data_root_notes:
            runner.logger.info('--data-root:\n  ' +
                               '\n  '.join(data_root_notes))
        if budget_changes:
            runner.logger.info('--epochs rescaled the config:\n  ' +
                               '\n  '.join(budget_changes))
        runner.train()
    finish_distributed()


if __name__ == '__main__':
    main()
