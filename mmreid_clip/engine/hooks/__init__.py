from .atomic_checkpoint_hook import AtomicCheckpointHook
from .checkpoint_match_hook import CheckpointMatchHook
from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .num_classes_check_hook import NumClassesCheckHook
from .progress_hook import ProgressHook
from .random_state_hook import (RandomStateHook, get_random_state,
                                set_random_state)
from .schedule_budget_hook import ScheduleBudgetHook

__all__ = [
    'AtomicCheckpointHook', 'CheckpointMatchHook', 'NonFiniteLossError',
    'NonFiniteLossHook', 'NumClassesCheckHook', 'ProgressHook',
    'RandomStateHook', 'ScheduleBudgetHook', 'get_random_state',
    'set_random_state'
]
