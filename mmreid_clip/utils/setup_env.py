"""Runtime set-up shared by the train/test tools and the inference API."""
import os
import os.path as osp
from typing import Any, List, Optional, Sequence

import torch
from mmengine.config import Config
from mmengine.registry import init_default_scope

from mmreid_clip.compat import (TRUST_ENV, apply_patches, cpu_ddp_wrapper_cfg,
                                init_cpu_distributed)
from .config_check import check_config_keys


def register_all_modules(init_scope: bool = True) -> None:
    """Import every registering subpackage and set the default scope."""
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


def _iter_dicts(node: Any):
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from _iter_dicts(value)
    elif isinstance(node, (list, tuple)):
        for value in node:
            yield from _iter_dicts(value)


def _looks_like_path(value: str) -> bool:
    return (os.sep in value or value.endswith(
        ('.pt', '.pth', '.bin', '.safetensors', '.json')))


_ALL_LOADERS = ('train_dataloader', 'val_dataloader', 'test_dataloader')


def missing_files(cfg: Config,
                  loaders: Sequence[str] = _ALL_LOADERS) -> List[str]:
    """Files and folders the config names that do not exist.

    Checks ``pretrained`` weight paths and dataset ``data_root`` folders of
    the dataloaders that will be used, so a run without its data or weights
    stops before any model is built, with one message naming them all.

    Args:
        cfg (Config): The config.
        loaders (Sequence[str]): The dataloaders the run will build.
    """
    problems = []
    keys = [k for k in loaders if cfg.get(k)]
    for key in keys:
        for node in _iter_dicts(cfg[key].get('dataset', {})):
            root = node.get('data_root')
            if isinstance(root, str) and not osp.isdir(root):
                problems.append(f'{key}: dataset folder {root!r} '
                                f'({node.get("type", "?")}) does not exist')
            vocab = node.get('vocab_file')
            if isinstance(vocab, str) and not osp.exists(vocab):
                problems.append(f'{key}: tokenizer vocabulary {vocab!r} '
                                f'({node.get("type", "?")}) does not exist')
    for node in _iter_dicts(cfg.get('model', {})):
        weights = node.get('pretrained')
        if (isinstance(weights, str) and _looks_like_path(weights)
                and not osp.exists(weights)):
            problems.append(f'model: pretrained weights {weights!r} '
                            f'({node.get("type", "?")}) do not exist')
    return sorted(set(problems))


def setup_runtime(cfg: Config,
                  trust_checkpoint: bool = False,
                  loaders: Sequence[str] = _ALL_LOADERS) -> Config:
    """Prepare the process and the config for ``Runner.from_cfg``.

    Installs the compatibility patches, rejects misspelt config keys
    (:func:`~mmreid_clip.utils.config_check.check_config_keys`), checks
    that the data and weights exist, sets ``CUBLAS_WORKSPACE_CONFIG`` for
    ``randomness.deterministic=True`` runs on GPUs, sets up gloo for
    CPU-only distributed runs and fixes dataloader options that torch
    rejects with ``num_workers=0``.

    Args:
        cfg (Config): The config, changed in place.
        trust_checkpoint (bool): Allow arbitrary pickled checkpoints.
        loaders (Sequence[str]): The dataloaders the run will build; only
            their data is checked.
    """
    apply_patches()
    register_all_modules(init_scope=False)
    check_config_keys(cfg)
    if trust_checkpoint:
        os.environ[TRUST_ENV] = '1'
    problems = missing_files(cfg, loaders)
    if problems:
        raise FileNotFoundError(
            'The config names files that are not there:\n  - ' +
            '\n  - '.join(problems) +
            '\nSee README.md ("Preparing datasets", "CLIP weights") for the '
            'expected layout, or override the paths with --cfg-options.')
    randomness = cfg.get('randomness') or {}
    if randomness.get('deterministic', False):
        # torch.use_deterministic_algorithms (which mmengine switches on)
        # makes cuBLAS raise unless this is set before its first call;
        # harmless on CPU. See docs/reliability.md, "Determinism".
        os.environ.setdefault('CUBLAS_WORKSPACE_CONFIG', ':4096:8')
    launcher = cfg.get('launcher', 'none')
    if init_cpu_distributed(launcher) or (launcher != 'none'
                                          and not torch.cuda.is_available()):
        cfg.model_wrapper_cfg = cpu_ddp_wrapper_cfg()
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})
        cfg.env_cfg.dist_cfg.backend = 'gloo'
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        loader = cfg.get(key)
        if loader and loader.get('num_workers', 0) == 0:
            # torch's DataLoader raises on persistent workers without workers
            loader.persistent_workers = False
    return cfg
