from .cfm import CFM
from .cfr import CFR, soft_max_pool
from .fcd import FCD
from .ifp import IFP
from .mgf import MGF, LayerNormFp32, MGFBlock

__all__ = [
    'MGF', 'MGFBlock', 'LayerNormFp32', 'CFR', 'FCD', 'soft_max_pool', 'IFP',
    'CFM'
]
