from .setup_env import (amp_optim_wrapper_type, missing_files,
                        register_all_modules, setup_runtime)

__all__ = [
    'amp_optim_wrapper_type', 'missing_files', 'register_all_modules',
    'setup_runtime'
]
