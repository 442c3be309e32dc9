"""Carry the random number generators' state through checkpoints."""
import random
from typing import Optional

import numpy as np
import torch
from mmengine.dist import get_world_size
from mmengine.hooks import Hook

from mmreid_clip.registry import HOOKS


def get_random_state() -> dict:
    """The state of Python's, numpy's and torch's global generators.

    Returns:
        dict: ``python``, ``numpy`` (numpy's dict form), ``torch`` (a uint8
        tensor) and, when CUDA is initialised, ``cuda`` (one per device).
        Every value unpickles under ``weights_only`` loading.
    """
    state = dict(
        python=random.getstate(),
        numpy=np.random.get_state(legacy=False),
        torch=torch.get_rng_state())
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def set_random_state(state: dict) -> None:
    """Restore a :func:`get_random_state` result (missing parts are kept)."""
    if 'python' in state:
        version, internal, gauss = state['python']
        random.setstate((version, tuple(internal), gauss))
    if 'numpy' in state:
        np.random.set_state(state['numpy'])
    if 'torch' in state:
        torch.set_rng_state(state['torch'].cpu())
    if 'cuda' in state and torch.cuda.is_available():
        states = state['cuda']
        if len(states) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all([s.cpu() for s in states])


@HOOKS.register_module()
class RandomStateHook(Hook):
    """Make ``--resume`` continue the exact random streams of the run.

    mmengine re-seeds every generator from ``randomness.seed`` when a run
    starts, also when it resumes, so a resumed run replays the random
    augmentations (``RandomFlip``, ``RandomErasing``, ...), dropout masks
    and mmengine's refetch choices of epoch 1 instead of those of the epoch
    it resumes at, and cannot reach the numbers of an uninterrupted run.
    This hook stores the generators' state in every checkpoint (key
    ``random_state``) and restores it when training resumes from one; a
    plain ``load_from`` (fine-tuning, testing) leaves the seeding alone.

    Validation inside training draws random numbers too (the DataLoader
    draws a base seed per pass), and mmengine saves a checkpoint once more
    after a new best score, during validation. So that the stream of
    training does not depend on when validation runs, the state is
    snapshotted before a validation pass run by the training loop, restored
    after it, and that snapshot is what a checkpoint written during
    validation stores.

    Exactness needs, besides this hook, a deterministic run
    (``randomness=dict(seed=..., deterministic=True)``), an epoch-based
    loop resumed from an epoch checkpoint (mmengine restarts a partly done
    epoch from its start) and data loading without persistent workers
    (persistent workers keep their own generators, which are re-seeded, not
    restored, on resume). ``docs/reliability.md`` lists these conditions.

    With ``randomness.diff_rank_seed=True`` every rank has its own stream
    but only rank 0 saves checkpoints, so nothing is restored then (a
    warning says so).

    Args:
        restore (bool): Restore the state when resuming. Defaults to True.
    """

    priority = 'NORMAL'
    KEY = 'random_state'

    def __init__(self, restore: bool = True) -> None:
        self.restore = restore
        self._loaded: Optional[dict] = None
        self._val_snapshot: Optional[dict] = None
        self._in_train = False

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        """Store the state (the pre-validation one while validating)."""
        checkpoint[self.KEY] = (
            self._val_snapshot
            if self._val_snapshot is not None else get_random_state())

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        """Keep the checkpoint's state; applied only if training resumes."""
        self._loaded = checkpoint.get(self.KEY)

    def before_train(self, runner) -> None:
        """Restore the loaded state when the run resumed (``iter > 0``)."""
        self._in_train = True
        state, self._loaded = self._loaded, None
        if not self.restore or runner.iter == 0:
            return  # a fresh run, or load_from weights only
        if state is None:
            runner.logger.warning(
                'The resumed checkpoint has no random state (it was written '
                'without RandomStateHook): the random streams restart from '
                'the seed, so the run will not repeat an uninterrupted one '
                'exactly.')
            return
        diff_rank_seed = (runner.cfg.get('randomness')
                          or {}).get('diff_rank_seed', False)
        if diff_rank_seed and get_world_size() > 1:
            runner.logger.warning(
                'randomness.diff_rank_seed=True: the checkpoint holds rank '
                "0's random state only, so it is not restored on any rank.")
            return
        set_random_state(state)
        runner.logger.info(
            f'Restored the random generators\' state of iteration '
            f'{runner.iter} from the checkpoint.')

    def after_train(self, runner) -> None:
        self._in_train = False

    def before_val(self, runner) -> None:
        if self._in_train:
            self._val_snapshot = get_random_state()

    def after_val(self, runner) -> None:
        if self._val_snapshot is not None:
            set_random_state(self._val_snapshot)
            self._val_snapshot = None
