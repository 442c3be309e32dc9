from .atomic_io import (atomic_replace, atomic_write_bytes, atomic_write_text,
                        remove_stale_temporaries)
from .checkpoint_check import (CheckpointMismatchError, StateDictReport,
                               compare_state_dicts)
from .config_check import (ConfigKeyError, UnknownArgumentError,
                           UnknownTypeError, check_config_keys,
                           explain_build_errors)
from .schedule_budget import (rescale_epochs, schedule_budget_problems)
from .setup_env import (amp_optim_wrapper_type, apply_amp,
                        choose_torch_threads, ensure_custom_hooks,
                        finish_distributed, fit_loader_options, missing_files,
                        register_all_modules, setup_runtime)

__all__ = [
    'CheckpointMismatchError', 'ConfigKeyError', 'StateDictReport',
    'UnknownArgumentError', 'UnknownTypeError', 'amp_optim_wrapper_type',
    'apply_amp',
    'atomic_replace', 'atomic_write_bytes', 'atomic_write_text',
    'check_config_keys', 'choose_torch_threads', 'compare_state_dicts',
    'ensure_custom_hooks', 'explain_build_errors', 'finish_distributed',
    'fit_loader_options',
    'missing_files', 'register_all_modules', 'remove_stale_temporaries',
    'rescale_epochs', 'schedule_budget_problems', 'setup_runtime'
]
