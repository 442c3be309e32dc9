from .multi_optim_data_parallel import (MultiOptimDataParallel,
                                        average_gradients,
                                        install_gradient_averaging)

__all__ = [
    'MultiOptimDataParallel', 'average_gradients',
    'install_gradient_averaging'
]
