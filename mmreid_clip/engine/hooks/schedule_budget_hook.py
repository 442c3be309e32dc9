"""Warn when training starts with schedules that do not fit its budget."""
from mmengine.hooks import Hook

from mmreid_clip.registry import HOOKS
from mmreid_clip.utils.schedule_budget import schedule_budget_problems


@HOOKS.register_module()
class ScheduleBudgetHook(Hook):
    """Log :func:`~mmreid_clip.utils.schedule_budget_problems` as warnings.

    Runs once, before the first training iteration: a scheduler that ends
    after the last epoch, begins after it, or (two-stage loop) crosses the
    stage boundary is named, with the fix (``tools/train.py --epochs N``).
    ``tools/train.py`` adds this hook to every run.
    """

    priority = 'VERY_LOW'

    def before_train(self, runner) -> None:
        problems = schedule_budget_problems(runner.cfg)
        if problems:
            *found, fix = problems
            runner.logger.warning(
                'The learning-rate schedule does not fit the training '
                'budget:\n  - ' + '\n  - '.join(found) + f'\n  {fix}')
