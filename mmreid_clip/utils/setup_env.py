"""Runtime set-up shared by the train/test tools and the inference API."""
import os
import os.path as osp
import time
import warnings
from typing import Any, List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmreid_clip.compat import (apply_patches, cpu_ddp_wrapper_cfg,
                                init_cpu_distributed)
from mmreid_clip.safe_load import TRUST_ENV
from .config_check import check_config_keys
from .pretrained import missing_weights_path


#: What :func:`choose_torch_threads` decided, for the run's log.
THREADS_NOTE: List[str] = []


#: Machines with at most this many cores train on one torch thread.
SMALL_MACHINE_CORES = 2


def choose_torch_threads() -> str:
    """Set torch's CPU threads for a machine that may be small and busy.

    Torch starts one thread per core. On a small machine that other
    processes keep busy, oversubscribed threads wait on each other (on a
    loaded 2-core machine 2 threads ran 10-20x slower than 1). Unless
    ``OMP_NUM_THREADS`` (or ``MMREID_NUM_THREADS``) says otherwise, a
    machine of at most :data:`SMALL_MACHINE_CORES` cores gets one thread;
    larger ones keep torch's default, divided among the processes of a
    distributed run. The rule depends on the machine only, never on its
    momentary load, because the thread count changes the order of float
    sums: the same config and seed give the same numbers on the same
    machine, busy or idle.

    Returns:
        str: The decision, for the log (also kept in ``THREADS_NOTE``).
    """
    cores = (len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity')
             else (os.cpu_count() or 1))
    wanted = os.environ.get('MMREID_NUM_THREADS')
    if wanted:
        torch.set_num_threads(max(1, int(wanted)))
        note = (f'{torch.get_num_threads()} of {cores} CPU cores '
                '(MMREID_NUM_THREADS)')
    elif os.environ.get('OMP_NUM_THREADS'):
        note = (f'{torch.get_num_threads()} of {cores} CPU cores '
                f'(OMP_NUM_THREADS={os.environ["OMP_NUM_THREADS"]})')
    else:
        world = max(1, int(os.environ.get('WORLD_SIZE', '1') or 1))
        if cores <= SMALL_MACHINE_CORES:
            n = 1
        else:
            n = max(1, min(torch.get_num_threads(), cores // world or 1))
        if n != torch.get_num_threads():
            torch.set_num_threads(n)
        note = (f'{n} of {cores} CPU cores'
                + (f' ({world} processes)' if world > 1 else '') +
                (' (a small machine: one thread)'
                 if cores <= SMALL_MACHINE_CORES else '') +
                '; set OMP_NUM_THREADS to choose')
    THREADS_NOTE[:] = [note]
    return note


def ensure_custom_hooks(cfg: Config, *types: str) -> None:
    """Append ``dict(type=t)`` to ``cfg.custom_hooks`` for each type the
    config does not list already (the tools' own hooks)."""
    hooks = cfg.get('custom_hooks') or []
    for t in types:
        if not any(isinstance(h, dict) and h.get('type') == t for h in hooks):
            hooks.append(dict(type=t))
    cfg.custom_hooks = hooks


def register_all_modules(init_scope: bool = True) -> None:
    """Import every registering subpackage and set the default scope."""
    # mmcv-lite has no compiled ops; mmpretrain's import says so each time
    warnings.filterwarnings(
        'ignore', message='Fail to import ``MultiScaleDeformableAttention``')
    import mmreid_clip.datasets  # noqa: F401
    import mmreid_clip.engine  # noqa: F401
    import mmreid_clip.evaluation  # noqa: F401
    import mmreid_clip.models  # noqa: F401
    if init_scope:
        init_default_scope('mmreid_clip')


def amp_optim_wrapper_type(current: str) -> str:
    """The optimizer wrapper ``--amp`` switches to on this machine.

    Raises:
        ValueError: the config uses a wrapper that cannot be switched.
    """
    if current in ('AmpOptimWrapper', 'CPUAutocastOptimWrapper'):
        return current
    if current != 'OptimWrapper':
        raise ValueError(f'--amp converts only a plain OptimWrapper, the '
                         f'config uses {current}')
    # AmpOptimWrapper asserts a GPU; on CPU run the forward in bf16 autocast
    return ('AmpOptimWrapper'
            if torch.cuda.is_available() else 'CPUAutocastOptimWrapper')


def apply_amp(optim_wrapper: dict, dtype: Optional[str] = None) -> dict:
    """Switch an ``optim_wrapper`` config to mixed precision, in place.

    A plain wrapper becomes :func:`amp_optim_wrapper_type`'s; a
    ``MultiOptimWrapperConstructor`` config (one wrapper per parameter
    group: CLIP-ReID / CCAF) has each of its wrapper entries switched, so
    every group's forward runs under autocast. ``AmpOptimWrapper`` gets a
    dynamic loss scale unless the config sets one.

    Args:
        optim_wrapper (dict): The ``optim_wrapper`` config.
        dtype (str, optional): Autocast dtype (``'bfloat16'``,
            ``'float16'``); None keeps the wrapper's default (fp16 on GPU,
            bf16 on CPU).

    Returns:
        dict: ``optim_wrapper``.

    Raises:
        ValueError: a wrapper that cannot be switched, or no wrapper at all.
    """
    if optim_wrapper.get('constructor') == 'MultiOptimWrapperConstructor':
        entries = [
            v for v in optim_wrapper.values()
            if isinstance(v, dict) and 'optimizer' in v
        ]
        if not entries:
            raise ValueError('optim_wrapper uses MultiOptimWrapperConstructor'
                             ' but has no wrapper entry with an optimizer')
    else:
        entries = [optim_wrapper]
    for entry in entries:
        entry.setdefault('type', 'OptimWrapper')
        entry['type'] = amp_optim_wrapper_type(entry['type'])
        if dtype is not None:
            entry['dtype'] = dtype
        if entry['type'] == 'AmpOptimWrapper':
            entry.setdefault('loss_scale', 'dynamic')
    return optim_wrapper


_ALL_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def _paths(node: Any, path: str):
    """``(key path, dict)`` of every dict under ``node``."""
    if isinstance(node, dict):
        yield path, node
        for key, value in node.items():
            yield from _paths(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _paths(value, f'{path}.{i}')


def missing_files(cfg: Config,
                  loaders: Sequence[str] = _ALL_LOADERS) -> List[str]:
    """Files and folders the config names that do not exist.

    Checks ``pretrained`` weight paths and dataset ``data_root`` folders of
    the dataloaders that will be used (with ``train_dataloader`` also the
    other training loaders, e.g. ``stage1_dataloader``), so a run without
    its data or weights stops before any model is built, with one message
    naming them all and the config key of each.

    Args:
        cfg (Config): The config.
        loaders (Sequence[str]): The dataloaders the run will build.
    """
    problems = []
    keys = list(loaders)
    if 'train_dataloader' in keys:
        keys += [
            k for k in cfg.keys() if k.endswith('_dataloader')
            and k not in keys + ['val_dataloader', 'test_dataloader']
        ]
    keys = [k for k in keys if cfg.get(k) and isinstance(cfg[k], dict)]
    for key in keys:
        for path, node in _paths(cfg[key].get('dataset', {}),
                                 f'{key}.dataset'):
            root = node.get('data_root')
            if isinstance(root, str) and not osp.isdir(root):
                problems.append(f'{path}.data_root: dataset folder {root!r} '
                                f'({node.get("type", "?")}) does not exist')
            vocab = node.get('vocab_file')
            if isinstance(vocab, str) and not osp.exists(vocab):
                problems.append(f'{path}.vocab_file: tokenizer vocabulary '
                                f'{vocab!r} ({node.get("type", "?")}) does '
                                'not exist')
    for path, node in _paths(cfg.get('model', {}), 'model'):
        weights = node.get('pretrained')
        if missing_weights_path(weights):
            problems.append(f'{path}.pretrained: pretrained weights '
                            f'{weights!r} '
                            f'({node.get("type", "?")}) do not exist')
    return sorted(set(problems))


def setup_runtime(cfg: Config,
                  trust_checkpoint: bool = False,
                  loaders: Sequence[str] = _ALL_LOADERS) -> Config:
    """Prepare the process and the config for ``Runner.from_cfg``.

    Installs the compatibility patches, chooses the torch thread count
    (:func:`choose_torch_threads`), rejects misspelt config keys
    (:func:`~mmreid_clip.utils.config_check.check_config_keys`), checks
    that the data and weights exist, sets ``CUBLAS_WORKSPACE_CONFIG`` for
    ``randomness.deterministic=True`` runs on GPUs, sets up gloo for
    CPU-only distributed runs, and fits every dataloader's options to the
    process (:func:`fit_loader_options`).

    Args:
        cfg (Config): The config, changed in place.
        trust_checkpoint (bool): Allow arbitrary pickled checkpoints.
        loaders (Sequence[str]): The dataloaders the run will build; only
            their data is checked.
    """
    apply_patches()
    register_all_modules(init_scope=False)
    choose_torch_threads()
    check_config_keys(cfg)
    if trust_checkpoint:
        os.environ[TRUST_ENV] = '1'
    problems = missing_files(cfg, loaders)
    if problems:
        raise FileNotFoundError(
            'The config names files that are not there:\n  - ' +
            '\n  - '.join(problems) +
            '\nSee README.md ("Preparing datasets", "CLIP weights") for the '
            'expected layout. Point every loader at your dataset folder with '
            '--data-root DIR, or set the keys above with --cfg-options '
            'KEY=PATH.')
    randomness = cfg.get('randomness') or {}
    if randomness.get('deterministic', False):
        # torch.use_deterministic_algorithms (which mmengine switches on)
        # makes cuBLAS raise unless this is set before its first call;
        # harmless on CPU. See docs/reliability.md, "Determinism".
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
    launcher = cfg.get('launcher', 'none')
    if init_cpu_distributed(launcher) or (launcher != 'none'
                                          and not torch.cuda.is_available()):
        wrapper = cfg.get('model_wrapper_cfg') or {}
        # a wrapper that is not DDP (MultiOptimDataParallel) runs on CPU
        # as it is; DDP must not be given device_ids there
        if wrapper.get('type', 'MMDistributedDataParallel') in (
                'MMDistributedDataParallel', 'DistributedDataParallel'):
            cfg.model_wrapper_cfg = cpu_ddp_wrapper_cfg()
        env_cfg = dict(cfg.get('env_cfg') or {})
        env_cfg['dist_cfg'] = dict(env_cfg.get('dist_cfg') or {},
                                   backend='gloo')
        cfg.env_cfg = env_cfg
    for key in cfg.keys():
        loader = cfg.get(key)
        if key.endswith('_dataloader') and isinstance(loader, dict):
            fit_loader_options(loader)
    return cfg


def fit_loader_options(loader: dict) -> dict:
    """Dataloader options that this process can honour, changed in place.

    - ``persistent_workers`` off without workers: torch's ``DataLoader``
      raises on persistent workers with ``num_workers=0``.
    - ``pin_memory`` off where no accelerator is visible: pinned memory
      only speeds up copies to an accelerator; without one torch warns for
      every loader it builds and pins nothing.

    The one rule for :func:`setup_runtime` and for the tools and tests
    that build loaders without it.

    Args:
        loader (dict): A dataloader config (``dict`` or ``ConfigDict``).

    Returns:
        dict: ``loader``.
    """
    if not loader.get('num_workers', 0) and loader.get('persistent_workers'):
        loader['persistent_workers'] = False
    if loader.get('pin_memory') and not _has_accelerator():
        loader['pin_memory'] = False
    return loader


def finish_distributed(settle_s: float = 0.5) -> None:
    """End a distributed run in order: barrier, settle, destroy the group.

    A gloo rank sometimes aborted after a successful run ("terminate called
    without an active exception", exit code -6; one 2-process CPU run in
    8 to 20 here). The core dump shows why: a gloo worker thread destroys
    the last collective's work object after the waiting thread has moved
    on; dropping that work's tensors is a Python decref, which needs the
    GIL, and when the main thread has meanwhile begun shutting the
    interpreter down the worker is terminated inside a C++ destructor
    (pytorch/pytorch#190489). The barrier makes every rank's collectives
    complete; the pause (the main thread sleeps, releasing the GIL) lets
    the workers drop their last work objects while the interpreter is
    alive; then the group is destroyed, which torch asks programs to do
    before exiting (NCCL warns otherwise).

    Call it only after a run that ended normally: after an error on one
    rank the others would wait for it at the barrier. A no-op outside
    distributed runs.

    Args:
        settle_s (float): Seconds given to the backend's worker threads.
    """
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        time.sleep(settle_s)
        dist.destroy_process_group()


def _has_accelerator() -> bool:
    """Whether torch sees an accelerator (CUDA or any other backend of
    ``torch.accelerator``) that pinned host memory can feed."""
    return torch.accelerator.is_available()
