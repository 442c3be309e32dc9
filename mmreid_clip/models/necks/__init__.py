from .cfr import CFR, soft_max_pool
from .fcd import FCD
from .mgf import MGF, LayerNormFp32, MGFBlock

__all__ = ['MGF', 'MGFBlock', 'LayerNormFp32', 'CFR', 'FCD', 'soft_max_pool']
