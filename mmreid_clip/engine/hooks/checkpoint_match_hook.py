"""Refuse (or clearly report) a checkpoint that does not fit the model."""
from typing import Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from mmreid_clip.registry import HOOKS
from mmreid_clip.utils.checkpoint_check import (CheckpointMismatchError,
                                                checkpoint_model_type,
                                                checkpoint_state_dict,
                                                compare_state_dicts)


@HOOKS.register_module()
class CheckpointMatchHook(Hook):
    """Compare every loaded checkpoint with the model before it is applied.

    mmengine applies ``load_from`` and resumed checkpoints with
    ``strict=False`` and logs raw key lists when they differ, so a
    checkpoint of another architecture is tested (or trained on) with
    mostly random weights. This hook runs on ``after_load_checkpoint``,
    i.e. after the checkpoint is read and before its weights are copied, and
    last among hooks (``priority='LOWEST'``, after e.g. ``EMAHook`` has
    swapped in the averaged weights). It reports the missing, unexpected
    and wrongly shaped entries grouped by module, and the model type the
    checkpoint was trained as.

    - ``strict=True`` (``tools/test.py``): any difference raises
      :class:`CheckpointMismatchError`.
    - ``strict=False`` (training's ``load_from``, where a partial
      initialisation can be intended): the report is a warning, but a
      checkpoint sharing no entry with the model still raises, since
      nothing would be loaded.

    Args:
        strict (bool): Raise on any difference. Defaults to False.
        source (str, optional): How to name the checkpoint in messages
            (its path). Defaults to 'the loaded checkpoint'.
    """

    priority = 'LOWEST'

    def __init__(self,
                 strict: bool = False,
                 source: Optional[str] = None) -> None:
        self.strict = strict
        self.source = source or 'the loaded checkpoint'

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        model = runner.model.module if is_model_wrapper(
            runner.model) else runner.model
        report = compare_state_dicts(model.state_dict(),
                                     checkpoint_state_dict(checkpoint))
        if report.ok:
            return
        message = report.format(
            source=self.source,
            model_name=f'the {type(model).__name__} model of this config',
            checkpoint_model=checkpoint_model_type(checkpoint))
        if self.strict or report.num_matched == 0:
            raise CheckpointMismatchError(message)
        runner.logger.warning(message)
