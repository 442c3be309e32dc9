from .cpu_autocast_optim_wrapper import CPUAutocastOptimWrapper
from .multi_optim_constructor import MultiOptimWrapperConstructor

__all__ = ['CPUAutocastOptimWrapper', 'MultiOptimWrapperConstructor']
