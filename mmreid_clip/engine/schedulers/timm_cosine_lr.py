"""timm's per-epoch cosine schedule with linear warm-up (CLIP-ReID stage 1)."""
import math

from mmengine.optim.scheduler.lr_scheduler import LRSchedulerMixin
from mmengine.optim.scheduler.param_scheduler import _ParamScheduler

from mmreid_clip.registry import PARAM_SCHEDULERS


@PARAM_SCHEDULERS.register_module()
class TimmCosineLR(LRSchedulerMixin, _ParamScheduler):
    """Cosine on the *absolute* epoch with a linear warm-up that replaces it.

    CLIP-ReID's stage 1 (``docs/methods/ccaf.md`` §4) uses timm's
    ``CosineLRScheduler`` stepped with the 1-based epoch ``t``::

        lr(t) = warmup_lr + t (base - warmup_lr) / warmup_t     t < warmup_t
        lr(t) = eta_min + ½ (base - eta_min)(1 + cos(π t / T))  otherwise

    MMEngine's ``LinearLR`` + ``CosineAnnealingLR`` cannot express it: a
    cosine with ``begin = warmup_t`` restarts its phase at the warm-up end
    (an offset that would shift every lr), and chained schedulers multiply.
    This scheduler computes the closed form above, so it must be the only
    scheduler of its optimizer over ``[begin, end)``.

    Args:
        optimizer: Wrapped optimizer.
        t_max: ``T``, the cosine period in epochs (CLIP-ReID: 120).
        warmup_t: Warm-up epochs (5).
        warmup_lr: Learning rate at ``t = 0`` of the warm-up (1e-5).
        eta_min: Final learning rate (1e-6).
        begin: First epoch (0-based) of the schedule; ``t`` counts from
            ``begin`` (epoch ``begin`` trains at ``t = 1``).
        end: Epoch after the last.
        by_epoch: Must be True (the reference steps per epoch).
        last_step: See MMEngine's schedulers.
        verbose: See MMEngine's schedulers.
    """

    def __init__(self,
                 optimizer,
                 t_max: int,
                 warmup_t: int = 0,
                 warmup_lr: float = 0.0,
                 eta_min: float = 0.0,
                 begin: int = 0,
                 end: int = 1000000000,
                 by_epoch: bool = True,
                 last_step: int = -1,
                 verbose: bool = False) -> None:
        if not by_epoch:
            raise ValueError('TimmCosineLR steps per epoch (by_epoch=True)')
        if t_max < 1 or warmup_t < 0:
            raise ValueError(f't_max must be >= 1 and warmup_t >= 0, got '
                             f'{t_max}, {warmup_t}')
        self.t_max = t_max
        self.warmup_t = warmup_t
        self.warmup_lr = warmup_lr
        self.eta_min = eta_min
        super().__init__(
            optimizer,
            begin=begin,
            end=end,
            last_step=last_step,
            by_epoch=by_epoch,
            verbose=verbose)

    def lr_at(self, base: float, t: int) -> float:
        """The learning rate of 1-based epoch ``t`` for base rate ``base``."""
        if t < self.warmup_t:
            return self.warmup_lr + t * (base - self.warmup_lr) / self.warmup_t
        return self.eta_min + 0.5 * (base - self.eta_min) * (
            1 + math.cos(math.pi * t / self.t_max))

    def _get_value(self) -> list:
        # last_step is 0 for the first epoch in [begin, end): t = 1
        t = self.last_step + 1
        return [self.lr_at(base, t) for base in self.base_values]
