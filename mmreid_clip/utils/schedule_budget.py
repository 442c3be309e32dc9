"""Fit a config's schedules to its training budget.

Changing ``train_cfg.max_epochs`` alone leaves every parameter scheduler
where it was: a cosine written for 60 epochs still ends at epoch 60 in a
10-epoch run, and a two-stage (CLIP-ReID / CCAF) config whose stages are
shortened keeps its stage-2 warm-up at epoch 120. Two pieces fix that:

- :func:`rescale_epochs` (``tools/train.py --epochs N [--stage1-epochs M]``)
  maps every epoch position of the config through one piecewise-linear map
  of the old budget onto the new one (per stage for the two-stage loop),
  rounded to whole epochs in order (:func:`snap_positions`):
  each scheduler's ``begin``/``end``, its durations counted from ``begin``
  (``milestones``, ``T_max``, ``step_size``, ``periods``, ``total_steps``,
  :class:`~mmreid_clip.engine.TimmCosineLR`'s ``t_max``/``warmup_t``), the
  validation and checkpoint intervals and the stage boundary.
- :func:`schedule_budget_problems` lists the schedulers that end after, or
  begin at or after, the end of training (or, for the two-stage loop, that
  cross the stage boundary they were written for);
  :class:`~mmreid_clip.engine.ScheduleBudgetHook` logs them as warnings
  when training starts.
"""
import copy
import math
from typing import Callable, Dict, List, Optional, Tuple

from mmengine.config import Config

__all__ = [
    'epoch_map', 'iter_schedulers', 'rescale_epochs', 'rescale_scheduler',
    'schedule_budget_problems', 'snap_positions'
]

#: mmengine's "no end" default (``INF`` in ``param_scheduler.py``).
_NO_END = 1000000000

#: Scheduler arguments that are lengths counted from ``begin``.
_DURATIONS = ('T_max', 'step_size', 'total_steps', 't_max', 'warmup_t')
_TWO_STAGE = 'TwoStageEpochBasedTrainLoop'


def _is_two_stage(train_cfg: dict) -> bool:
    return str(train_cfg.get('type', '')).endswith(_TWO_STAGE)


def iter_schedulers(param_scheduler) -> List[Tuple[str, dict]]:
    """``(group, scheduler config)`` pairs of a ``param_scheduler`` value.

    Args:
        param_scheduler: A scheduler config, a list of them or a dict of
            lists keyed by optimizer (``MultiOptimWrapperConstructor``).

    Returns:
        list: ``group`` is the optimizer key ('' for a single optimizer).
    """
    if param_scheduler is None:
        return []
    if isinstance(param_scheduler, dict) and 'type' not in param_scheduler:
        out = []
        for group, value in param_scheduler.items():
            if group.startswith('_'):  # _delete_
                continue
            out.extend((group, s) for _, s in iter_schedulers(value))
        return out
    if isinstance(param_scheduler, dict):
        return [('', param_scheduler)]
    return [('', s) for s in param_scheduler]


def epoch_map(old_total: int,
              new_total: int,
              old_stage1: Optional[int] = None,
              new_stage1: Optional[int] = None) -> Callable[[float], float]:
    """The piecewise-linear map of old epoch positions onto new ones.

    ``[0, old_stage1]`` goes onto ``[0, new_stage1]`` and
    ``[old_stage1, old_total]`` onto ``[new_stage1, new_total]``; without
    stages (or with an empty one) it is one line through 0. Positions past
    ``old_total`` keep the last piece's slope.
    """
    if old_stage1 in (None, 0, old_total):
        scale = new_total / old_total
        return lambda e: e * scale
    a = new_stage1 / old_stage1
    b = (new_total - new_stage1) / (old_total - old_stage1)

    def f(e: float) -> float:
        return e * a if e <= old_stage1 else new_stage1 + (e - old_stage1) * b

    return f


def _round(x: float) -> int:
    return int(math.floor(x + 0.5))


def snap_positions(positions, f: Callable[[float], float],
                   anchors: Dict[int, int]) -> Dict[int, int]:
    """Whole-epoch images of ``positions`` under ``f``, in order.

    Rounding each position alone could put a cosine's ``begin`` before the
    ``end`` of the warm-up it follows, or make a scheduler empty. Here the
    anchors (0, the stage boundary, the last epoch) keep their given images
    and the positions between two anchors are rounded and then kept
    strictly increasing while there are enough epochs between the anchors'
    images (otherwise neighbours may share an epoch).

    Args:
        positions: Old epoch positions (ints).
        f (Callable): :func:`epoch_map`.
        anchors (dict): ``{old position: new position}``, fixed.

    Returns:
        dict: ``{old position: new position}`` for every position and
        anchor.
    """
    pts = sorted(set(positions) | set(anchors))
    out = dict(anchors)
    cuts = sorted(anchors)
    bounds = list(zip(cuts, cuts[1:] + [None]))
    for lo_old, hi_old in bounds:
        inner = [
            p for p in pts if p > lo_old and (hi_old is None or p < hi_old)
        ]
        lo = out[lo_old]
        hi = math.inf if hi_old is None else out[hi_old]
        strict = hi - lo - 1 >= len(inner)
        prev = lo
        for i, p in enumerate(inner):
            v = _round(f(p))
            if strict:
                v = min(max(v, prev + 1), hi - (len(inner) - i))
            else:
                v = min(max(v, prev), hi)
            out[p] = prev = v
    for p in pts:
        if p < cuts[0]:
            out[p] = _round(f(p))
    return out


def _positions(scheduler: dict) -> List[int]:
    """Every epoch position a scheduler config names (lengths from begin)."""
    begin = scheduler.get('begin', 0)
    found = [begin]
    end = scheduler.get('end')
    if end is not None and end < _NO_END:
        found.append(end)
    for key in _DURATIONS:
        value = scheduler.get(key)
        if isinstance(value, (int, float)) and value > 0:
            found.append(begin + value)
    for m in scheduler.get('milestones') or []:
        found.append(begin + m)
    done = 0
    for period in scheduler.get('periods') or []:
        done += period
        found.append(begin + done)
    return found


def rescale_scheduler(scheduler: dict,
                      g: Callable[[int], int],
                      budget: Optional[int] = None) -> dict:
    """A copy of one epoch-based scheduler config with its epochs mapped.

    ``begin`` and a finite ``end`` are mapped as positions; ``milestones``,
    ``T_max``, ``step_size``, ``total_steps``, ``t_max``, ``warmup_t`` and
    ``periods`` as lengths counted from ``begin`` (as mmengine counts them),
    all in whole epochs (also for ``convert_to_iter_based``: a fraction of
    an epoch can be no iteration on a small dataset). A scheduler stays at
    least one epoch long (a by-epoch ``Linear*`` scheduler two, so that it
    still reaches ``end_factor``, unless that passes ``budget``) and a
    positive length stays at least 1.

    Args:
        scheduler (dict): A scheduler config (``by_epoch=True``).
        g (Callable): Old epoch -> new epoch (:func:`snap_positions`).
        budget (int, optional): The new last epoch, which ``end`` is not
            pushed past.

    Returns:
        dict: The new config (an absent ``end`` stays absent: it means the
        end of training, which moves by itself).
    """
    new = copy.deepcopy(dict(scheduler))
    begin = new.get('begin', 0)
    end = new.get('end')
    new_begin = g(begin)
    if 'begin' in new:
        new['begin'] = new_begin
    if end is not None and end < _NO_END:
        # mmengine's linear schedulers reach end_factor at step
        # end - begin - 1: one epoch long, they would never leave
        # start_factor (by epoch; converted ones count iterations)
        shortest = 2 if (str(new.get('type', '')).startswith('Linear')
                         and not new.get('convert_to_iter_based', False)
                         and end - begin >= 2) else 1
        new['end'] = max(g(end), new_begin + shortest)
        if budget is not None and new['end'] > budget >= new_begin + 1:
            new['end'] = budget
    for key in _DURATIONS:
        value = new.get(key)
        if isinstance(value, (int, float)) and value > 0:
            new[key] = max(g(begin + value) - new_begin, 1)
    if isinstance(new.get('milestones'), (list, tuple)):
        new['milestones'] = [
            max(g(begin + m) - new_begin, 1) for m in new['milestones']
        ]
    if isinstance(new.get('periods'), (list, tuple)):
        out, done, start = [], 0, new_begin
        for period in new['periods']:
            done += period
            stop = g(begin + done)
            out.append(max(stop - start, 1))
            start = stop
        new['periods'] = out
    return new


def _split_stages(total: int, old_total: int, old_stage1: int,
                  stage1: Optional[int]) -> int:
    if stage1 is not None:
        if not 0 <= stage1 <= total:
            raise ValueError(f'--stage1-epochs {stage1} must be in '
                             f'[0, --epochs {total}]')
        return stage1
    if old_stage1 == 0:
        return 0
    if old_stage1 == old_total:
        return total
    # proportional, at least one epoch of each stage
    new = _round(total * old_stage1 / old_total)
    return min(max(new, 1), total - 1) if total >= 2 else new


def rescale_epochs(cfg: Config,
                   epochs: int,
                   stage1_epochs: Optional[int] = None) -> List[str]:
    """Change an epoch-based config's budget, schedules included, in place.

    Every scheduler keeps its shape relative to the run: positions are
    mapped by :func:`epoch_map` (for the two-stage loop stage 1 onto the new
    stage 1 and stage 2 onto the new stage 2, so a stage-1 scheduler still
    ends at the stage boundary and the stage-2 warm-up still starts there).
    Iteration-based schedulers (``by_epoch=False``) are mapped as epochs
    times the iterations per epoch, which do not change. The validation
    and checkpoint intervals are scaled too (at least 1).

    Args:
        cfg (Config): The merged config, changed in place.
        epochs (int): The new ``train_cfg.max_epochs``.
        stage1_epochs (int, optional): Two-stage loop only: the new
            ``stage1_epochs``; by default the old stage-1 share of the
            budget (at least one epoch of each stage).

    Returns:
        list[str]: One line per change, for the log.

    Raises:
        ValueError: an iteration-based train loop, a non-positive budget, or
            ``stage1_epochs`` for a single-stage loop.
    """
    train_cfg = cfg.get('train_cfg') or {}
    if epochs < 1:
        raise ValueError(f'--epochs must be >= 1, got {epochs}')
    if 'max_epochs' not in train_cfg:
        raise ValueError(
            '--epochs needs an epoch-based train_cfg (train_cfg.max_epochs); '
            'this config trains for train_cfg.max_iters: override that with '
            '--cfg-options and the schedulers\' begin/end by hand')
    old_total = int(train_cfg['max_epochs'])
    two_stage = _is_two_stage(train_cfg)
    if stage1_epochs is not None and not two_stage:
        raise ValueError('--stage1-epochs applies to two-stage configs '
                         f'({_TWO_STAGE}) only')
    changes = [f'train_cfg.max_epochs: {old_total} -> {epochs}']
    old_s1 = new_s1 = None
    if two_stage:
        old_s1 = int(train_cfg.get('stage1_epochs', 0))
        new_s1 = _split_stages(epochs, old_total, old_s1, stage1_epochs)
        if old_s1 not in (0, old_total) and new_s1 in (0, epochs):
            raise ValueError(
                f'--epochs {epochs} leaves no room for both stages (stage 1 '
                f'{new_s1} epochs); give at least 2 epochs or set '
                '--stage1-epochs')
        changes.append(f'train_cfg.stage1_epochs: {old_s1} -> {new_s1}')
        train_cfg['stage1_epochs'] = new_s1
    f = epoch_map(old_total, epochs, old_s1, new_s1)
    train_cfg['max_epochs'] = epochs
    sched = cfg.get('param_scheduler')
    anchors = {0: 0, old_total: epochs}
    if old_s1:
        anchors[old_s1] = new_s1
    positions = [
        p for _, s in iter_schedulers(sched) if s.get('by_epoch', True)
        for p in _positions(s)
    ]
    table = snap_positions(positions, f, anchors)

    def g(e: int) -> int:
        return table[e] if e in table else _round(f(e))

    def scale_interval(value: int, start: float = 0) -> int:
        return max(_round(f(start + value) - f(start)), 1)

    stage2_start = old_s1 or 0
    if isinstance(train_cfg.get('val_interval'), int):
        old = train_cfg['val_interval']
        train_cfg['val_interval'] = scale_interval(old, stage2_start)
        changes.append(
            f'train_cfg.val_interval: {old} -> {train_cfg["val_interval"]}')
    if isinstance(train_cfg.get('val_begin'), (int, float)):
        old = train_cfg['val_begin']
        train_cfg['val_begin'] = _round(f(old))
        changes.append(
            f'train_cfg.val_begin: {old} -> {train_cfg["val_begin"]}')
    ckpt = (cfg.get('default_hooks') or {}).get('checkpoint')
    if (isinstance(ckpt, dict) and ckpt.get('by_epoch', True)
            and isinstance(ckpt.get('interval'), int)
            and ckpt['interval'] > 1):
        old = ckpt['interval']
        ckpt['interval'] = scale_interval(old, stage2_start)
        changes.append(f'default_hooks.checkpoint.interval: {old} -> '
                       f'{ckpt["interval"]}')

    if sched is not None:

        def convert(s: dict, group: str) -> dict:
            if not s.get('by_epoch', True):
                raise ValueError(
                    f'--epochs cannot rescale the iteration-based '
                    f'{s.get("type")} (by_epoch=False): write it with '
                    'by_epoch=True and convert_to_iter_based=True')
            new = rescale_scheduler(s, g, epochs)
            what = ', '.join(
                f'{k} {s.get(k)} -> {new.get(k)}'
                for k in ('begin', 'end', 'milestones', *_DURATIONS, 'periods')
                if k in s and s.get(k) != new.get(k))
            if what:
                name = f'{group}: ' if group else ''
                changes.append(f'param_scheduler {name}{s.get("type")}: '
                               f'{what}')
            return new

        cfg.param_scheduler = _map_schedulers(sched, convert)
    # helper variables of the config, so that its dump reads consistently
    for key, value in (('max_epochs', epochs), ('stage1_epochs', new_s1),
                       ('stage2_epochs',
                        None if new_s1 is None else epochs - new_s1)):
        if value is not None and isinstance(cfg.get(key), int):
            cfg[key] = value
    return changes


def _map_schedulers(sched, fn, group: str = ''):
    if isinstance(sched, dict) and 'type' not in sched:
        return {
            k: (v if k.startswith('_') else _map_schedulers(v, fn, k))
            for k, v in sched.items()
        }
    if isinstance(sched, dict):
        return fn(sched, group)
    return [fn(s, group) for s in sched]


def schedule_budget_problems(cfg: Config) -> List[str]:
    """Schedulers that do not fit the training budget, one line each.

    Reported: a scheduler whose finite ``end`` lies after the last epoch
    (its tail never runs: a cosine cut short), one whose ``begin`` is at or
    after the end of training (it never runs: a warm-up that never comes)
    and, for the two-stage loop, one that crosses the stage boundary (a
    stage-1 schedule still moving in stage 2), an optimizer whose
    schedulers all start later than stage 2 (its rate is flat until then)
    and a ``convert_to_iter_based`` scheduler placed by epoch (MMEngine
    converts with one epoch length; the two stages' epochs differ).
    Positions are compared in the scheduler's unit: epochs when
    ``by_epoch`` (also with ``convert_to_iter_based``), iterations for an
    iteration-based loop; iteration-based schedulers of an epoch-based loop
    are not checked (their budget depends on the dataloader's length).

    Args:
        cfg (Config): The merged config.

    Returns:
        list[str]: Empty when every scheduler fits; otherwise the problems
        and, last, what to do.
    """
    train_cfg = cfg.get('train_cfg') or {}
    sched = cfg.get('param_scheduler')
    if sched is None:
        return []
    if 'max_epochs' in train_cfg:
        total, unit = int(train_cfg['max_epochs']), 'epoch'
    elif 'max_iters' in train_cfg:
        total, unit = int(train_cfg['max_iters']), 'iteration'
    else:
        return []
    two_stage = _is_two_stage(train_cfg) and unit == 'epoch'
    s1 = int(train_cfg.get('stage1_epochs', 0)) if two_stage else 0
    problems = []
    first_begin: Dict[str, int] = {}
    for group, s in iter_schedulers(sched):
        name = f'{group}: {s.get("type")}' if group else str(s.get('type'))
        if unit == 'epoch' and not s.get('by_epoch', True):
            continue
        begin = s.get('begin', 0)
        end = s.get('end')
        if end is not None and end >= _NO_END:
            end = None
        first_begin[group] = min(first_begin.get(group, begin), begin)
        if begin >= total:
            problems.append(f'{name} begins at {unit} {begin} but training '
                            f'ends after {unit} {total}: it never runs')
        elif end is not None and end > total:
            problems.append(
                f'{name} ends at {unit} {end} but training ends after '
                f'{unit} {total}: its last {end - total} {unit}s never run')
        if two_stage and 0 < s1 < total and end is not None and \
                begin < s1 < end:
            problems.append(
                f'{name} spans epochs [{begin}, {end}), across the end of '
                f'stage 1 (after epoch {s1})')
        if two_stage and s.get('convert_to_iter_based') and (
                begin > 0 or (end is not None and end < total)):
            # MMEngine converts epochs to iterations with one epoch length
            # (the training dataloader's), but a stage-1 epoch iterates over
            # the feature cache in batches of stage1_batch_size: the two
            # lengths differ in general, so the scheduler starts or ends off
            # the epoch it names.
            problems.append(
                f'{name} is by_epoch with convert_to_iter_based: its epochs '
                'are converted to iterations with the stage-2 epoch length, '
                'but stage-1 epochs have another length (the feature cache '
                'in batches of stage1_batch_size), so it starts or ends off '
                'epoch boundaries; drop convert_to_iter_based (step per '
                'epoch)')
    if two_stage and 0 < s1 < total:
        for group, begin in first_begin.items():
            if group and s1 < begin < total:
                problems.append(
                    f'{group}: its schedulers begin at epoch {begin}, after '
                    f'stage 2 starts (epoch {s1}): its rate is flat until '
                    'then')
    if problems:
        problems.append('use tools/train.py --epochs N (and --stage1-epochs '
                        'M), which rescales the schedules with the budget, '
                        'or fix begin/end in the config')
    return problems
