"""``torch.load`` with an allow-list: :func:`safe_torch_load` reads a
local checkpoint with ``weights_only=True`` and exactly the types
mmengine's Runner writes, and says which globals it refused (part of
:mod:`mmreid_clip.safe_load`).
"""
import collections
import os.path as osp
import re
from typing import List

import numpy as np
import torch
from mmengine.logging import print_log

from .safe_load_trust import (TRUST_ENV, UnsafeCheckpointError, _trust_hint,
                              checkpoints_trusted)


def _checkpoint_safe_globals() -> List:
    """Types that mmengine's Runner writes into its checkpoints.

    The message hub stores ``HistoryBuffer`` objects holding numpy arrays and
    numpy scalars; the config travels as mmengine ``ConfigDict`` in some
    versions. Nothing here can run code when unpickled: they are plain data
    containers reconstructed field by field.
    """
    from mmengine.logging.history_buffer import HistoryBuffer

    # numpy 2 pickles arrays through numpy._core, numpy 1 through numpy.core
    core = np._core if hasattr(np, '_core') else np.core
    safe = [
        HistoryBuffer, collections.OrderedDict, collections.defaultdict,
        np.ndarray, np.dtype, core.multiarray._reconstruct,
        core.multiarray.scalar
    ]
    # numpy >= 1.25 pickles dtypes as instances of per-type dtype classes
    # (numpy.dtypes.Float64DType, ...); allow every one of them.
    safe += [
        getattr(np.dtypes, name) for name in dir(np.dtypes)
        if name.endswith('DType')
    ]
    from mmengine.config import ConfigDict
    safe.append(ConfigDict)
    # HistoryBuffer pickles its statistics methods as getattr(HistoryBuffer,
    # name); the stand-in resolves exactly those and nothing else.
    safe.append((_history_buffer_getattr, 'builtins.getattr'))
    return safe


def _history_buffer_getattr(obj, name: str):
    from mmengine.logging.history_buffer import HistoryBuffer

    # the built-in statistics are registered lazily (on the first
    # HistoryBuffer()), so name them explicitly as well
    allowed = {'min', 'max', 'current', 'mean'}
    allowed.update(HistoryBuffer._statistics_methods)
    if obj is HistoryBuffer and name in allowed:
        return getattr(obj, name)
    raise UnsafeCheckpointError(
        f'getattr({obj!r}, {name!r}) is not allowed in a checkpoint')


def _refusal(filename: str, what: str) -> UnsafeCheckpointError:
    return UnsafeCheckpointError(
        f'Refusing to load checkpoint {filename}: it contains pickled '
        f'objects that are not plain weights or the mmengine training state '
        f'({what}). Unpickling them could run arbitrary code. ' +
        _trust_hint())


def safe_torch_load(filename: str, map_location=None):
    """``torch.load`` a checkpoint, refusing anything off the allow-list.

    Args:
        filename (str): Path of the checkpoint.
        map_location: As for :func:`torch.load`.

    Returns:
        The unpickled checkpoint.

    Raises:
        FileNotFoundError: ``filename`` does not exist.
        UnsafeCheckpointError: the file needs globals outside the allow-list;
            the message names the file, the globals and how to opt in for
            trusted files.
    """
    filename = osp.expanduser(filename)
    if not osp.isfile(filename):
        raise FileNotFoundError(f'checkpoint {filename} does not exist.')
    if checkpoints_trusted():
        print_log(
            f'{TRUST_ENV} is set: loading {filename} with weights_only=False '
            '(this can execute code from the file).',
            logger='current',
            level=30)
        return torch.load(
            filename, map_location=map_location, weights_only=False)
    with torch.serialization.safe_globals(_checkpoint_safe_globals()):
        try:
            return torch.load(
                filename, map_location=map_location, weights_only=True)
        except UnsafeCheckpointError as err:  # the getattr stand-in
            raise _refusal(filename, str(err)) from None
        except Exception as err:  # torch raises UnpicklingError/RuntimeError
            if 'weights_only' not in str(err) and 'Unsupported' not in str(
                    err):
                raise
            try:
                unsafe = torch.serialization.get_unsafe_globals_in_checkpoint(
                    filename)
            except Exception:  # a non-zip legacy file cannot be listed
                unsafe = []
            allowed = {
                g[1] if isinstance(g, tuple) else
                f'{g.__module__}.{g.__qualname__}'
                for g in _checkpoint_safe_globals()
            }
            unsafe = [g for g in unsafe if g not in allowed]
            if not unsafe:
                # a legacy (non-zip) file cannot be listed; torch's message
                # names the first offending global
                unsafe = re.findall(r'GLOBAL ([\w.]+)', str(err))[:1]
            if not unsafe and 'getattr(' in str(err):
                unsafe = re.findall(r'getattr\([^\n]*\)', str(err))[:1]
            what = ', '.join(unsafe) if unsafe else str(err).splitlines()[0]
            raise _refusal(filename, what) from None
