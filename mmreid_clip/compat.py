"""Version patches for the pinned stack, each with its reason.

Call :func:`apply_patches` once before a Runner is built (``tools/train.py``
and ``tools/test.py`` do; importing :mod:`mmreid_clip.apis` does too).

1. mmengine 0.10.7 calls ``torch.load`` without ``weights_only``; torch >= 2.6
   defaults it to True and refuses the numpy/mmengine objects the Runner
   itself writes, which breaks ``--resume`` and ``tools/test.py``; and it
   reads URLs with ``weights_only=False``, which runs any pickled code. We
   re-register every mmengine checkpoint scheme with the allow-list loader
   of :mod:`mmreid_clip.safe_load`, so an arbitrary pickled object is
   refused (unlike ``weights_only=False``) wherever it comes from. Trusted
   legacy checkpoints are opted in explicitly (:func:`trust_checkpoints` /
   ``MMREID_TRUST_CHECKPOINTS=1``).
2. mmengine's ``init_dist`` calls ``torch.cuda.set_device`` before creating
   the process group, which fails on CPU-only machines:
   :func:`init_cpu_distributed` pre-initialises gloo so ``Runner.setup_env``
   skips it, and :func:`cpu_ddp_wrapper_cfg` builds DDP without
   ``device_ids``.
3. mmpretrain 1.2.0's retrieval metrics (``RetrievalRecall``,
   ``RetrievalAveragePrecision``, reachable from this scope's registry) call
   ``np.in1d``, which numpy 2.4 removed (deprecated since 2.0 for
   ``np.isin``). :func:`patch_mmpretrain_in1d` gives that one module a numpy
   namespace with ``in1d`` defined through ``np.isin``; numpy itself is not
   touched, and nothing is changed where numpy still has ``in1d``.

``AmpOptimWrapper`` asserting a GPU is not patched: the bf16 CPU path for
``--amp`` is an optimizer wrapper of its own,
:class:`mmreid_clip.engine.optimizers.CPUAutocastOptimWrapper`, registered
with the engine's other parts (re-exported here lazily for old imports).
"""
import types

import numpy as np
import torch
import torch.distributed as torch_dist

# The safe loaders live in mmreid_clip.safe_load; re-exported here, where
# the tools and tests have always imported them from.
from .safe_load import (TRUST_ENV, UnsafeCheckpointError,  # noqa: F401
                        checkpoints_trusted, install_safe_loaders,
                        parse_bool_switch, safe_torch_load,
                        trust_checkpoints)


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


class _NumpyWithIn1d(types.ModuleType):
    """numpy's namespace plus the ``in1d`` that numpy 2.4 removed."""

    def __init__(self) -> None:
        super().__init__('numpy')

    def __getattr__(self, name: str):
        return getattr(np, name)

    @staticmethod
    def in1d(ar1, ar2, assume_unique: bool = False,
             invert: bool = False) -> np.ndarray:
        # numpy's own deprecation note: in1d(a, b) == isin(a, b).ravel(),
        # with ``a`` flattened first.
        return np.isin(
            np.ravel(ar1), ar2, assume_unique=assume_unique, invert=invert)


def patch_mmpretrain_in1d() -> bool:
    """Let mmpretrain's retrieval metrics run on numpy >= 2.4 (item 3).

    Returns:
        bool: True when the module was patched (numpy has no ``in1d``).
    """
    if hasattr(np, 'in1d'):
        return False
    from mmpretrain.evaluation.metrics import retrieval
    if not isinstance(retrieval.np, _NumpyWithIn1d):
        retrieval.np = _NumpyWithIn1d()
    return True


_PATCHED = False


def apply_patches() -> None:
    """Install the checkpoint-loader patches (idempotent).

    Every scheme of mmengine's ``CheckpointLoader`` (local paths, http(s)
    URLs, ``torchvision://``, ``open-mmlab://``, ``mmcls://``, s3/petrel,
    pavi) reads through :func:`~mmreid_clip.safe_load.safe_torch_load`, so
    ``load_from``, ``--resume`` and ``init_cfg=dict(type='Pretrained')``
    never unpickle arbitrary objects, whatever the source; and
    mmpretrain's retrieval metrics get the ``np.in1d`` numpy 2.4 removed.
    """
    global _PATCHED
    if _PATCHED:
        return
    install_safe_loaders()
    patch_mmpretrain_in1d()
    _PATCHED = True


def __getattr__(name: str):
    # Old import path of the optim wrapper, resolved on first use so that
    # importing the patches does not import the whole engine package.
    if name == 'CPUAutocastOptimWrapper':
        from .engine.optimizers import CPUAutocastOptimWrapper
        return CPUAutocastOptimWrapper
    raise AttributeError(f'module {__name__!r} has no attribute {name!r}')
