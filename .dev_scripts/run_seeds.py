"""Train and test a list of configs over several seeds; tabulate mean ± std.

Usage::

    python .dev_scripts/run_seeds.py CONFIG [CONFIG ...] --work-dir DIR
        [--seeds 0 1 2] [--keys t2i/R@1 t2i/R@5 t2i/R@10 t2i/mAP]
        [--cfg-options key=value ...] [--train-args='--no-validate ...']
        [--nice 5] [--out-md FILE] [--out-json FILE]

For every seed and config, one run at a time and seed-major (every config
at seed 0 before any at seed 1, so a study stopped early still compares
all configs), it runs

* ``tools/train.py CONFIG --work-dir DIR/<config>/seed<S>
  --cfg-options randomness.seed=S [options]`` (``--resume`` when the run
  dir already holds a checkpoint of an interrupted training), then
* ``tools/test.py CONFIG <final checkpoint> --out
  DIR/<config>/seed<S>/test_metrics.json`` on the checkpoint named by the
  run dir's ``last_checkpoint``,

each with its console output in ``train.log`` / ``test.log`` of the run dir.
A run whose ``test_metrics.json`` exists is not run again, so an
interrupted study resumes where it stopped when called with the same
arguments. After every run it (re)writes a markdown table (``--out-md``,
default ``DIR/summary.md``) with, per config, the mean ± sample standard
deviation (n - 1 in the denominator) over the seeds of each ``--keys``
entry, and a JSON
(``--out-json``, default ``DIR/summary.json``) with every per-seed value,
the wall time of each run, the training budget read from each config (a
warning is printed when the configs' budgets differ) and the exact
command, which it also prints.

The keys are whatever the test JSON holds: ``t2i/R@1`` ... for text-image
retrieval, ``general/R@1``, ``cc/mAP`` ... for cloth-changing ReID.
"""
import argparse
import json
import os
import os.path as osp
import shlex
import statistics
import subprocess
import sys
import time
from typing import Callable, Dict, List, Optional, Sequence

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))
TRAIN_SCRIPT = osp.join(ROOT, 'tools', 'train.py')
TEST_SCRIPT = osp.join(ROOT, 'tools', 'test.py')
METRICS_FILE = 'test_metrics.json'
# wall time of a run's train + test, kept so a resumed study still reports it
WALL_FILE = 'run_seeds_wall.json'
DEFAULT_KEYS = ('t2i/R@1', 't2i/R@5', 't2i/R@10', 't2i/mAP')

#: ``runner(command, log_file, cwd) -> None``; raises on failure.
Runner = Callable[[List[str], str, str], None]


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description='Train and test configs over seeds; write mean ± std')
    parser.add_argument('configs', nargs='+', help='config files')
    parser.add_argument(
        '--work-dir', required=True, help='root of the per-run work dirs')
    parser.add_argument(
        '--seeds',
        type=int,
        nargs='+',
        default=[0, 1, 2],
        help='training seeds (randomness.seed)')
    parser.add_argument(
        '--keys',
        nargs='+',
        default=list(DEFAULT_KEYS),
        help='metric keys of the test JSON to tabulate')
    parser.add_argument(
        '--cfg-options',
        nargs='+',
        default=[],
        metavar='KEY=VALUE',
        help='passed to both tools/train.py and tools/test.py')
    parser.add_argument(
        '--train-args',
        default='',
        metavar='ARGS',
        help='extra tools/train.py arguments as one string, written with '
        '"=" because they start with a dash: --train-args=--no-validate')
    parser.add_argument(
        '--nice',
        type=int,
        default=0,
        help='run the trainings and tests under `nice -n N`')
    parser.add_argument('--out-md', help='markdown table (DIR/summary.md)')
    parser.add_argument('--out-json', help='all values (DIR/summary.json)')
    args = parser.parse_args(argv)
    if any('=' not in opt for opt in args.cfg_options):
        parser.error('--cfg-options entries must be key=value, got '
                     f'{args.cfg_options}')
    if len(set(args.seeds)) != len(args.seeds):
        parser.error(f'--seeds has duplicates: {args.seeds}')
    args.train_args = shlex.split(args.train_args)
    return args


def config_name(path: str) -> str:
    """The label of a config in the table: its file name without ``.py``."""
    return osp.splitext(osp.basename(path))[0]


def run_dir(work_dir: str, config: str, seed: int) -> str:
    return osp.join(work_dir, config_name(config), f'seed{seed}')


def _script(path: str, cwd: str) -> str:
    # relative when run from the repository root, so logs read as the docs
    rel = osp.relpath(path, cwd)
    return path if rel.startswith('..') else rel


def run_command(command: List[str], log_file: str, cwd: str) -> None:
    """Run ``command`` with its output in ``log_file``; raise on failure."""
    with open(log_file, 'a') as log:
        log.write(f'$ {shlex.join(command)}\n')
        log.flush()
        proc = subprocess.run(
            command, cwd=cwd, stdout=log, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        with open(log_file) as log:
            tail = log.read()[-3000:]
        raise RuntimeError(f'command failed with status {proc.returncode} '
                           f'(full output in {log_file}):\n'
                           f'{shlex.join(command)}\n{tail}')


def final_checkpoint(directory: str) -> Optional[str]:
    """The checkpoint MMEngine's ``last_checkpoint`` file names, if any."""
    pointer = osp.join(directory, 'last_checkpoint')
    if not osp.isfile(pointer):
        return None
    with open(pointer) as f:
        path = f.read().strip()
    if not osp.isabs(path) and not osp.isfile(path):
        path = osp.join(directory, osp.basename(path))
    return path if osp.isfile(path) else None


def load_metrics(path: str, keys: Sequence[str]) -> Dict[str, float]:
    """The ``keys`` of a test JSON; a missing key names the file."""
    with open(path) as f:
        metrics = json.load(f)
    missing = [k for k in keys if k not in metrics]
    if missing:
        raise KeyError(f'{path} lacks the metric keys {missing}; it has '
                       f'{sorted(metrics)} (choose them with --keys)')
    return {k: float(metrics[k]) for k in keys}


def summarize(values: Sequence[float]) -> Dict:
    """Mean and sample standard deviation (None for a single value, so the
    JSON stays standard)."""
    values = list(values)
    if not values:
        raise ValueError('no values to summarize')
    std = statistics.stdev(values) if len(values) > 1 else None
    return dict(
        mean=statistics.fmean(values), std=std, n=len(values), values=values)


def read_budget(config: str, cfg_options: Sequence[str]) -> Dict:
    """Epochs/iterations and batch size the config trains with."""
    from mmengine.config import Config, DictAction
    cfg = Config.fromfile(config)
    if cfg_options:
        parser = argparse.ArgumentParser()
        parser.add_argument('--o', nargs='+', action=DictAction)
        cfg.merge_from_dict(parser.parse_args(['--o', *cfg_options]).o)
    train_cfg = cfg.get('train_cfg') or {}
    loader = cfg.get('train_dataloader') or {}
    budget = {
        k: train_cfg[k]
        for k in ('max_epochs', 'max_iters') if k in train_cfg
    }
    budget['batch_size'] = loader.get('batch_size')
    optim = (cfg.get('optim_wrapper') or {}).get('optimizer') or {}
    budget['optimizer'] = optim.get('type')
    budget['lr'] = optim.get('lr')
    return budget


def run_one(config: str, seed: int, work_dir: str, cfg_options: Sequence[str],
            train_args: Sequence[str], nice: int, runner: Runner, python: str,
            cwd: str) -> str:
    """Train and test one (config, seed); return the test JSON path.

    Paths in the commands stay as given (relative to ``cwd``, where the
    commands run); files are looked up under ``cwd``.
    """
    out_dir = run_dir(work_dir, config, seed)
    local_dir = osp.join(cwd, out_dir)
    metrics_file = osp.join(out_dir, METRICS_FILE)
    os.makedirs(local_dir, exist_ok=True)
    prefix = ['nice', '-n', str(nice)] if nice else []
    options = [f'randomness.seed={seed}', *cfg_options]
    train = [
        *prefix, python,
        _script(TRAIN_SCRIPT, cwd), config, '--work-dir', out_dir, *train_args,
        '--cfg-options', *options
    ]
    if final_checkpoint(local_dir) is not None:
        # an interrupted training: continue from its last checkpoint
        train.insert(train.index('--work-dir'), '--resume')
    print(
        f'[{config_name(config)} seed {seed}] {shlex.join(train)}', flush=True)
    runner(train, osp.join(local_dir, 'train.log'), cwd)
    ckpt = final_checkpoint(local_dir)
    if ckpt is None:
        raise FileNotFoundError(
            f'{out_dir}: training finished but left no last_checkpoint; see '
            f'{osp.join(out_dir, "train.log")}')
    test = [
        *prefix, python,
        _script(TEST_SCRIPT, cwd), config, ckpt, '--work-dir',
        osp.join(out_dir, 'test'), '--out', metrics_file
    ]
    if cfg_options:
        test += ['--cfg-options', *cfg_options]
    print(
        f'[{config_name(config)} seed {seed}] {shlex.join(test)}', flush=True)
    runner(test, osp.join(local_dir, 'test.log'), cwd)
    if not osp.isfile(osp.join(cwd, metrics_file)):
        raise FileNotFoundError(f'{shlex.join(test)} wrote no {metrics_file}')
    return osp.join(cwd, metrics_file)


def run_study(configs: Sequence[str],
              seeds: Sequence[int],
              work_dir: str,
              keys: Sequence[str] = DEFAULT_KEYS,
              cfg_options: Sequence[str] = (),
              train_args: Sequence[str] = (),
              nice: int = 0,
              runner: Runner = run_command,
              python: str = sys.executable,
              cwd: Optional[str] = None,
              command: str = '',
              on_update: Optional[Callable[[Dict], None]] = None) -> Dict:
    """Run every (config, seed) not done yet and aggregate the test metrics.

    Args:
        configs: Config files; their file names label the rows and must
            differ.
        seeds: Training seeds.
        work_dir: Root of the run dirs ``<work_dir>/<config>/seed<S>``.
        keys: Metric keys to read from each test JSON.
        cfg_options: ``key=value`` overrides for training and testing.
        train_args: Extra arguments of ``tools/train.py``.
        nice: Niceness of the runs (0: not changed).
        runner: Executes one command; replaced in tests.
        python: Interpreter of the runs.
        cwd: Folder the commands run in, which relative paths (configs,
            ``work_dir``, data roots of the configs) are relative to.
            Defaults to the current directory.
        command: The command line of the study, recorded in the result.
        on_update: Called with the partial result after every run (done
            or skipped), e.g. to keep the summary files current.

    Returns:
        dict: ``command``, ``keys``, ``seeds``, ``configs`` (path by label),
        ``budget`` (by label), ``runs`` (label -> seed -> {key: value,
        'wall_s': train + test seconds, None if unknown}) and ``summary``
        (label -> key -> {mean, std, n, values}, over the seeds run so
        far).
    """
    cwd = os.getcwd() if cwd is None else cwd
    names = [config_name(c) for c in configs]
    if len(set(names)) != len(names):
        raise ValueError(f'configs must have distinct file names: {names}')
    for config in configs:
        if not osp.isfile(osp.join(cwd, config)):
            raise FileNotFoundError(f'config {config} not found in {cwd}')
    result = dict(
        command=command,
        keys=list(keys),
        seeds=list(seeds),
        configs=dict(zip(names, configs)),
        budget={},
        runs={},
        summary={})
    for config, name in zip(configs, names):
        result['budget'][name] = read_budget(
            osp.join(cwd, config), cfg_options)
    budgets = {
        json.dumps(b, sort_keys=True)
        for b in result['budget'].values()
    }
    if len(budgets) > 1:
        print(
            'WARNING: the configs train with different budgets: ' +
            json.dumps(result['budget']),
            flush=True)
    # Seed-major: every config gets seed 0 before any gets seed 1, so a
    # study stopped early still compares all configs.
    for seed in seeds:
        for config, name in zip(configs, names):
            runs = result['runs'].setdefault(name, {})
            metrics_file = osp.join(cwd, run_dir(work_dir, config, seed),
                                    METRICS_FILE)
            wall_file = osp.join(osp.dirname(metrics_file), WALL_FILE)
            if osp.isfile(metrics_file):
                print(
                    f'[{name} seed {seed}] done already: {metrics_file}',
                    flush=True)
            else:
                start = time.perf_counter()
                run_one(config, seed, work_dir, cfg_options, train_args, nice,
                        runner, python, cwd)
                with open(wall_file, 'w') as f:
                    json.dump(
                        dict(wall_s=round(time.perf_counter() - start, 1)), f)
            wall = None
            if osp.isfile(wall_file):
                with open(wall_file) as f:
                    wall = json.load(f)['wall_s']
                print(
                    f'[{name} seed {seed}] train + test took {wall:.0f} s',
                    flush=True)
            runs[str(seed)] = dict(
                load_metrics(metrics_file, keys), wall_s=wall)
            result['summary'][name] = {
                key:
                summarize([runs[str(s)][key] for s in seeds if str(s) in runs])
                for key in keys
            }
            if on_update is not None:
                on_update(result)
    return result


def _cell(stats: Dict) -> str:
    if stats['std'] is None:
        return f'{stats["mean"]:.2f}'
    return f'{stats["mean"]:.2f} ± {stats["std"]:.2f}'


def to_markdown(result: Dict) -> str:
    """The table of mean ± std per config, with the command under it."""
    keys = result['keys']
    seeds = ', '.join(str(s) for s in result['seeds'])
    lines = [
        '| config | n | ' + ' | '.join(keys) + ' |',
        '|---|---|' + '---|' * len(keys),
    ]
    for name, stats in result['summary'].items():
        n = stats[keys[0]]['n']
        lines.append(f'| `{name}` | {n} | ' +
                     ' | '.join(_cell(stats[k]) for k in keys) + ' |')
    lines += [
        '',
        f'Mean ± sample std (n - 1 in the denominator) over the seeds '
        f'{seeds} run so far (n per row).',
    ]
    if result.get('command'):
        lines += ['', f'Command: `{result["command"]}`']
    return '\n'.join(lines) + '\n'


def main(argv: Optional[Sequence[str]] = None) -> Dict:
    args = parse_args(argv)
    argv = sys.argv[1:] if argv is None else list(argv)
    command = shlex.join(['python', '.dev_scripts/run_seeds.py', *argv])
    # the thread count changes speed (and float summation order): record it
    threads = os.environ.get('OMP_NUM_THREADS')
    if threads:
        command = f'OMP_NUM_THREADS={threads} {command}'
    print(f'study: {command}', flush=True)
    out_md = args.out_md or osp.join(args.work_dir, 'summary.md')
    out_json = args.out_json or osp.join(args.work_dir, 'summary.json')
    for path in (out_md, out_json):
        os.makedirs(osp.dirname(osp.abspath(path)), exist_ok=True)

    def write(result: Dict) -> None:
        with open(out_md, 'w') as f:
            f.write(to_markdown(result))
        with open(out_json, 'w') as f:
            json.dump(result, f, indent=2)

    result = run_study(
        args.configs,
        args.seeds,
        args.work_dir,
        keys=args.keys,
        cfg_options=args.cfg_options,
        train_args=args.train_args,
        nice=args.nice,
        command=command,
        on_update=write)
    write(result)
    print(
        '\n' + to_markdown(result) + f'\nwritten: {out_md}, {out_json}',
        flush=True)
    return result


if __name__ == '__main__':
    main()
