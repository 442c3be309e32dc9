"""Stop (or skip) a training step whose loss is NaN or infinite."""
import math
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.distributed as torch_dist
from mmengine.dist import get_rank, get_world_size, is_distributed
from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper
from mmengine.optim import OptimWrapperDict

from mmreid_clip.registry import HOOKS

ACTIONS = ('raise', 'skip')


class NonFiniteLossError(FloatingPointError):
    """A loss term was NaN or infinite; the message names it and where."""


def _value(value) -> float:
    # parse_losses has already reduced every term to a scalar tensor
    if isinstance(value, torch.Tensor):
        return float(value.detach().float().mean())
    return float(value)


@HOOKS.register_module()
class NonFiniteLossHook(Hook):
    """Check every loss term before the optimizer step.

    A NaN or infinite loss silently turns the weights into NaN (or, with
    gradient clipping, into garbage) and the run goes on for hours. The
    check has to run between the loss computation and the parameter update,
    which no mmengine hook point sees, so when training starts this hook
    wraps two methods of the built objects (for every model, nothing in the
    model code changes):

    - the model's ``parse_losses`` (mmengine's ``BaseModel`` sums the
      ``loss*`` terms there, models with their own ``train_step`` call it
      too): every ``loss*`` term and the total are checked; in a
      distributed run the verdict is all-reduced so that every rank takes
      the same branch (one rank stepping while another stops would hang
      DDP);
    - the optimizer wrapper's ``update_params`` (each one of an
      ``OptimWrapperDict``): it does nothing (no backward, no step) for a
      step that ``action='skip'`` dropped.

    ``action='raise'`` raises :class:`NonFiniteLossError` before the update,
    naming the non-finite terms with their values, the iteration (1-based,
    as in the log), the epoch and batch, and the first items of the batch.
    ``action='skip'`` logs the same message as a warning, drops the step,
    removes the non-finite values from the logged losses (so the smoothed
    loss in the log stays readable), counts the skips (``num_skipped``, and
    ``nonfinite_loss_skips`` in the message hub) and raises once more than
    ``max_consecutive_skips`` steps in a row were dropped: a run that keeps
    producing NaN has diverged.

    A model whose ``train_step`` bypasses ``parse_losses`` is still checked,
    after the step, on the losses it returns (the error then says that the
    update could not be prevented).

    Args:
        action (str): ``'raise'`` or ``'skip'``. Defaults to ``'raise'``.
        max_consecutive_skips (int): With ``'skip'``, how many steps in a
            row may be dropped before raising. Defaults to 10.
    """

    priority = 'ABOVE_NORMAL'

    def __init__(self,
                 action: str = 'raise',
                 max_consecutive_skips: int = 10) -> None:
        if action not in ACTIONS:
            raise ValueError(f'NonFiniteLossHook: action must be one of '
                             f'{ACTIONS}, got {action!r}')
        if int(max_consecutive_skips) < 0:
            raise ValueError('max_consecutive_skips must be >= 0, got '
                             f'{max_consecutive_skips}')
        self.action = action
        self.max_consecutive_skips = int(max_consecutive_skips)
        self.num_skipped = 0
        self._consecutive = 0
        self._skip_pending = False
        self._checked = False
        self._runner = None
        self._batch_idx = 0
        self._data_batch = None
        self._patched: List[Tuple[object, str]] = []

    # ------------------------------------------------------------------
    # installing the wrappers

    def before_train(self, runner) -> None:
        """Wrap ``parse_losses`` and ``update_params`` of this run."""
        self._runner = runner
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        if not hasattr(model, 'parse_losses'):
            runner.logger.warning(
                f'NonFiniteLossHook: {type(model).__name__} has no '
                'parse_losses; losses are checked after each step only.')
        else:
            self._wrap(model, 'parse_losses', self._guard_parse_losses)
        wrappers = (
            list(runner.optim_wrapper.values()) if isinstance(
                runner.optim_wrapper, OptimWrapperDict) else
            [runner.optim_wrapper])
        for wrapper in wrappers:
            self._wrap(wrapper, 'update_params', self._guard_update_params)

    def _wrap(self, obj, name: str, guard) -> None:
        original = getattr(obj, name)

        def wrapped(*args, **kwargs):
            return guard(original, *args, **kwargs)

        wrapped.__wrapped__ = original
        setattr(obj, name, wrapped)
        self._patched.append((obj, name))

    def after_train(self, runner) -> None:
        """Remove the wrappers (evaluation after training is unaffected)."""
        for obj, name in self._patched:
            if name in vars(obj):
                delattr(obj, name)
        self._patched.clear()

    # ------------------------------------------------------------------
    # the checks

    def _guard_parse_losses(self, original, losses, *args, **kwargs):
        loss, log_vars = original(losses, *args, **kwargs)
        self._checked = True
        bad = self._nonfinite(log_vars)
        if not self._any_rank(bool(bad), loss):
            self._consecutive = 0
            return loss, log_vars
        message = self._message(log_vars, bad, before_update=True)
        if self.action == 'raise':
            raise NonFiniteLossError(message)
        self.num_skipped += 1
        self._consecutive += 1
        if self._consecutive > self.max_consecutive_skips:
            raise NonFiniteLossError(
                f'{message}\n{self._consecutive} steps in a row had a '
                f'non-finite loss (max_consecutive_skips='
                f'{self.max_consecutive_skips}): training has diverged.')
        self._skip_pending = True
        self._runner.message_hub.update_info('nonfinite_loss_skips',
                                             self.num_skipped)
        self._runner.logger.warning(
            f'{message}\nSkipped this step (no backward, no optimizer '
            f'step); {self.num_skipped} skipped so far.')
        for key in bad:
            log_vars.pop(key, None)
        return loss, log_vars

    def _guard_update_params(self, original, *args, **kwargs):
        if self._skip_pending:
            self._skip_pending = False
            return None
        return original(*args, **kwargs)

    @staticmethod
    def _nonfinite(log_vars: Dict) -> List[str]:
        return [
            key for key, value in log_vars.items()
            if 'loss' in key and not math.isfinite(_value(value))
        ]

    @staticmethod
    def _any_rank(flag: bool, like: Optional[torch.Tensor]) -> bool:
        if not is_distributed() or get_world_size() == 1:
            return flag
        device = like.device if isinstance(like, torch.Tensor) else 'cpu'
        tensor = torch.tensor([float(flag)], device=device)
        torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.MAX)
        return bool(tensor.item() > 0)

    def _where(self) -> str:
        runner = self._runner
        where = f'iteration {runner.iter + 1}'
        loop = runner.train_loop
        if hasattr(loop, 'max_epochs'):
            where += (f' (epoch {runner.epoch + 1}, batch '
                      f'{self._batch_idx + 1}/{len(loop.dataloader)})')
        return where

    def _batch_items(self, limit: int = 4) -> str:
        """``img_path`` / ``caption_id`` / ``pid`` of the first samples."""
        batch = self._data_batch
        samples = batch.get('data_samples') if isinstance(batch,
                                                          dict) else None
        if not isinstance(samples, (list, tuple)) or not samples:
            return ''
        shown = []
        for sample in samples[:limit]:
            getter = getattr(sample, 'get', None)
            if not callable(getter):
                continue
            parts = [
                f'{key}={getter(key)}'
                for key in ('img_path', 'caption_id', 'pid')
                if getter(key, None) is not None
            ]
            if parts:
                shown.append(', '.join(parts))
        if not shown:
            return ''
        more = (f' (+{len(samples) - len(shown)} more)'
                if len(samples) > len(shown) else '')
        return '\nFirst items of the batch: ' + '; '.join(shown) + more

    def _message(self, log_vars: Dict, bad: Sequence[str],
                 before_update: bool) -> str:
        if bad:
            terms = ', '.join(f'{k}={_value(log_vars[k])}' for k in bad)
            what = f'non-finite loss {terms}'
        else:
            what = 'a non-finite loss on another rank'
        finite = [
            f'{k}={_value(v):.4g}' for k, v in log_vars.items()
            if 'loss' in k and k not in bad
        ]
        rank = f' on rank {get_rank()}' if get_world_size() > 1 else ''
        text = f'NonFiniteLossHook: {what} at {self._where()}{rank}'
        if finite:
            text += f' (finite: {", ".join(finite)})'
        if not before_update:
            text += ('. The model\'s train_step does not go through '
                     'parse_losses, so the optimizer step had already run')
        text += self._batch_items()
        text += ('\nUsual causes: a learning rate too high for this batch '
                 'size, fp16 overflow, a degenerate batch (one identity '
                 'only, empty captions). NonFiniteLossHook(action="skip") '
                 'drops such steps instead of stopping.')
        return text

    def before_train_iter(self,
                          runner,
                          batch_idx: int,
                          data_batch=None) -> None:
        self._batch_idx = batch_idx
        self._data_batch = data_batch
        self._checked = False
        # a model that parsed a bad loss but never called update_params
        # must not make the next iteration's update disappear
        self._skip_pending = False

    def after_train_iter(self,
                         runner,
                         batch_idx: int,
                         data_batch=None,
                         outputs: Optional[dict] = None) -> None:
        """Check the returned losses of a step that bypassed the guard."""
        self._data_batch = None
        if self._checked or not isinstance(outputs, dict):
            return
        bad = self._nonfinite(outputs)
        if bad:
            raise NonFiniteLossError(
                self._message(outputs, bad, before_update=False))

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(action={self.action!r}, '
                f'max_consecutive_skips={self.max_consecutive_skips}, '
                f'num_skipped={self.num_skipped})')
