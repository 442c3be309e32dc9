"""One data root for every loader of a config.

A config reads its dataset through several loaders (``train_dataloader``,
``val_dataloader``, ``test_dataloader`` and, for CLIP-ReID / CCAF,
``stage1_dataloader``), each with its own ``dataset.data_root``; the
top-level ``data_root`` variable of the dataset configs is only read when
the file is parsed, so overriding it later changes nothing.
:func:`set_data_root` (``--data-root`` of the tools) points every one of
them at one folder, and :func:`data_root_keys` names them for error
messages.
"""
import os.path as osp
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from mmengine.config import Config

__all__ = ['data_root_keys', 'set_data_root', 'apply_data_root_args']


def _dataset_nodes(node: Any, path: str) -> Iterator[Tuple[str, dict]]:
    """``(key path, dict)`` of every dict with a ``data_root`` under node."""
    if isinstance(node, dict):
        if 'data_root' in node:
            yield path, node
        for key, value in node.items():
            if key in ('pipeline', 'text_pipeline'):
                continue
            yield from _dataset_nodes(value, f'{path}.{key}')
    elif isinstance(node, (list, tuple)):
        for i, value in enumerate(node):
            yield from _dataset_nodes(value, f'{path}.{i}')


def loader_keys(cfg: Config) -> List[str]:
    """Top-level ``*_dataloader`` entries that hold a dataset."""
    return [
        k for k in cfg.keys() if k.endswith('_dataloader')
        and isinstance(cfg.get(k), dict) and 'dataset' in cfg[k]
    ]


def data_root_keys(cfg: Config,
                   loaders: Optional[Sequence[str]] = None
                   ) -> List[Tuple[str, dict]]:
    """``(key, dataset dict)`` of every ``data_root`` the loaders read,
    e.g. ``('train_dataloader.dataset.data_root', {...})``.

    Args:
        cfg (Config): The config.
        loaders (Sequence[str], optional): Only these loaders (default:
            every ``*_dataloader`` with a dataset).
    """
    out = []
    for key in loader_keys(cfg):
        if loaders is not None and key not in loaders:
            continue
        for path, node in _dataset_nodes(cfg[key]['dataset'],
                                         f'{key}.dataset'):
            out.append((f'{path}.data_root', node))
    return out


def _resolve(root: str, old: str) -> str:
    """``root``, or its sub-folder named as the config's folder when
    ``root`` is the parent (``data/`` for ``data/LTCC_ReID``)."""
    name = osp.basename(osp.normpath(old)) if old else ''
    if not name or osp.basename(osp.normpath(root)) == name:
        return root
    inner = osp.join(root, name)
    return inner if osp.isdir(inner) else root


def set_data_root(cfg: Config,
                  root: str,
                  loaders: Optional[Sequence[str]] = None) -> List[str]:
    """Point every dataset of every loader at ``root``, in place.

    When ``root`` holds a folder named like the config's own root (e.g.
    ``LTCC_ReID`` for ``data/LTCC_ReID``), that folder is used, so both the
    dataset folder and its parent work. The top-level ``data_root``
    variable is set too, so that the dumped config reads consistently.

    Args:
        cfg (Config): The merged config.
        root (str): The dataset folder (or its parent).
        loaders (Sequence[str], optional): Only these loaders (default:
            all; the evaluation tools pass ``('test_dataloader',)``).

    Returns:
        list[str]: One line per key changed, for the log.

    Raises:
        ValueError: the loaders read more than one dataset folder (then
            ``--data-root`` would be ambiguous); the message names the keys
            to set one by one.
    """
    found = data_root_keys(cfg, loaders)
    if not found:
        raise ValueError('--data-root: the config\'s dataloaders name no '
                         'data_root')
    olds = sorted({str(node['data_root']) for _, node in found})
    if len(olds) > 1:
        raise ValueError(
            '--data-root is ambiguous: the loaders read '
            f'{len(olds)} dataset folders ({", ".join(map(repr, olds))}); set '
            'each with --cfg-options ' + ' '.join(f'{key}=...'
                                                  for key, _ in found))
    new = _resolve(root, olds[0])
    notes = []
    for key, node in found:
        notes.append(f'{key}: {node["data_root"]!r} -> {new!r}')
        node['data_root'] = new
    if loaders is None and isinstance(cfg.get('data_root'), str):
        cfg['data_root'] = new
    return notes


def apply_data_root_args(cfg: Config,
                         data_root: Optional[str],
                         cfg_options: Optional[dict],
                         loaders: Optional[Sequence[str]] = None
                         ) -> List[str]:
    """``--data-root``, and a top-level ``data_root=`` in ``--cfg-options``
    (which would otherwise change nothing), for the tools.

    Call after merging ``cfg_options``.

    Returns:
        list[str]: Lines for the log (empty when neither was given).
    """
    if data_root is None and cfg_options and 'data_root' in cfg_options:
        data_root = cfg_options['data_root']
    if data_root is None:
        return []
    return set_data_root(cfg, str(data_root), loaders)
