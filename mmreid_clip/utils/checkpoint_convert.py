"""Shared plumbing of the converters for the authors' released checkpoints.

``tools/model_converters/{clip_reid,irra,cfine}_to_mmreid.py`` read a
checkpoint written by an official training script, rename its tensors to
this project's modules and write an MMEngine checkpoint that
``tools/test.py`` loads. What they have in common lives here:

* :func:`load_official_checkpoint`: the project's one safe loader
  (:func:`mmreid_clip.safe_load.safe_torch_load`), so a downloaded file can
  never run code while it is read; an unreadable or pickled-object file is
  an error naming the file;
* :func:`strip_module_prefix`: the ``module.`` prefix of
  ``DataParallel``/``DistributedDataParallel`` checkpoints;
* :class:`KeyMapper`: applies a renaming function to every tensor and
  keeps the keys it could not map apart from the heads a converter is
  allowed to drop, so an unexpected key is always an error;
* :func:`write_converted`: the atomic write, which never overwrites the
  input and never an existing output without ``force``;
* :func:`format_cfg_options`: ``--cfg-options`` text for the printed
  instructions;
* :class:`Conversion`: what every converter's ``convert`` returns.
"""
import os
import os.path as osp
import re
import shlex
from typing import (Any, Callable, Dict, Iterable, List, Mapping, NamedTuple,
                    Optional, Sequence, Tuple)

import torch

from .atomic_io import atomic_replace, temporary_path

__all__ = [
    'Conversion', 'ConversionError', 'KeyMapper', 'load_official_checkpoint',
    'save_conversion', 'strip_module_prefix', 'tensor_dict',
    'write_converted',
    'format_cfg_options', 'describe_keys', 'shape_of', 'count_blocks',
    'check_output'
]


class ConversionError(ValueError):
    """The input is not the official checkpoint the converter expects."""


class Conversion(NamedTuple):
    """The result of a converter's ``convert``.

    Attributes:
        state_dict: Weights for the project's model.
        options: ``--cfg-options`` the model config needs.
        no_archive_options: Extra options that build the model without the
            pretrained weight files (``pretrained=None``).
        arch: None for the configs' architecture, else the open_clip arch
            dict to set in the config.
        info: What was read from the checkpoint (plain values).
        configs: Configs of the zoo this checkpoint fits.
        notes: Things the user should know.
        dropped: Official tensors left out (training-only heads).
    """

    state_dict: Dict[str, torch.Tensor]
    options: Dict[str, object]
    no_archive_options: Dict[str, object]
    arch: Optional[dict]
    info: Dict[str, object]
    configs: List[str]
    notes: List[str]
    dropped: Sequence[str] = ()


def describe_keys(keys: Iterable[str], limit: int = 8) -> str:
    """The first ``limit`` keys, sorted, and how many more there are."""
    keys = sorted(keys)
    shown = ', '.join(keys[:limit])
    more = f' (+{len(keys) - limit} more)' if len(keys) > limit else ''
    return f'{shown}{more}'


def load_official_checkpoint(path: str) -> Any:
    """Read a released checkpoint through the project's safe loader.

    Official training scripts save plain containers of tensors (a state
    dict, or a dict with the state dict, optimizer state and epoch), which
    the allow-list unpickler of :func:`mmreid_clip.safe_load.safe_torch_load`
    reads (the same path as ``load_from`` and ``--resume``); anything that
    needs other pickled objects is refused rather than executed.

    Args:
        path: The checkpoint file.

    Returns:
        The unpickled object (usually a dict).

    Raises:
        FileNotFoundError: ``path`` is not a file.
        ConversionError: the file is not a torch checkpoint, or holds
            pickled objects other than tensors and plain containers.
    """
    from mmreid_clip.safe_load import UnsafeCheckpointError, safe_torch_load
    if not osp.isfile(path):
        raise FileNotFoundError(f'checkpoint not found: {path!r}')
    try:
        return safe_torch_load(path, map_location='cpu')
    except UnsafeCheckpointError as err:
        raise ConversionError(
            f'{path!r} holds pickled objects that are not tensors or '
            f'plain containers; the converter reads checkpoints with '
            f'weights_only=True (the allow-list loader), so it never runs '
            f'code from a file. '
            f'Re-save the model\'s state_dict() in an environment you '
            f'trust. ({err})') from None
    except Exception as err:  # UnpicklingError, RuntimeError, EOFError
        first = str(err).strip().splitlines()[0] if str(err) else type(
            err).__name__
        raise ConversionError(
            f'{path!r} is not a readable torch checkpoint: {first}') from None


def tensor_dict(obj: Any) -> bool:
    """Whether ``obj`` is a non-empty mapping of names to tensors."""
    return (isinstance(obj, Mapping) and bool(obj)
            and all(isinstance(k, str) for k in obj)
            and all(isinstance(v, torch.Tensor) for v in obj.values()))


def strip_module_prefix(state_dict: Mapping[str, torch.Tensor]
                        ) -> Dict[str, torch.Tensor]:
    """Drop ``module.`` when every key has it (a wrapped model's save)."""
    if state_dict and all(k.startswith('module.') for k in state_dict):
        return {k[len('module.'):]: v for k, v in state_dict.items()}
    return dict(state_dict)


class KeyMapper:
    """Rename every tensor of an official state dict, or say why not.

    Args:
        rename: Official key -> project key, or None when the key is not
            part of the project's model.
        droppable: Predicate for the official keys the project's model has
            no place for by design (training-only heads); they are left
            out and listed. Any other unmapped key is an error.
    """

    def __init__(self, rename: Callable[[str], Optional[str]],
                 droppable: Callable[[str], bool]) -> None:
        self.rename = rename
        self.droppable = droppable

    def __call__(self, state_dict: Mapping[str, torch.Tensor], source: str
                 ) -> Tuple[Dict[str, torch.Tensor], List[str]]:
        """Map ``state_dict``; floating tensors become contiguous fp32.

        Args:
            state_dict: The official tensors.
            source: How to name the checkpoint in errors.

        Returns:
            ``(mapped, dropped)``: the project state dict and the official
            keys left out as droppable, sorted.

        Raises:
            ConversionError: keys that are neither mapped nor droppable, or
                two official keys mapped to one project key.
        """
        mapped, dropped, unknown = {}, [], []
        for key, value in state_dict.items():
            new = self.rename(key)
            if new is None:
                (dropped if self.droppable(key) else unknown).append(key)
                continue
            if new in mapped:
                raise ConversionError(
                    f'{source}: two official tensors map to {new!r}')
            if value.is_floating_point():
                # released weights may be fp16 (IRRA); the project's
                # modules are fp32 and load_state_dict would cast anyway
                value = value.float()
            mapped[new] = value.detach().clone().contiguous()
        if unknown:
            raise ConversionError(
                f'{source}: {len(unknown)} tensors the converter does not '
                f'know ({describe_keys(unknown)}); is this the official '
                'checkpoint of the model the converter is for?')
        return mapped, sorted(dropped)


def check_output(path: str, source: str, force: bool = False) -> None:
    """Refuse an output that is the input, a folder, or (without
    ``force``) an existing file; called before the slow part too.

    Raises:
        ValueError: ``path`` is the input file (even with ``force``).
        IsADirectoryError: ``path`` is a folder.
        FileExistsError: ``path`` exists and ``force`` is False.
    """
    if osp.exists(path) and osp.exists(source) and osp.samefile(
            path, source):
        raise ValueError(f'the output {path!r} is the input checkpoint; '
                         'write the converted file elsewhere')
    if osp.isdir(path):
        raise IsADirectoryError(f'the output {path!r} is a folder; name the '
                                'checkpoint file to write')
    if osp.exists(path) and not force:
        raise FileExistsError(f'{path!r} exists; pass --force to replace it')


def write_converted(path: str,
                    state_dict: Mapping[str, torch.Tensor],
                    meta: dict,
                    source: str,
                    force: bool = False) -> None:
    """Write an MMEngine checkpoint (``meta`` + ``state_dict``) atomically.

    The file appears complete or not at all (a temporary file renamed over
    ``path``). ``meta`` holds only plain values, so the result loads with
    ``weights_only=True`` like every checkpoint the project reads.

    Args:
        path: Output file.
        state_dict: The converted weights.
        meta: Conversion record (plain types only).
        source: The input file; never overwritten, even with ``force``.
        force: Replace an existing ``path``.

    Raises:
        FileExistsError: ``path`` exists and ``force`` is False.
        ValueError: ``path`` is the input file.
    """
    check_output(path, source, force)
    folder = osp.dirname(osp.abspath(path))
    os.makedirs(folder, exist_ok=True)
    tmp = temporary_path(path)
    try:
        torch.save({'meta': meta, 'state_dict': dict(state_dict)}, tmp)
        atomic_replace(tmp, path)
    finally:
        if osp.exists(tmp):
            os.remove(tmp)


def _option_value(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        inner = ','.join(_option_value(v) for v in value)
        return f'({inner})' if isinstance(value, tuple) else f'[{inner}]'
    return str(value)


def format_cfg_options(options: Mapping[str, Any]) -> str:
    """``options`` as shell-quoted ``key=value`` words for ``--cfg-options``.

    Values print the way mmengine's ``DictAction`` reads them back
    (``None``, ``True``, ``12``, ``(256,128)``).
    """
    return ' '.join(
        shlex.quote(f'{k}={_option_value(v)}') for k, v in options.items())


def shape_of(state_dict: Mapping[str, torch.Tensor], key: str,
             source: str) -> Sequence[int]:
    """Shape of a tensor the converter needs, or a clear error."""
    if key not in state_dict:
        raise ConversionError(f'{source}: no {key!r} in the checkpoint')
    return tuple(state_dict[key].shape)


def count_blocks(state_dict: Mapping[str, torch.Tensor],
                 prefix: str,
                 stack: str = 'transformer.resblocks') -> int:
    """Number of blocks ``<prefix><stack>.<i>.*`` in a state dict."""
    pattern = re.compile(re.escape(f'{prefix}{stack}.') + r'(\d+)\.')
    found = {
        int(m.group(1))
        for m in map(pattern.match, state_dict) if m is not None
    }
    return max(found) + 1 if found else 0


def save_conversion(conv: Conversion, official: Any, source: str, out: str,
                    force: bool, converter: str, official_code: str) -> None:
    """Write a converter's result with its provenance and print what was
    written, dropped and noted (the part every converter shares).

    The checkpoint's ``meta`` records the converter, the official code, the
    source file's name, what was detected, the dropped tensors, the
    ``--cfg-options`` (with and without the pretrained weight files), the
    arch, the notes and, when the official checkpoint has one, its epoch.

    Args:
        conv: The converter's result.
        official: The official checkpoint object as loaded.
        source: Its path.
        out: The output path.
        force: Replace an existing ``out``.
        converter: The converter's path in the repository.
        official_code: The official repository and commit it reads.
    """
    meta = dict(
        converter=converter,
        official_code=official_code,
        source_file=osp.basename(source),
        detected=conv.info,
        dropped_keys=list(conv.dropped),
        cfg_options=conv.options,
        cfg_options_without_pretrained_files=conv.no_archive_options,
        arch=conv.arch,
        notes=conv.notes)
    if isinstance(official, dict) and isinstance(official.get('epoch'), int):
        meta['official_epoch'] = official['epoch']
    write_converted(out, conv.state_dict, meta, source, force)
    print(f'wrote {len(conv.state_dict)} tensors to {out}')
