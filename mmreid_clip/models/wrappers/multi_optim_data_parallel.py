"""Data parallelism for models that step several optimizers in one call."""
from typing import Any, Dict, Iterable, List, Optional, Union

import torch
from mmengine.dist import all_reduce_params, broadcast, get_world_size
from mmengine.optim import OptimWrapper, OptimWrapperDict
from mmengine.registry import MODEL_WRAPPERS as MMENGINE_MODEL_WRAPPERS
from torch import nn
from torch._utils import _flatten_dense_tensors, _unflatten_dense_tensors

from mmreid_clip.registry import MODEL_WRAPPERS

# set on an optimizer wrapper whose ``step`` averages gradients first
_AVERAGING = '_mmreid_clip_averages_gradients'


def _broadcast_coalesced(tensors: Iterable[torch.Tensor],
                         src: int = 0) -> None:
    """Overwrite ``tensors`` with rank ``src``'s values, one flat buffer
    per dtype (bool travels as uint8: not every backend reduces bool)."""
    groups: Dict[torch.dtype, List[torch.Tensor]] = {}
    for t in tensors:
        groups.setdefault(t.dtype, []).append(t)
    for dtype, group in groups.items():
        data = [t.data.to(torch.uint8) if dtype == torch.bool else t.data
                for t in group]
        flat = _flatten_dense_tensors(data)
        broadcast(flat, src=src)
        for t, synced in zip(group, _unflatten_dense_tensors(flat, data)):
            t.data.copy_(synced.to(dtype))


def average_gradients(optim_wrapper: OptimWrapper) -> int:
    """Average the gradients of ``optim_wrapper``'s parameters over ranks.

    Parameters without a gradient are left alone (every rank runs the same
    graph, so the same parameters have one). Returns the number of
    gradients averaged.
    """
    grads = [
        p.grad for group in optim_wrapper.optimizer.param_groups
        for p in group['params'] if p.grad is not None
    ]
    if grads:
        all_reduce_params(grads, op='mean')
    return len(grads)


def install_gradient_averaging(optim_wrapper: OptimWrapper) -> None:
    """Make ``optim_wrapper.step`` average the gradients across ranks first.

    The instance's ``step`` is wrapped (once): whatever calls it (its own
    ``update_params``, or a model stepping it directly) averages exactly
    the gradients that step is about to use, after every accumulation
    micro-step and before gradient clipping or AMP unscaling, where
    ``DistributedDataParallel`` has its gradients synchronised too.
    """
    if getattr(optim_wrapper, _AVERAGING, False):
        return
    original = optim_wrapper.step

    def step(**kwargs):
        average_gradients(optim_wrapper)
        return original(**kwargs)

    step.__wrapped__ = original
    optim_wrapper.step = step
    setattr(optim_wrapper, _AVERAGING, True)


@MODEL_WRAPPERS.register_module()
class MultiOptimDataParallel(nn.Module):
    """Data parallelism by gradient averaging, for multi-optimizer models.

    ``DistributedDataParallel`` synchronises gradients from hooks armed by
    its own ``forward`` and expects one backward per forward. CLIP-ReID and
    CCAF do not fit that: their ``train_step`` runs a stage-1 step on
    cached features, or up to two backward passes with two optimizers per
    stage-2 iteration (CFM's examiner, then the encoder), and calls their
    parts' methods rather than one ``forward``. This wrapper keeps the
    model's own ``train_step`` and makes data parallelism explicit:

    * at construction, every parameter and buffer is broadcast from rank 0
      (as DDP does), so all ranks start from one model;
    * every optimizer wrapper the model steps averages its parameters'
      gradients over the ranks right before its step
      (:func:`install_gradient_averaging`), so the ranks take identical
      steps and stay identical (an update equals the one-process update on
      the union of the ranks' batches wherever the loss is a mean over
      samples, as with DDP);
    * buffers (BatchNorm running statistics) are broadcast from rank 0
      before every training step (``broadcast_buffers``, torch DDP's
      default, which the official CLIP-ReID code runs with) and once before
      evaluation, so every rank evaluates rank 0's model. BatchNorm layers
      normalise with their own rank's batch, as in the official code.

    Checkpoints hold the plain model (the runner saves ``.module``), so
    they load into a run with any number of processes.

    Args:
        module: The model (already on its device).
        broadcast_buffers: Broadcast buffers from rank 0 before every
            training step.
    """

    def __init__(self, module: nn.Module,
                 broadcast_buffers: bool = True) -> None:
        super().__init__()
        self.module = module
        self.broadcast_buffers = broadcast_buffers
        self._buffers_stale = False
        if get_world_size() > 1:
            _broadcast_coalesced(
                list(module.parameters()) + list(module.buffers()))

    def _sync_buffers(self) -> None:
        if get_world_size() > 1:
            _broadcast_coalesced(list(self.module.buffers()))

    def train_step(self, data: Union[dict, tuple, list],
                   optim_wrapper: Union[OptimWrapper, OptimWrapperDict]
                   ) -> Dict[str, torch.Tensor]:
        """The model's ``train_step``, with gradients averaged over ranks."""
        wrappers = (
            optim_wrapper.values()
            if isinstance(optim_wrapper, OptimWrapperDict) else
            [optim_wrapper])
        for wrapper in wrappers:
            install_gradient_averaging(wrapper)
        if self.broadcast_buffers:
            self._sync_buffers()
        self._buffers_stale = True
        return self.module.train_step(data, optim_wrapper)

    def _before_eval(self) -> None:
        if self._buffers_stale:
            self._sync_buffers()
            self._buffers_stale = False

    def val_step(self, data: Union[dict, tuple, list]) -> List[Any]:
        """The model's ``val_step`` (on rank 0's buffers)."""
        self._before_eval()
        return self.module.val_step(data)

    def test_step(self, data: Union[dict, tuple, list]) -> List[Any]:
        """The model's ``test_step`` (on rank 0's buffers)."""
        self._before_eval()
        return self.module.test_step(data)

    def forward(self, *args, **kwargs) -> Optional[Any]:
        return self.module(*args, **kwargs)


# Runner.wrap_model looks the wrapper type up in mmengine's root registry
# without switching to the config's default scope (mmengine 0.10), so a
# wrapper registered only in a child registry is not found there.
MMENGINE_MODEL_WRAPPERS.register_module(module=MultiOptimDataParallel)
