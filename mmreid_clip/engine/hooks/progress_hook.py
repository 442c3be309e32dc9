"""Progress of training, validation and testing, from the first iteration."""
from typing import Optional

from mmengine.hooks import Hook, LoggerHook

from mmreid_clip.engine.progress import ProgressLine
from mmreid_clip.registry import HOOKS


@HOOKS.register_module()
class ProgressHook(Hook):
    """A progress bar per epoch / evaluation, and an early first log line.

    - In an interactive terminal (:func:`~mmreid_clip.engine.progress.
      interactive`), a one-line bar on stderr shows the iterations of the
      current training epoch (stage-aware in the two-stage loop), of
      validation and of testing, with the rate and the time left. It is
      drawn before each iteration and wiped after it, so the LoggerHook's
      lines stay clean; nothing is drawn into logs.
    - Always, the first training iteration of a run is logged in the
      LoggerHook's format (losses, ``eta``) when the LoggerHook would not
      log it itself (``interval`` > 1): the first sign of progress, and an
      ETA, come after one iteration instead of ``interval``.

    ``tools/train.py`` and ``tools/test.py`` add this hook.

    Args:
        bar (bool, optional): Draw the bar; None (default) draws it in
            interactive terminals only.
        first_iter_log (bool): Log the first training iteration.
    """

    priority = 'NORMAL'  # before the LoggerHook (BELOW_NORMAL)

    def __init__(self,
                 bar: Optional[bool] = None,
                 first_iter_log: bool = True) -> None:
        self.bar = bar
        self.first_iter_log = first_iter_log
        self._line: Optional[ProgressLine] = None
        self._first_iter: Optional[int] = None

    # bars -------------------------------------------------------------
    def _start(self, total: int, desc: str) -> None:
        self._close()
        self._line = ProgressLine(total, desc, enabled=self.bar)

    def _close(self) -> None:
        if self._line is not None:
            self._line.close()
            self._line = None

    def _before_iter(self) -> None:
        if self._line is not None:
            self._line.draw(force=True)

    def _after_iter(self) -> None:
        if self._line is not None:
            self._line.count += 1
            self._line.clear()

    # training -----------------------------------------------------------
    def before_train(self, runner) -> None:
        self._first_iter = runner.iter

    def before_train_epoch(self, runner) -> None:
        loop = runner.train_loop
        desc = f'train epoch {runner.epoch + 1}/{runner.max_epochs}'
        stage = getattr(loop, 'stage', None)
        if stage is not None and getattr(loop, 'stage1_epochs', 0):
            desc += f' (stage {stage})'
        try:
            total = len(runner.train_dataloader)
        except TypeError:
            total = None
        self._start(total, desc)

    def before_train_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._before_iter()

    def after_train_iter(self,
                         runner,
                         batch_idx,
                         data_batch=None,
                         outputs=None) -> None:
        self._after_iter()
        if (self.first_iter_log and runner.iter == self._first_iter
                and not self._logger_logs(runner, batch_idx)):
            _, log_str = runner.log_processor.get_log_after_iter(
                runner, batch_idx, 'train')
            runner.logger.info(log_str)

    def after_train_epoch(self, runner) -> None:
        self._close()

    def after_train(self, runner) -> None:
        self._close()

    @staticmethod
    def _logger_logs(runner, batch_idx: int) -> bool:
        """Whether the LoggerHook logs this training iteration itself."""
        for hook in runner.hooks:
            if isinstance(hook, LoggerHook):
                return (hook.every_n_inner_iters(batch_idx, hook.interval)
                        or hook.end_of_epoch(runner.train_dataloader,
                                             batch_idx))
        return True  # no logger: nothing to imitate

    # validation and testing ---------------------------------------------
    def before_val_epoch(self, runner) -> None:
        self._start(len(runner.val_dataloader), 'validation')

    def before_val_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._before_iter()

    def after_val_iter(self,
                       runner,
                       batch_idx,
                       data_batch=None,
                       outputs=None) -> None:
        self._after_iter()

    def after_val_epoch(self, runner, metrics=None) -> None:
        self._close()

    def before_test_epoch(self, runner) -> None:
        self._start(len(runner.test_dataloader), 'test')

    def before_test_iter(self, runner, batch_idx, data_batch=None) -> None:
        self._before_iter()

    def after_test_iter(self,
                        runner,
                        batch_idx,
                        data_batch=None,
                        outputs=None) -> None:
        self._after_iter()

    def after_test_epoch(self, runner, metrics=None) -> None:
        self._close()
