"""Build a model from a config and load its checkpoint for inference
(:func:`init_model`), through the project's safe loader
(:func:`load_model_weights`, :func:`checkpoint_state_dict`).
"""
import contextlib
import copy
import logging
import os
import os.path as osp
from typing import Any, Dict, Iterator, Optional, Union

import torch
import torch.nn as nn
from mmengine.config import Config
from mmengine.logging import MMLogger
from mmengine.registry import DefaultScope
from mmengine.runner.checkpoint import _load_checkpoint

from mmreid_clip.compat import apply_patches
from mmreid_clip.registry import MODELS
from mmreid_clip.utils.pretrained import drop_missing_pretrained
from mmreid_clip.utils.setup_env import missing_files, register_all_modules

# Prefixes a checkpoint's keys get from wrappers (DDP, EMA-averaged copies).
_WRAPPER_PREFIXES = ('module.', )


def _load_config(config: Union[str, Config],
                 cfg_options: Optional[dict]) -> Config:
    if isinstance(config, (str, os.PathLike)):
        path = os.fspath(config)
        if not osp.isfile(path):
            raise FileNotFoundError(f'config file {path!r} does not exist')
        cfg = Config.fromfile(path)
    elif isinstance(config, Config):
        cfg = copy.deepcopy(config)
    else:
        raise TypeError('config must be a file path or a Config, got '
                        f'{type(config).__name__}')
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'model' not in cfg:
        raise KeyError(f'config {getattr(cfg, "filename", "")!r} has no '
                       '"model" entry')
    return cfg


def _strip_wrappers(state_dict: Dict[str, Any]) -> Dict[str, Any]:
    out = {}
    for key, value in state_dict.items():
        for prefix in _WRAPPER_PREFIXES:
            if key.startswith(prefix):
                key = key[len(prefix):]
        out[key] = value
    return out


def checkpoint_state_dict(checkpoint: str) -> Dict[str, Any]:
    """The tensors of a checkpoint (safe loader), wrapper prefixes removed."""
    apply_patches()
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise ValueError(f'checkpoint {checkpoint} holds a '
                         f'{type(ckpt).__name__}, not a state dict')
    state_dict = ckpt.get('state_dict', ckpt)
    return _strip_wrappers({
        k: v
        for k, v in state_dict.items() if isinstance(v, torch.Tensor)
    })


def load_model_weights(model: nn.Module, checkpoint: str) -> dict:
    """Load a checkpoint into ``model`` through the project's safe loader.

    Weights are read with mmengine's checkpoint loader, which
    :func:`mmreid_clip.compat.apply_patches` routes through
    :func:`~mmreid_clip.compat.safe_torch_load` (plain weights and the
    mmengine training state only; other pickles are refused).

    Args:
        model (nn.Module): The model built from the checkpoint's config.
        checkpoint (str): An mmengine checkpoint (``{'state_dict': ...,
            'meta': ...}``) or a bare state dict.

    Returns:
        dict: The checkpoint's ``meta`` (empty for a bare state dict).

    Raises:
        ValueError: The checkpoint lacks some of the model's parameters or
            has them with other shapes: the config does not match it. The
            message names the first keys concerned.
    """
    apply_patches()
    ckpt = _load_checkpoint(checkpoint, map_location='cpu')
    if not isinstance(ckpt, dict):
        raise ValueError(f'checkpoint {checkpoint} holds a '
                         f'{type(ckpt).__name__}, not a state dict')
    state_dict = ckpt.get('state_dict', ckpt)
    state_dict = _strip_wrappers({
        k: v
        for k, v in state_dict.items() if isinstance(v, torch.Tensor)
    })
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    mismatched = [
        f'{k}: checkpoint {tuple(state_dict[k].shape)}, model '
        f'{tuple(v.shape)}' for k, v in own.items()
        if k in state_dict and state_dict[k].shape != v.shape
    ]
    if missing or mismatched:
        parts = []
        if missing:
            parts.append(f'{len(missing)} parameters missing (e.g. '
                         f'{", ".join(missing[:5])})')
        if mismatched:
            parts.append(f'{len(mismatched)} with other shapes (e.g. '
                         f'{"; ".join(mismatched[:3])})')
        raise ValueError(
            f'checkpoint {checkpoint} does not fit the model of this config: '
            f'{" and ".join(parts)}. Use the config the checkpoint was '
            'trained with (or fix it with cfg_options).')
    unexpected = [k for k in state_dict if k not in own]
    model.load_state_dict({k: state_dict[k] for k in own}, strict=True)
    meta = ckpt.get('meta', {}) if 'state_dict' in ckpt else {}
    if unexpected:
        meta = dict(meta, unexpected_keys=unexpected)
    return meta


def init_model(config: Union[str, Config],
               checkpoint: Optional[str] = None,
               device: Union[str, torch.device] = 'cpu',
               cfg_options: Optional[dict] = None) -> nn.Module:
    """Build a model from a config and load its checkpoint for inference.

    The model is built as the Runner builds it (``MODELS.build`` of
    ``cfg.model`` under the config's ``default_scope``, then
    ``init_weights``), the checkpoint is loaded with
    :func:`load_model_weights`, and the model is put in eval mode on
    ``device``. The config is kept as ``model.cfg``: :func:`encode_images`
    and :func:`encode_texts` read its pipelines from there.

    Args:
        config (str | Config): Config file or object.
        checkpoint (str, optional): Checkpoint file; None keeps the
            initial weights (the ``pretrained`` ones, or random).
        device (str | torch.device): Defaults to 'cpu'.
        cfg_options (dict, optional): Overrides merged into the config
            (``{'model.text_encoder.context_length': 64}``).

    Returns:
        nn.Module: The model, in eval mode.

    Raises:
        FileNotFoundError: The config or the checkpoint does not exist,
            or (without a checkpoint) a ``pretrained`` weights file the
            config names. With a checkpoint, towers whose pretrained file
            is missing are built without it
            (:func:`~mmreid_clip.utils.pretrained.drop_missing_pretrained`):
            the checkpoint must then hold all their weights.
    """
    apply_patches()
    register_all_modules(init_scope=False)
    cfg = _load_config(config, cfg_options)
    if checkpoint is not None and not osp.isfile(checkpoint):
        raise FileNotFoundError(f'checkpoint {checkpoint!r} does not exist')
    if checkpoint is not None:
        # the checkpoint holds every weight: pretrained files that are not
        # there are not needed (load_model_weights checks it has them all)
        for note in drop_missing_pretrained(
                cfg.model, lambda: checkpoint_state_dict(checkpoint)):
            MMLogger.get_current_instance().info(note)
    problems = missing_files(cfg, loaders=())
    if problems:
        raise FileNotFoundError(
            'The config names files that are not there:\n  - ' +
            '\n  - '.join(problems) +
            '\nSee README.md ("CLIP weights"), or override the paths with '
            'cfg_options.')
    scope = cfg.get('default_scope', 'mmreid_clip')
    with DefaultScope.overwrite_default_scope(scope):
        model = MODELS.build(cfg.model)
    if hasattr(model, 'init_weights'):
        # as the Runner does; its per-parameter INFO report is noise here
        with _log_level(logging.WARNING):
            model.init_weights()
    model.checkpoint_meta = ({} if checkpoint is None else load_model_weights(
        model, checkpoint))
    model.cfg = cfg
    model.checkpoint_path = (None if checkpoint is None else
                             osp.abspath(checkpoint))
    return model.to(torch.device(device)).eval()


@contextlib.contextmanager
def _log_level(level: int) -> Iterator[None]:
    logger = MMLogger.get_current_instance()
    old = logger.level
    logger.setLevel(max(level, old))
    try:
        yield
    finally:
        logger.setLevel(old)
