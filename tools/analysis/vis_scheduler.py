"""Plot the learning rate (and momentum) of every parameter group per
iteration, as a config's schedulers set it during training.

    python tools/analysis/vis_scheduler.py CONFIG [--epochs N]
        [--stage1-epochs M] [--iters-per-epoch K] [--stage1-iters-per-epoch K1]
        [--cfg-options key=value ...] [--save-path lr.png] [--table lr.csv]
        [--show]

The model is built without its pretrained weights (only the parameter
names matter), the optimizer wrapper and the schedulers exactly as the
Runner builds them (``convert_to_iter_based`` included), and the
schedulers are stepped as ``ParamSchedulerHook`` steps them: iteration-based
ones after every iteration, epoch-based ones after every epoch. For the
two-stage loop (CLIP-ReID, CCAF) stage-1 epochs have their own number of
iterations (the training images over ``stage1_batch_size``); the stage
boundary is drawn.

Parameter groups with the same schedule are drawn as one line, named by
optimizer and first parameter (``encoder: image_encoder.x (+143)``). The
iterations per epoch are the training dataloader's when the data is there;
otherwise give ``--iters-per-epoch`` (by default one iteration per epoch,
which is exact for epoch-based schedulers). ``--epochs`` previews
``tools/train.py --epochs``. Writes ``--save-path`` (PNG, default
``<config name>_lr.png``) and, with ``--table``, a CSV with one row per
iteration; prints the rate of each line at the start of every epoch.
"""
import argparse
import csv
import logging
import math
import os.path as osp
import sys
import warnings
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

if '--show' not in sys.argv:
    matplotlib.use('Agg')  # files only: no display on servers or in CI
import matplotlib.pyplot as plt  # noqa: E402
from mmengine.config import Config, DictAction  # noqa: E402
from mmengine.logging import MMLogger  # noqa: E402

from mmreid_clip.utils import rescale_epochs  # noqa: E402


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Plot every parameter group\'s learning rate per '
        'iteration')
    parser.add_argument('config', help='config file')
    parser.add_argument(
        '--epochs', type=int, help='as tools/train.py --epochs')
    parser.add_argument(
        '--stage1-epochs', type=int, help='as tools/train.py')
    parser.add_argument(
        '--iters-per-epoch',
        type=int,
        help='iterations of a (stage-2) training epoch; default: the '
        'training dataloader\'s length, or 1 when the data is not there')
    parser.add_argument(
        '--stage1-iters-per-epoch',
        type=int,
        help='iterations of a stage-1 epoch (two-stage loop); default: the '
        'training images / stage1_batch_size, or --iters-per-epoch')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, key=value')
    parser.add_argument('--save-path', help='PNG file to write')
    parser.add_argument(
        '--table', help='also write the values per iteration to this CSV')
    parser.add_argument('--title', help='figure title (default: config)')
    parser.add_argument(
        '--log-y',
        choices=['auto', 'yes', 'no'],
        default='auto',
        help='logarithmic rate axis (auto: when the rates span more than '
        '100x)')
    parser.add_argument(
        '--show', action='store_true', help='also open a window')
    return parser.parse_args(argv)


def build_model(cfg: Config):
    """The config's model on the CPU, built from its architectures alone
    (only the parameter names matter)."""
    from mmengine.registry import DefaultScope

    from mmreid_clip.registry import MODELS
    from mmreid_clip.utils.pretrained import without_weights
    with DefaultScope.overwrite_default_scope(
            cfg.get('default_scope', 'mmreid_clip')):
        return MODELS.build(without_weights(cfg.model))


def iterations_per_epoch(cfg: Config, args) -> Tuple[int, int, str]:
    """``(stage-2 iters, stage-1 iters, where they come from)``."""
    n_images = None
    if args.iters_per_epoch is not None:
        iters, source = args.iters_per_epoch, '--iters-per-epoch'
    else:
        try:
            from mmengine.registry import DefaultScope
            from mmengine.runner import Runner
            with DefaultScope.overwrite_default_scope(
                    cfg.get('default_scope', 'mmreid_clip')):
                loader = Runner.build_dataloader(cfg.train_dataloader)
            iters, n_images = len(loader), len(loader.dataset)
            source = 'the training dataloader'
        except Exception as err:  # noqa: BLE001 - any data problem
            iters = 1
            source = (f'1 per epoch (no training data: {err}; pass '
                      '--iters-per-epoch)')
    if args.stage1_iters_per_epoch is not None:
        stage1 = args.stage1_iters_per_epoch
    elif n_images is not None:
        bs = cfg.train_cfg.get('stage1_batch_size', 64)
        stage1 = math.ceil(n_images / bs)
    else:
        stage1 = iters
    return iters, stage1, source


def build_schedulers(cfg: Config, model, epoch_length: int):
    """``{optimizer key: (optimizer, [schedulers])}`` as the Runner builds
    them (the key is '' for a single optimizer)."""
    from mmengine.optim import OptimWrapperDict, build_optim_wrapper
    from mmengine.registry import DefaultScope

    from mmreid_clip.registry import PARAM_SCHEDULERS
    scope = cfg.get('default_scope', 'mmreid_clip')
    train_cfg = cfg.train_cfg
    max_epochs = train_cfg.get('max_epochs')
    max_iters = train_cfg.get('max_iters', (max_epochs or 0) * epoch_length)
    with DefaultScope.overwrite_default_scope(scope):
        wrapper = build_optim_wrapper(model, cfg.optim_wrapper)
        wrappers = (dict(wrapper.items()) if isinstance(
            wrapper, OptimWrapperDict) else {'': wrapper})
        sched_cfg = cfg.get('param_scheduler') or []
        out = {}
        for key, ow in wrappers.items():
            if isinstance(sched_cfg, dict) and 'type' not in sched_cfg:
                mine = sched_cfg.get(key) or []
            else:
                mine = sched_cfg
            if isinstance(mine, dict):
                mine = [mine]
            built = []
            for s in mine:
                s = dict(s)
                default_end = (
                    max_epochs if s.get('by_epoch', True) and
                    max_epochs is not None else max_iters)
                s.setdefault('end', default_end)
                built.append(
                    PARAM_SCHEDULERS.build(
                        s,
                        default_args=dict(
                            optimizer=ow, epoch_length=epoch_length)))
            out[key] = (ow, built)
    return out


def _group_names(model, optimizer) -> List[str]:
    names = {id(p): n for n, p in model.named_parameters()}
    out = []
    for group in optimizer.param_groups:
        params = group['params']
        out.append(names.get(id(params[0]), '?') if params else '(empty)')
    return out


def _momentum(group: dict) -> Optional[float]:
    if 'momentum' in group:
        return group['momentum']
    if 'betas' in group:
        return group['betas'][0]
    return None


def simulate(cfg: Config, model, iters: int, stage1_iters: int) -> Dict:
    """Step the schedulers through training; record every group per
    iteration.

    Returns:
        dict: ``rows`` (one dict per iteration: ``iter``, ``epoch``,
        ``stage`` and the value of each line), ``lines`` (label ->
        ``(kind, optimizer, [group indices])``), ``stage1_end`` (first
        stage-2 iteration, or None).
    """
    train_cfg = cfg.train_cfg
    two_stage = str(train_cfg.get('type', '')).endswith(
        'TwoStageEpochBasedTrainLoop')
    s1 = int(train_cfg.get('stage1_epochs', 0)) if two_stage else 0
    if 'max_epochs' in train_cfg:
        epochs = int(train_cfg.max_epochs)
        per_epoch = [stage1_iters if e < s1 else iters for e in range(epochs)]
    else:  # iteration-based loop: one "epoch"
        per_epoch = [int(train_cfg.max_iters)]
    scheds = build_schedulers(cfg, model, iters)
    series: Dict[Tuple[str, str, int], List[float]] = {}
    rows: List[Dict] = []
    it = 0
    for epoch, n in enumerate(per_epoch):
        for _ in range(n):
            row = dict(
                iter=it,
                epoch=epoch + 1,
                stage=(2 if two_stage and epoch >= s1 else 1))
            for key, (ow, _) in scheds.items():
                for g, group in enumerate(ow.optimizer.param_groups):
                    series.setdefault(('lr', key, g), []).append(group['lr'])
                    m = _momentum(group)
                    if m is not None:
                        series.setdefault(('momentum', key, g), []).append(m)
            rows.append(row)
            for _, (ow, built) in scheds.items():
                for s in built:
                    if not s.by_epoch:
                        s.step()
            it += 1
        for _, (ow, built) in scheds.items():
            for s in built:
                if s.by_epoch:
                    s.step()
    # one line per distinct schedule of each optimizer and kind
    lines: Dict[str, Tuple[str, str, List[int]]] = {}
    for kind in ('lr', 'momentum'):
        for key, (ow, _) in scheds.items():
            names = _group_names(model, ow.optimizer)
            seen: Dict[Tuple, List[int]] = {}
            for g in range(len(ow.optimizer.param_groups)):
                values = series.get((kind, key, g))
                if values is None:
                    continue
                seen.setdefault(tuple(values), []).append(g)
            for values, groups in seen.items():
                if kind == 'momentum' and len(set(values)) == 1:
                    continue  # constant momentum is not worth a panel
                label = names[groups[0]]
                if key:
                    label = f'{key}: {label}'
                if len(groups) > 1:
                    label += f' (+{len(groups) - 1})'
                if kind == 'momentum':
                    label = f'momentum {label}'
                lines[label] = (kind, key, groups)
                for row, v in zip(rows, values):
                    row[label] = v
    stage1_end = sum(per_epoch[:s1]) if 0 < s1 < len(per_epoch) else None
    return dict(rows=rows, lines=lines, stage1_end=stage1_end,
                per_epoch=per_epoch)


def plot(result: Dict, path: str, title: str, log_y: str = 'auto') -> None:
    """Write the figure: learning rates, and momentum when it changes."""
    rows, lines = result['rows'], result['lines']
    kinds = [k for k in ('lr', 'momentum')
             if any(v[0] == k for v in lines.values())]
    fig, axes = plt.subplots(
        len(kinds), 1, figsize=(10, 3.6 * len(kinds)), squeeze=False)
    x = [r['iter'] for r in rows]
    for ax, kind in zip(axes[:, 0], kinds):
        values = []
        for label, (k, _, _) in lines.items():
            if k != kind:
                continue
            y = [r[label] for r in rows]
            values.extend(v for v in y if v > 0)
            ax.plot(x, y, label=label, linewidth=1.4)
        positive = [v for v in values if v > 0]
        use_log = log_y == 'yes' or (
            log_y == 'auto' and kind == 'lr' and positive
            and max(positive) / min(positive) > 100)
        if use_log:
            ax.set_yscale('log')
        if result['stage1_end'] is not None:
            ax.axvline(result['stage1_end'], color='gray', linestyle='--',
                       linewidth=1)
            ax.text(result['stage1_end'], 1.0, ' stage 2',
                    transform=ax.get_xaxis_transform(), va='top',
                    fontsize=8, color='gray')
        ax.set_ylabel('learning rate' if kind == 'lr' else 'momentum')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, loc='best')
    axes[-1, 0].set_xlabel(
        f'iteration ({len(rows)} in {len(result["per_epoch"])} epochs)')
    axes[0, 0].set_title(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def write_table(result: Dict, path: str) -> None:
    labels = list(result['lines'])
    with open(path, 'w', newline='') as f:
        writer = csv.writer(f)
        writer.writerow(['iter', 'epoch', 'stage'] + labels)
        for r in result['rows']:
            writer.writerow([r['iter'], r['epoch'], r['stage']] +
                            [f'{r[label]:.6g}' for label in labels])


def epoch_summary(result: Dict) -> str:
    """The value of each line at the first iteration of every epoch."""
    labels = list(result['lines'])
    starts = {}
    for r in result['rows']:
        starts.setdefault(r['epoch'], r)
    head = ['epoch', 'stage'] + [f'[{i}]' for i in range(len(labels))]
    out = [f'[{i}] {label}' for i, label in enumerate(labels)]
    out.append('  '.join(f'{h:>10}' for h in head))
    for epoch, r in starts.items():
        cells = [str(epoch), str(r['stage'])
                 ] + [f'{r[label]:.3e}' for label in labels]
        out.append('  '.join(f'{c:>10}' for c in cells))
    return '\n'.join(out)


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    from mmreid_clip.utils import register_all_modules
    register_all_modules(init_scope=False)
    cfg = Config.fromfile(args.config)
    if args.epochs is not None:
        for line in rescale_epochs(cfg, args.epochs, args.stage1_epochs):
            print(f'--epochs: {line}')
    elif args.stage1_epochs is not None:
        sys.exit('error: --stage1-epochs goes with --epochs')
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    if not cfg.get('param_scheduler'):
        print('note: the config has no param_scheduler: constant rates')
    iters, stage1_iters, source = iterations_per_epoch(cfg, args)
    print(f'iterations per epoch: {iters} ({source})' +
          (f', stage 1: {stage1_iters}' if 'stage1_epochs' in cfg.train_cfg
           else ''))
    # mmengine reports every parameter's options; only the plot matters
    logger = MMLogger.get_current_instance()
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            # schedulers stepped without optimizer steps, on purpose
            warnings.simplefilter('ignore', UserWarning)
            model = build_model(cfg)
            result = simulate(cfg, model, iters, stage1_iters)
    finally:
        logger.setLevel(level)
    name = osp.splitext(osp.basename(args.config))[0]
    path = args.save_path or f'{name}_lr.png'
    plot(result, path, args.title or name, args.log_y)
    print(epoch_summary(result))
    print(f'\nplot written to {path}')
    if args.table:
        write_table(result, args.table)
        print(f'table written to {args.table}')
    if args.show:
        import matplotlib.image as mpimg
        plt.imshow(mpimg.imread(path))
        plt.axis('off')
        plt.show()
    return result


if __name__ == '__main__':
    main()
