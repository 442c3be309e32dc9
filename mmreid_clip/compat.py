"""Version patches for the pinned stack, each with its reason.

Call :func:`apply_patches` once before a Runner is built (``tools/train.py``
and ``tools/test.py`` do; importing :mod:`mmreid_clip.apis` does too).

1. mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6
   defaults it to True and refuses the numpy/mmengine objects the Runner
   itself writes, which breaks ``--resume`` and ``tools/test.py``. We re-register
   mmengine's local-path loader with an allow-list of exactly those types, so
   an arbitrary pickled object is still refused (unlike
   ``weights_only=False``). Trusted legacy checkpoints are opted in
   explicitly (:func:`trust_checkpoints` / ``MMREID_TRUST_CHECKPOINTS=1``).
2. mmengine's ``init_dist`` calls ``torch.cuda.set_device`` before creating the
   process group, which fails on CPU-only machines: :func:`init_cpu_distributed`
   pre-initialises gloo so ``Runner.setup_env`` skips it.
3. ``AmpOptimWrapper`` asserts a GPU: :class:`CPUAutocastOptimWrapper` gives
   ``--amp`` a bf16 autocast path on CPU.
"""
import collections
import contextlib
import os
import os.path as osp
import re
from typing import Iterator, List

import numpy as np
import torch
import torch.distributed as torch_dist
from mmengine.logging import print_log
from mmengine.optim import OptimWrapper
from mmengine.runner.checkpoint import CheckpointLoader

from .registry import OPTIM_WRAPPERS

TRUST_ENV = 'MMREID_TRUST_CHECKPOINTS'


class UnsafeCheckpointError(RuntimeError):
    """A checkpoint holds pickled objects outside the allow-list."""


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


def checkpoints_trusted() -> bool:
    """Whether the user opted in to loading arbitrary pickled checkpoints."""
    return os.environ.get(TRUST_ENV, '') not in ('', '0', 'false', 'False')


@contextlib.contextmanager
def trust_checkpoints() -> Iterator[None]:
    """Context in which checkpoints are loaded with ``weights_only=False``.

    Only for files you trust: unpickling them can execute arbitrary code.
    """
    old = os.environ.get(TRUST_ENV)
    os.environ[TRUST_ENV] = '1'
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(TRUST_ENV, None)
        else:
            os.environ[TRUST_ENV] = old


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
            the message names them and how to opt in for trusted files.
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
            what = ', '.join(unsafe) if unsafe else str(err).splitlines()[0]
            raise UnsafeCheckpointError(
                f'Refusing to load checkpoint {filename}: it contains '
                f'pickled objects that are not plain weights or the '
                f'mmengine training state ({what}). Unpickling them could '
                f'run arbitrary code. If you trust this file, set '
                f'{TRUST_ENV}=1 (or pass --trust-checkpoint to '
                f'tools/train.py / tools/test.py).') from None


def _load_from_local(filename: str, map_location=None):
    # mmengine's scheme loaders take (filename, map_location)
    return safe_torch_load(filename, map_location)


def init_cpu_distributed(launcher: str) -> bool:
    """Pre-initialise a gloo process group for CPU-only distributed runs.

    mmengine's ``_init_dist_pytorch`` calls ``torch.cuda.set_device`` first,
    which fails without a GPU; once a group exists, ``Runner.setup_env``
    skips ``init_dist``. Only the ``pytorch`` launcher (torchrun) is handled.

    Args:
        launcher (str): The ``--launcher`` argument.

    Returns:
        bool: True when this call created the gloo group.
    """
    if launcher == 'none' or torch.cuda.is_available():
        return False
    if torch_dist.is_available() and torch_dist.is_initialized():
        return False
    if launcher != 'pytorch':
        raise RuntimeError(
            f'CPU-only distributed runs support --launcher pytorch '
            f'(torchrun), not {launcher!r}.')
    torch_dist.init_process_group(backend='gloo')
    return True


def cpu_ddp_wrapper_cfg() -> dict:
    """``model_wrapper_cfg`` for DDP on CPU: no ``device_ids``."""
    return dict(
        type='MMDistributedDataParallel',
        device_ids=None,
        broadcast_buffers=False,
        find_unused_parameters=False)


@OPTIM_WRAPPERS.register_module()
class CPUAutocastOptimWrapper(OptimWrapper):
    """Optimizer wrapper running the forward pass under CPU bf16 autocast.

    mmengine's ``AmpOptimWrapper`` refuses CPU devices; bf16 has fp32's
    exponent range, so no loss scaling is needed and a plain
    :class:`OptimWrapper` step is correct.

    Args:
        dtype (str): Autocast dtype; only ``'bfloat16'`` is supported on
            CPU. Defaults to 'bfloat16'.
        **kwargs: Passed to :class:`OptimWrapper`.
    """

    def __init__(self, dtype: str = 'bfloat16', **kwargs) -> None:
        if dtype not in ('bfloat16', torch.bfloat16):
            raise ValueError(
                f'CPU autocast supports bfloat16 only, got {dtype!r}; fp16 '
                f'needs a GPU (AmpOptimWrapper).')
        super().__init__(**kwargs)

    @contextlib.contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model), torch.autocast(
                'cpu', dtype=torch.bfloat16):
            yield


_PATCHED = False


def apply_patches() -> None:
    """Install the checkpoint-loader patch (idempotent)."""
    global _PATCHED
    if _PATCHED:
        return
    CheckpointLoader.register_scheme(
        prefixes='', loader=_load_from_local, force=True)
    _PATCHED = True
