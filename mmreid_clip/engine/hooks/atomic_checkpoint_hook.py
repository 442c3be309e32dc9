"""A CheckpointHook whose checkpoints are never seen half-written."""
import contextlib
import functools
import os.path as osp
import re
from typing import Iterator, Optional

from mmengine.dist import is_main_process
from mmengine.fileio import LocalBackend
from mmengine.hooks import CheckpointHook

from mmreid_clip.registry import HOOKS
from mmreid_clip.utils.atomic_io import (atomic_replace, atomic_write_text,
                                         remove_stale_temporaries,
                                         temporary_path)


@HOOKS.register_module()
class AtomicCheckpointHook(CheckpointHook):
    """:class:`~mmengine.hooks.CheckpointHook` with crash-safe local writes.

    mmengine writes ``epoch_N.pth`` in place and then the ``last_checkpoint``
    pointer in place. A process killed during either write (``kill -9``, an
    out-of-memory kill, a pre-empted node) leaves a truncated file under the
    final name; the worst case is the re-save of the latest checkpoint that
    mmengine does after a new best score, which truncates the very file the
    pointer names, so ``--resume`` then fails. This hook writes every
    checkpoint and the pointer to ``<name>.tmp`` and renames it over the
    final name only once complete (:mod:`mmreid_clip.utils.atomic_io`), and
    deletes rotated-out checkpoints only after the new one is in place. A
    run killed at any moment therefore leaves a ``last_checkpoint`` that
    names a complete, loadable checkpoint (or no pointer before the first
    save). When training starts again, the unfinished temporaries of a
    killed run are removed and listed in the log: only ``<name>.tmp``
    files whose ``<name>`` is one this hook writes (``filename_tmpl`` with
    any step, its ``best_*`` copies, ``last_checkpoint``); other ``*.tmp``
    files of the folder are never touched.

    Only local folders are handled; for other storage backends (object
    stores, whose uploads are atomic already) it behaves exactly like
    :class:`CheckpointHook`. Arguments: those of :class:`CheckpointHook`.

    Known limit: as in mmengine, the previous best checkpoint is deleted
    before the new best one is written, so a kill between the two loses the
    best-score file (never the latest one, never leaving a corrupt file).
    """

    POINTER = 'last_checkpoint'

    def _is_local(self) -> bool:
        # file_client_args gives a FileClient wrapping the backend
        backend = getattr(self.file_backend, 'client', self.file_backend)
        return isinstance(backend, LocalBackend)

    def owned_names(self) -> str:
        """Regular expression of the checkpoint names this hook writes:
        ``filename_tmpl`` with any step (``epoch_\\d+\\.pth``) and the
        best-score copies mmengine names ``best_<metric>_<that name>``."""
        parts = re.split(r'(\{[^}]*\})', self.filename_tmpl)
        step = ''.join(r'\d+' if p.startswith('{') else re.escape(p)
                       for p in parts)
        return rf'(?:best_.+_)?{step}'

    def before_train(self, runner) -> None:
        """Resolve the folder (as mmengine does), then clear the stale
        temporaries of its own writes, and only those."""
        super().before_train(runner)
        if not (self._is_local() and is_main_process()):
            return
        removed = remove_stale_temporaries(self.out_dir, self.owned_names())
        removed += remove_stale_temporaries(runner.work_dir,
                                            re.escape(self.POINTER))
        if removed:
            runner.logger.warning(
                'Removed unfinished checkpoint files of an interrupted run: ' +
                ', '.join(removed))

    # ------------------------------------------------------------------
    # writing

    def _save_atomically(self, runner, out_dir: str, filename: str, *args,
                         **kwargs) -> None:
        final = self.file_backend.join_path(out_dir, filename)
        # The class's method, not the temporary instance attribute set by
        # _atomic_runner_saves: Runner.save_checkpoint builds the checkpoint
        # dict and torch.saves it; only its file name changes here.
        type(runner).save_checkpoint(runner, out_dir,
                                     osp.basename(temporary_path(final)),
                                     *args, **kwargs)
        # save_checkpoint is master-only: other ranks wrote nothing
        if is_main_process():
            atomic_replace(temporary_path(final), final)

    @contextlib.contextmanager
    def _atomic_runner_saves(self, runner) -> Iterator[None]:
        """Route ``runner.save_checkpoint`` through a temporary file.

        Used around mmengine's own ``_save_best_checkpoint``, which calls the
        runner directly; the instance attribute shadows the method only
        while the context is open.
        """
        runner.save_checkpoint = functools.partial(self._save_atomically,
                                                   runner)
        try:
            yield
        finally:
            del runner.save_checkpoint

    def _rotate(self, runner, step: int) -> Optional[int]:
        """mmengine's ``max_keep_ckpts`` bookkeeping; returns the step whose
        file is to be deleted once the new checkpoint is in place."""
        if self.max_keep_ckpts <= 0:
            return None
        # called twice for one step when a new best score re-saves it
        if self.keep_ckpt_ids and self.keep_ckpt_ids[-1] == step:
            return None
        drop = None
        if len(self.keep_ckpt_ids) == self.max_keep_ckpts:
            drop = self.keep_ckpt_ids.popleft()
        self.keep_ckpt_ids.append(step)
        # the saved message hub must already list the new step
        runner.message_hub.update_info('keep_ckpt_ids',
                                       list(self.keep_ckpt_ids))
        return drop

    def _save_checkpoint_with_step(self, runner, step, meta) -> None:
        if not self._is_local():
            return super()._save_checkpoint_with_step(runner, step, meta)
        drop = self._rotate(runner, step)
        filename = self.filename_tmpl.format(step)
        self.last_ckpt = self.file_backend.join_path(self.out_dir, filename)
        runner.message_hub.update_info('last_ckpt', self.last_ckpt)
        self._save_atomically(
            runner,
            self.out_dir,
            filename,
            self.file_client_args,
            save_optimizer=self.save_optimizer,
            save_param_scheduler=self.save_param_scheduler,
            meta=meta,
            by_epoch=self.by_epoch,
            backend_args=self.backend_args,
            **self.args)
        if not is_main_process():
            return
        atomic_write_text(
            osp.join(runner.work_dir, self.POINTER), self.last_ckpt)
        if drop is not None:
            old = self.file_backend.join_path(self.out_dir,
                                              self.filename_tmpl.format(drop))
            if self.file_backend.isfile(old):
                self.file_backend.remove(old)

    def _save_best_checkpoint(self, runner, metrics) -> None:
        if not self._is_local():
            return super()._save_best_checkpoint(runner, metrics)
        with self._atomic_runner_saves(runner):
            super()._save_best_checkpoint(runner, metrics)
