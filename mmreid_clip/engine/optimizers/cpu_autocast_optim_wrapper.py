"""``--amp`` on a CPU: an optimizer wrapper running under bf16 autocast.

mmengine's ``AmpOptimWrapper`` asserts a GPU; :class:`CPUAutocastOptimWrapper`
gives ``--amp`` a bf16 autocast path on CPU (``setup_env`` swaps it in).
"""
import contextlib

import torch
from mmengine.optim import OptimWrapper

from mmreid_clip.registry import OPTIM_WRAPPERS

__all__ = ['CPUAutocastOptimWrapper']


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
