"""Plot the training curves of MMEngine JSON logs to PNG files.

    python tools/analysis/plot_logs.py WORK_DIR_OR_LOG [WORK_DIR_OR_LOG ...]
        [--keys KEY [KEY ...]] [--out-dir DIR] [--run TIMESTAMP]
        [--all-runs] [--labels NAME [NAME ...]]

Each input is a work dir (``<work_dir>/<timestamp>/vis_data/``), one run's
folder (``<work_dir>/<timestamp>``) or a JSON log file. MMEngine's
``LocalVisBackend`` writes one JSON object per line to ``scalars.json`` and
the ``LoggerHook`` the same lines to ``<timestamp>.json``: training rows
carry ``epoch``/``iter`` (``step`` = iteration), validation rows the
metrics with ``step`` = epoch.

Writes to ``--out-dir`` (default ``<run>/plots``):

- ``train_curves.png``: every selected training scalar against the
  iteration, one panel per key, with the per-epoch mean marked. Default
  keys: the losses (``loss`` and each ``loss_*`` term).
- ``val_metrics.png``: every selected validation scalar against the epoch,
  one panel per key. Default keys: every metric (``t2i/R@1``, ``t2i/mAP``,
  ...).

``--keys`` selects keys by name or shell pattern (``'loss_*'``,
``'t2i/*'``, ``lr``); a key that is in no log is an error listing the
available ones. Several inputs are overlaid, labelled by ``--labels`` or by
their folder names. A work dir with several runs (e.g. after ``--resume``)
uses the latest unless ``--run`` names one or ``--all-runs`` concatenates
them in time order.
"""
import argparse
import fnmatch
import glob
import json
import os
import os.path as osp
import sys
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence, Tuple

import matplotlib

matplotlib.use('Agg')  # files only: no display on servers or in CI
import matplotlib.pyplot as plt  # noqa: E402

#: Bookkeeping fields of a row, never plotted.
INDEX_KEYS = ('epoch', 'iter', 'step')
#: Timing scalars, plotted only when asked for.
TIME_KEYS = ('time', 'data_time', 'memory')


class LogNotFoundError(FileNotFoundError):
    """No MMEngine JSON log where the user pointed."""


def _run_logs(run_dir: str) -> Optional[str]:
    """The JSON log of one run folder, ``scalars.json`` first."""
    vis = osp.join(run_dir, 'vis_data')
    name = osp.basename(osp.normpath(run_dir))
    for path in (osp.join(vis, 'scalars.json'), osp.join(vis, f'{name}.json')):
        if osp.isfile(path):
            return path
    return None


def find_logs(path: str,
              run: Optional[str] = None,
              all_runs: bool = False) -> List[str]:
    """The JSON log file(s) of ``path``, oldest run first.

    Args:
        path (str): A JSON log, a run folder or a work dir.
        run (str, optional): Timestamp folder to use in a work dir.
        all_runs (bool): Every run of a work dir instead of the latest.

    Raises:
        LogNotFoundError: nothing there; the message names the files
            looked for.
    """
    if osp.isfile(path):
        return [path]
    if not osp.isdir(path):
        raise LogNotFoundError(f'{path} does not exist')
    own = _run_logs(path)
    if own is not None:
        return [own]
    runs = sorted(
        d for d in glob.glob(osp.join(path, '*'))
        if osp.isdir(d) and _run_logs(d) is not None)
    if run is not None:
        runs = [d for d in runs if osp.basename(d) == run]
    if not runs:
        what = run or '<timestamp>'
        raise LogNotFoundError(
            f'no MMEngine JSON log in {path}: looked for '
            f'{osp.join(path, what, "vis_data", "scalars.json")} and '
            f'{osp.join(path, what, "vis_data", what + ".json")} (the '
            'LocalVisBackend of the visualizer writes them)')
    logs = [_run_logs(d) for d in runs]
    if len(runs) > 1 and not all_runs and run is None:
        names = [osp.basename(d) for d in runs]
        print(
            f'plot_logs: {path} holds {len(runs)} runs ({names[0]} ... '
            f'{names[-1]}, e.g. a resumed training); plotting the latest, '
            f'{names[-1]}. --all-runs draws them all in time order, --run '
            'TIMESTAMP one of them.',
            file=sys.stderr)
    return logs if all_runs else logs[-1:]


def load_log(path: str) -> Tuple[List[dict], List[dict]]:
    """Split a JSON log into training and validation rows.

    Returns:
        tuple[list[dict], list[dict]]: Training rows (they have ``iter``)
        and validation rows (the others), in file order.

    Raises:
        ValueError: a line is not a JSON object; the message names the file
            and the line.
    """
    train, val = [], []
    with open(path) as f:
        for number, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
            except json.JSONDecodeError as err:
                raise ValueError(f'{path}:{number}: not a JSON line of an '
                                 f'MMEngine log ({err.msg})') from None
            if not isinstance(row, dict) or 'step' not in row:
                raise ValueError(f'{path}:{number}: expected an object with '
                                 'a "step" (MMEngine scalar log)')
            (train if 'iter' in row else val).append(row)
    return train, val


def load_logs(paths: Sequence[str]) -> Tuple[List[dict], List[dict]]:
    """Concatenate runs in order; a later run replaces repeated steps."""
    train, val = OrderedDict(), OrderedDict()
    for path in paths:
        t, v = load_log(path)
        train.update((r['step'], r) for r in t)
        val.update((r['step'], r) for r in v)
    return list(train.values()), list(val.values())


def _scalar_keys(rows: List[dict]) -> List[str]:
    keys = OrderedDict()
    for row in rows:
        for key, value in row.items():
            if key not in INDEX_KEYS and isinstance(value, (int, float)):
                keys[key] = None
    return list(keys)


def default_keys(train_keys: List[str],
                 val_keys: List[str]) -> Tuple[List[str], List[str]]:
    """Losses of the training rows, metrics of the validation rows."""
    losses = [k for k in train_keys if k == 'loss' or k.startswith('loss_')]
    metrics = [k for k in val_keys if k not in TIME_KEYS]
    return losses, metrics


def select_keys(patterns: Sequence[str], train_keys: List[str],
                val_keys: List[str]) -> Tuple[List[str], List[str]]:
    """Train and val keys matching ``patterns`` (names or shell patterns).

    Raises:
        KeyError: a pattern matches nothing; lists the available keys.
    """
    train, val = [], []
    for pattern in patterns:
        t = [k for k in train_keys if fnmatch.fnmatchcase(k, pattern)]
        v = [k for k in val_keys if fnmatch.fnmatchcase(k, pattern)]
        if not t and not v:
            raise KeyError(
                f'--keys {pattern!r} matches no logged scalar; training '
                f'keys: {", ".join(train_keys) or "none"}; validation keys: '
                f'{", ".join(val_keys) or "none"}')
        train += [k for k in t if k not in train]
        val += [k for k in v if k not in val]
    return train, val


def _grid(n: int):
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig, axes = plt.subplots(
        rows, cols, figsize=(5 * cols, 3.4 * rows), squeeze=False)
    for ax in axes.flat[n:]:
        ax.set_visible(False)
    return fig, axes.flat


def plot_train(series: Dict[str, List[dict]], keys: List[str],
               out_file: str) -> str:
    """One panel per key: logged values vs iteration + per-epoch means."""
    fig, axes = _grid(len(keys))
    for ax, key in zip(axes, keys):
        for label, rows in series.items():
            rows = [r for r in rows if key in r]
            if not rows:
                continue
            line, = ax.plot([r['iter'] for r in rows], [r[key] for r in rows],
                            lw=1,
                            alpha=0.6,
                            label=label)
            by_epoch = OrderedDict()
            for r in rows:
                by_epoch.setdefault(r.get('epoch'), []).append(r)
            if None not in by_epoch:
                ax.plot([g[-1]['iter'] for g in by_epoch.values()], [
                    sum(r[key] for r in g) / len(g) for g in by_epoch.values()
                ],
                        'o',
                        color=line.get_color(),
                        ms=4,
                        label=f'{label} (epoch mean)')
        ax.set_title(key)
        ax.set_xlabel('iteration')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return out_file


def plot_val(series: Dict[str, List[dict]], keys: List[str],
             out_file: str) -> str:
    """One panel per key: value vs epoch (the ``step`` of val rows)."""
    fig, axes = _grid(len(keys))
    for ax, key in zip(axes, keys):
        for label, rows in series.items():
            rows = [r for r in rows if key in r]
            if rows:
                ax.plot([r['step'] for r in rows], [r[key] for r in rows],
                        'o-',
                        ms=4,
                        label=label)
        ax.set_title(key)
        ax.set_xlabel('epoch')
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out_file, dpi=100)
    plt.close(fig)
    return out_file


def plot_logs(inputs: Sequence[str],
              out_dir: Optional[str] = None,
              keys: Optional[Sequence[str]] = None,
              labels: Optional[Sequence[str]] = None,
              run: Optional[str] = None,
              all_runs: bool = False) -> Dict[str, str]:
    """Plot one or several logs; see the module docstring.

    Returns:
        dict: ``'train'`` and/or ``'val'`` -> the PNG written.
    """
    if labels is not None and len(labels) != len(inputs):
        raise ValueError(f'{len(labels)} --labels for {len(inputs)} inputs')
    train_series, val_series, first_log = OrderedDict(), OrderedDict(), None
    for i, path in enumerate(inputs):
        logs = find_logs(path, run, all_runs)
        first_log = first_log or logs[-1]
        label = labels[i] if labels else osp.basename(osp.normpath(path))
        if label in train_series:
            label = f'{label} ({i})'
        train_series[label], val_series[label] = load_logs(logs)
    train_keys = _scalar_keys([r for s in train_series.values() for r in s])
    val_keys = _scalar_keys([r for s in val_series.values() for r in s])
    if keys:
        train_sel, val_sel = select_keys(keys, train_keys, val_keys)
    else:
        train_sel, val_sel = default_keys(train_keys, val_keys)
    if not train_sel and not val_sel:
        raise ValueError(f'{first_log}: no loss or metric to plot (keys: '
                         f'{", ".join(train_keys + val_keys) or "none"})')
    if out_dir is None:
        # <run>/vis_data/scalars.json -> <run>/plots
        out_dir = osp.join(
            osp.dirname(osp.dirname(osp.abspath(first_log))), 'plots')
    os.makedirs(out_dir, exist_ok=True)
    written = {}
    if train_sel:
        written['train'] = plot_train(train_series, train_sel,
                                      osp.join(out_dir, 'train_curves.png'))
    if val_sel:
        written['val'] = plot_val(val_series, val_sel,
                                  osp.join(out_dir, 'val_metrics.png'))
    return written


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Plot losses and metrics of MMEngine JSON logs')
    parser.add_argument(
        'inputs', nargs='+', help='work dirs, run folders or JSON logs')
    parser.add_argument(
        '--keys',
        nargs='+',
        help='scalars to plot, names or shell patterns (default: losses '
        'and validation metrics)')
    parser.add_argument('--out-dir', help='default: <run>/plots')
    parser.add_argument('--labels', nargs='+', help='one per input')
    parser.add_argument('--run', help='timestamp folder of a work dir')
    parser.add_argument(
        '--all-runs',
        action='store_true',
        help='concatenate every run of a work dir (resumed training)')
    return parser.parse_args(argv)


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        written = plot_logs(args.inputs, args.out_dir, args.keys, args.labels,
                            args.run, args.all_runs)
    except (LogNotFoundError, KeyError, ValueError) as err:
        message = err.args[0] if isinstance(err, KeyError) else err
        print(f'plot_logs: {message}', file=sys.stderr)
        return 1
    for kind, path in written.items():
        print(f'{kind}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
