"""Config mistakes reported with the name that was probably meant.

Three kinds of mistake otherwise cost a run or a confusing traceback:

- a misspelt config key (``resmue=True``, ``train_dataloder``,
  ``randomness.seeed``): mmengine reads keys with ``cfg.get`` and silently
  ignores unknown ones, so the run goes on without the setting.
  :func:`check_config_keys` compares the keys against what the Runner and
  its sections accept and raises :class:`ConfigKeyError` naming the close
  matches;
- a value of the wrong kind (``lr=abc``, ``randomness.seed=abc``), which
  fails deep inside torch or mmengine without naming the key:
  :func:`check_config_values` (run by :func:`check_config_keys`) raises
  :class:`ConfigValueError` naming each key and value;
- an unknown ``type`` or constructor argument: mmengine's registry raises a
  ``KeyError`` (``X is not in the mmreid_clip::model registry``) or Python a
  ``TypeError`` (``got an unexpected keyword argument``).
  :func:`explain_build_errors` re-raises them as
  :class:`UnknownTypeError` / :class:`UnknownArgumentError` listing the
  registered names (the registry and its parents) or the accepted arguments
  that are closest.
"""
import contextlib
import difflib
import inspect
import re
from typing import Dict, Iterable, Iterator, List, Optional, Sequence

from mmengine.config import Config
from mmengine.registry import Registry

__all__ = [
    'ConfigKeyError', 'ConfigValueError', 'UnknownArgumentError',
    'UnknownTypeError', 'check_config_keys', 'check_config_values',
    'close_matches', 'explain_build_errors'
]


class _MessageMixin:
    """``KeyError`` quotes its message; these print it as written."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ''


class ConfigKeyError(_MessageMixin, KeyError):
    """A config key that nothing reads, probably a typo."""


class ConfigValueError(ValueError):
    """A config value of the wrong kind (``lr='abc'``), named by its key."""


class UnknownTypeError(_MessageMixin, KeyError):
    """A ``type`` that is not registered where it is built."""


class UnknownArgumentError(TypeError):
    """A config entry passes an argument its class does not take."""


def close_matches(word: str,
                  candidates: Iterable[str],
                  n: int = 3,
                  cutoff: float = 0.6) -> List[str]:
    """``difflib`` close matches, case-insensitive, best first.

    Args:
        word (str): The unknown name.
        candidates (Iterable[str]): Valid names.
        n (int): At most this many. Defaults to 3.
        cutoff (float): Similarity in [0, 1] below which a candidate is not
            offered. Defaults to 0.6.
    """
    by_lower: Dict[str, str] = {}
    for candidate in candidates:
        by_lower.setdefault(str(candidate).lower(), str(candidate))
    found = difflib.get_close_matches(
        word.lower(), list(by_lower), n=n, cutoff=cutoff)
    return [by_lower[f] for f in found]


def _did_you_mean(matches: Sequence[str]) -> str:
    if not matches:
        return ''
    return ' Did you mean ' + ' or '.join(repr(m) for m in matches) + '?'


# ----------------------------------------------------------------------
# config keys

#: Top-level keys read by mmengine's Runner (besides its arguments) or by
#: the tools of this project.
EXTRA_TOP_LEVEL_KEYS = frozenset({
    'model_wrapper_cfg',
    'compile',
    'activation_checkpointing',
    'efficient_conv_bn_eval',
    'sync_bn',
    'gpu_ids',
    'custom_imports',
    'vis_backends',
    'strategy',
    # TwoStageEpochBasedTrainLoop (CLIP-ReID / CCAF stage-1 feature cache)
    'stage1_dataloader'
})

#: Sections with a fixed set of keys that mmengine reads with ``.get``.
SECTION_KEYS = {
    'env_cfg':
    frozenset({'cudnn_benchmark', 'mp_cfg', 'dist_cfg', 'resource_limit'}),
    'randomness':
    frozenset({'seed', 'deterministic', 'diff_rank_seed'}),
    'auto_scale_lr':
    frozenset({'enable', 'base_batch_size'}),
}

#: Hook names of mmengine's defaults and of ``configs/_base_``.
DEFAULT_HOOK_NAMES = frozenset({
    'runtime_info', 'timer', 'sampler_seed', 'logger', 'param_scheduler',
    'checkpoint', 'visualization', 'random_state', 'nonfinite_loss',
    'checkpoint_match', 'num_classes_check'
})

#: Keys of a ``*_dataloader`` section that mmengine consumes itself.
RUNNER_DATALOADER_KEYS = frozenset({
    'dataset', 'sampler', 'batch_sampler', 'collate_fn', 'worker_init_fn',
    'num_batch_per_epoch'
})


def _runner_keys() -> frozenset:
    from mmengine.runner import Runner
    params = set(inspect.signature(Runner.__init__).parameters)
    params -= {'self', 'cfg'}
    return frozenset(params | EXTRA_TOP_LEVEL_KEYS)


def _dataloader_keys() -> frozenset:
    from torch.utils.data import DataLoader
    params = set(inspect.signature(DataLoader.__init__).parameters)
    return frozenset((params - {'self'}) | RUNNER_DATALOADER_KEYS)


def check_config_keys(cfg: Config, cutoff: float = 0.8) -> None:
    """Raise on config keys that look like misspellings of known keys.

    Top-level keys are only reported when they are close to a key the
    Runner reads (configs also define helper variables such as
    ``data_root``); keys of ``env_cfg``, ``randomness``, ``auto_scale_lr``
    and the ``*_dataloader`` sections (those with a ``dataset``), whose
    keys are fixed, are reported
    whenever they are unknown; a ``default_hooks`` entry without ``type``
    must name a known hook (one with ``type`` adds a hook).

    Args:
        cfg (Config): The merged config (after ``--cfg-options``).
        cutoff (float): Similarity from which a top-level key counts as a
            misspelling. Defaults to 0.8.

    Raises:
        ConfigKeyError: one line per suspicious key, with close matches.
    """
    problems = []
    known = _runner_keys()
    for key in cfg.keys():
        if key in known or key.startswith('_'):
            continue
        matches = close_matches(key, known, cutoff=cutoff)
        if matches:
            problems.append(f'top-level key {key!r} is not read by the Runner.'
                            f'{_did_you_mean(matches)}')
    for section, keys in SECTION_KEYS.items():
        value = cfg.get(section)
        if not isinstance(value, dict):
            continue
        for key in value:
            if key not in keys:
                problems.append(
                    f'{section}.{key} is not a {section} key (known: '
                    f'{", ".join(sorted(keys))}).'
                    f'{_did_you_mean(close_matches(key, keys))}')
    loader_keys = _dataloader_keys()
    # train/val/test and any other loader built by runner.build_dataloader
    # (e.g. stage1_dataloader of the two-stage loop)
    for section in [k for k in cfg.keys() if k.endswith('_dataloader')]:
        value = cfg.get(section)
        if not isinstance(value, dict) or 'dataset' not in value:
            continue
        for key in value:
            if key not in loader_keys:
                problems.append(
                    f'{section}.{key} is not a DataLoader argument.'
                    f'{_did_you_mean(close_matches(key, loader_keys))}')
    hooks = cfg.get('default_hooks')
    if isinstance(hooks, dict):
        for name, hook in hooks.items():
            if name in DEFAULT_HOOK_NAMES or hook is None:
                continue
            if isinstance(hook, dict) and 'type' in hook:
                continue  # an extra hook, added on purpose
            problems.append(
                f'default_hooks.{name} is not a default hook and has no '
                f'"type" (default hooks: '
                f'{", ".join(sorted(DEFAULT_HOOK_NAMES))}).'
                f'{_did_you_mean(close_matches(name, DEFAULT_HOOK_NAMES))}')
    if problems:
        where = f' ({cfg.filename})' if getattr(cfg, 'filename', None) else ''
        raise ConfigKeyError(f'Config{where} has keys that nothing reads, '
                             'probably typos:\n  - ' + '\n  - '.join(problems))
    check_config_values(cfg)


# ----------------------------------------------------------------------
# config values

#: Keys whose value must be a number (int or float), in the sections below.
NUMBER_KEYS = frozenset({
    'lr', 'weight_decay', 'momentum', 'eps', 'dampening', 'alpha',
    'lr_mult', 'decay_mult', 'bias_lr_mult', 'bias_decay_mult',
    'norm_decay_mult', 'dwconv_decay_mult', 'max_norm', 'norm_type',
    'eta_min', 'start_factor', 'end_factor', 'factor', 'gamma', 'T_max',
    'begin', 'end', 'power', 'eta_min_ratio'
})
#: Keys whose value must be an integer.
INT_KEYS = frozenset({
    'max_epochs', 'max_iters', 'val_interval', 'val_begin', 'batch_size',
    'num_workers', 'seed', 'interval', 'max_keep_ckpts', 'base_batch_size'
})
#: Keys whose value must be True or False.
BOOL_KEYS = frozenset({'deterministic', 'diff_rank_seed', 'by_epoch',
                       'convert_to_iter_based'})
#: Sections whose values are checked (and every ``*_dataloader``).
VALUE_SECTIONS = ('optim_wrapper', 'param_scheduler', 'randomness',
                  'train_cfg', 'auto_scale_lr', 'default_hooks')


def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _value_problems(node, path: str, problems: List[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            where = f'{path}.{key}' if path else str(key)
            if key in ('dataset', 'pipeline', 'model'):
                continue  # built by their own classes
            if isinstance(value, (dict, list, tuple)):
                if key == 'betas' and isinstance(value, (list, tuple)):
                    if not all(_is_number(v) for v in value):
                        problems.append(f'{where}={value!r} must be numbers')
                    continue
                _value_problems(value, where, problems)
            elif value is None:
                continue
            elif key in INT_KEYS and not (isinstance(value, int)
                                          and not isinstance(value, bool)):
                problems.append(f'{where}={value!r} must be an integer')
            elif key in NUMBER_KEYS and not _is_number(value):
                problems.append(f'{where}={value!r} must be a number')
            elif key in BOOL_KEYS and not isinstance(value, bool):
                problems.append(f'{where}={value!r} must be True or False')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            _value_problems(value, f'{path}[{i}]', problems)


def check_config_values(cfg: Config) -> None:
    """Raise on settings of the wrong kind, naming each key.

    A value given as text where a number is read (``--cfg-options
    optim_wrapper.optimizer.lr=abc``, ``randomness.seed=abc``) would
    otherwise fail deep inside torch or mmengine with a message that
    names neither the key nor the value. Checked: the learning-rate,
    decay, momentum and scheduler numbers of ``optim_wrapper`` and
    ``param_scheduler``, ``randomness``, the epochs and intervals of
    ``train_cfg``, ``auto_scale_lr``, the hooks' intervals, and
    ``batch_size`` / ``num_workers`` of every ``*_dataloader``.

    Args:
        cfg (Config): The merged config.

    Raises:
        ConfigValueError: one line per wrong value.
    """
    problems: List[str] = []
    sections = list(VALUE_SECTIONS) + [
        k for k in cfg.keys() if k.endswith('_dataloader')
    ]
    for section in sections:
        value = cfg.get(section)
        if isinstance(value, (dict, list, tuple)):
            _value_problems(value, section, problems)
    if problems:
        where = f' ({cfg.filename})' if getattr(cfg, 'filename', None) else ''
        raise ConfigValueError(
            f'Config{where} has values of the wrong kind:\n  - ' +
            '\n  - '.join(problems))


# ----------------------------------------------------------------------
# build errors

_UNKNOWN_TYPE = re.compile(
    r"(?P<type>[\w.]+) is not in the (?:(?P<scope>\w+)::)?(?P<name>[\w ]+?) "
    r'registry')
_UNKNOWN_ARG = re.compile(
    r"(?P<cls>\w+)(?:\.__init__)?\(\) got an unexpected keyword argument "
    r"'(?P<arg>\w+)'")


def _all_registries() -> List[Registry]:
    from mmengine import registry as mmengine_registry

    from mmreid_clip import registry as ours
    found: List[Registry] = []
    for module in (ours, mmengine_registry):
        for value in vars(module).values():
            if isinstance(value, Registry) and value not in found:
                found.append(value)
    # parents of ours (mmpretrain's, mmengine's roots)
    for reg in list(found):
        parent = reg.parent
        while parent is not None:
            if parent not in found:
                found.append(parent)
            parent = parent.parent
    return found


def _find_registry(scope: Optional[str], name: str) -> Optional[Registry]:
    for reg in _all_registries():
        if reg.name == name and (scope is None or reg.scope == scope):
            return reg
    return None


def registered_names(registry: Registry) -> List[str]:
    """Names a lookup in ``registry`` can resolve: its own and its
    parents'."""
    names: List[str] = []
    reg: Optional[Registry] = registry
    while reg is not None:
        try:
            reg.import_from_location()
        except Exception:  # an optional dependency of a location
            pass
        names.extend(reg.module_dict)
        reg = reg.parent
    return list(dict.fromkeys(names))


def _find_class(name: str):
    if name == 'DataLoader':
        from torch.utils.data import DataLoader
        return DataLoader
    for reg in _all_registries():
        obj = reg.module_dict.get(name)
        if obj is not None:
            return obj
    return None


def accepted_arguments(obj) -> List[str]:
    """Keyword arguments of a class (its ``__init__`` and, while that takes
    ``**kwargs``, its bases') or of a function."""
    names: List[str] = []
    targets = (
        [c.__init__ for c in inspect.getmro(obj)
         if '__init__' in vars(c)] if inspect.isclass(obj) else [obj])
    for target in targets:
        try:
            params = inspect.signature(target).parameters
        except (TypeError, ValueError):
            break
        names.extend(
            p for p, v in params.items()
            if p != 'self' and v.kind not in (v.VAR_POSITIONAL, v.VAR_KEYWORD))
        if not any(v.kind == v.VAR_KEYWORD for v in params.values()):
            break
    return list(dict.fromkeys(names))


def _explain_unknown_type(err: KeyError) -> Optional[str]:
    text = str(err.args[0]) if err.args else ''
    match = _UNKNOWN_TYPE.search(text)
    if match is None:
        return None
    obj_type, scope, name = match.group('type', 'scope', 'name')
    registry = _find_registry(scope, name)
    where = f'{scope}::{name}' if scope else name
    if registry is None:
        return f'Unknown type {obj_type!r}: it is not in the {where} registry.'
    names = registered_names(registry)
    matches = close_matches(obj_type.split('.')[-1], names, n=5, cutoff=0.5)
    hint = (
        _did_you_mean(matches)
        if matches else f' Registered there: {", ".join(sorted(names)[:30])}' +
        (' ...' if len(names) > 30 else '') + '.')
    return (f'Unknown type {obj_type!r}: it is not in the {where} registry '
            f'(nor its parents).{hint} If it is your own class, import its '
            'module (custom_imports) so that it registers.')


def _explain_unknown_argument(err: TypeError) -> Optional[str]:
    text = str(err)
    match = _UNKNOWN_ARG.search(text)
    if match is None:
        return None
    cls_name, arg = match.group('cls', 'arg')
    obj = _find_class(cls_name)
    if obj is None:
        return None
    accepted = accepted_arguments(obj)
    matches = close_matches(arg, accepted)
    return (f'{cls_name} got the unknown argument {arg!r} from the config.'
            f'{_did_you_mean(matches)} It accepts: {", ".join(accepted)}.')


@contextlib.contextmanager
def explain_build_errors() -> Iterator[None]:
    """Re-raise registry and argument errors with close matches.

    Wrap ``Runner.from_cfg`` and ``runner.train()`` / ``runner.test()``
    (components are built in both). Other exceptions pass unchanged.

    Raises:
        UnknownTypeError: for mmengine's ``X is not in the ... registry``.
        UnknownArgumentError: for ``got an unexpected keyword argument``.
    """
    try:
        yield
    except (UnknownTypeError, UnknownArgumentError, ConfigKeyError):
        raise
    except KeyError as err:
        message = _explain_unknown_type(err)
        if message is None:
            raise
        raise UnknownTypeError(message) from err
    except TypeError as err:
        message = _explain_unknown_argument(err)
        if message is None:
            raise
        raise UnknownArgumentError(message) from err
