from .atomic_checkpoint_hook import AtomicCheckpointHook
from .checkpoint_match_hook import CheckpointMatchHook
from .nonfinite_loss_hook import NonFiniteLossError, NonFiniteLossHook
from .random_state_hook import (RandomStateHook, get_random_state,
                                set_random_state)

__all__ = [
    'AtomicCheckpointHook', 'CheckpointMatchHook', 'NonFiniteLossError',
    'NonFiniteLossHook', 'RandomStateHook', 'get_random_state',
    'set_random_state'
]
