"""Print a config as the tools will run it, every ``_base_`` resolved.

    python tools/misc/print_config.py CONFIG [--epochs N [--stage1-epochs M]]
        [--data-root DIR] [--cfg-options key=value ...] [--out FILE]
        [--format {py,json,yaml}]

``--epochs``, ``--data-root`` and ``--cfg-options`` are applied in the order
``tools/train.py`` applies them, so the output is the config a run with the
same options trains with (its ``--epochs`` and ``--data-root`` changes are
listed first). ``--out`` writes it to a file instead (its suffix or
``--format`` picks the format).
"""
import argparse
import os.path as osp
import sys
from typing import Optional, Sequence

from mmengine.config import Config, DictAction

from mmreid_clip.utils import rescale_epochs
from mmreid_clip.utils.data_root import apply_data_root_args


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Print the whole config, as a run would use it')
    parser.add_argument('config', help='config file')
    parser.add_argument('--epochs', type=int, help='as tools/train.py')
    parser.add_argument('--stage1-epochs', type=int, help='as tools/train.py')
    parser.add_argument('--data-root', help='as tools/train.py')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        action=DictAction,
        help='override config entries, key=value')
    parser.add_argument('--out', help='write to this file instead')
    parser.add_argument(
        '--format',
        choices=['py', 'json', 'yaml'],
        help='output format (default: py, or the suffix of --out)')
    return parser.parse_args(argv)


def build_config(args: argparse.Namespace):
    """``(config, notes)`` after the options, as tools/train.py does it."""
    cfg = Config.fromfile(args.config)
    notes = []
    if args.epochs is not None:
        notes += [
            f'--epochs: {line}'
            for line in rescale_epochs(cfg, args.epochs, args.stage1_epochs)
        ]
    elif args.stage1_epochs is not None:
        sys.exit('error: --stage1-epochs goes with --epochs')
    if args.cfg_options:
        cfg.merge_from_dict(args.cfg_options)
    notes += [
        f'--data-root: {line}' for line in apply_data_root_args(
            cfg, args.data_root, args.cfg_options)
    ]
    return cfg, notes


def main(argv: Optional[Sequence[str]] = None) -> str:
    args = parse_args(argv)
    cfg, notes = build_config(args)
    fmt = args.format or (osp.splitext(args.out)[1].lstrip('.')
                          if args.out else 'py')
    if fmt not in ('py', 'json', 'yaml', 'yml'):
        sys.exit(f'error: cannot write the format {fmt!r}; use --format')
    if args.out:
        out = args.out if fmt in osp.splitext(args.out)[1] else (
            f'{args.out}.{fmt}')
        cfg.dump(out)
        for note in notes:
            print(f'# {note}')
        print(f'config written to {out}')
        return out
    if fmt == 'py':
        text = cfg.pretty_text
    else:
        import tempfile
        with tempfile.TemporaryDirectory() as tmp:
            path = osp.join(tmp, f'config.{fmt}')
            cfg.dump(path)
            text = open(path).read()
    header = ''.join(f'# {note}\n' for note in notes)
    print(f'# {osp.abspath(args.config)}\n{header}{text}')
    return text


if __name__ == '__main__':
    main()
