"""Cloth-changing person ReID datasets (PRCC, LTCC, VC-Clothes, DeepChange)
with optional human-parsing masks; see :class:`ClothChangingDataset`."""
from .base import MASK_EXTENSION, ClothChangingDataset, RawSample
from .deepchange import DeepChange
from .ltcc import LTCC
from .prcc import PRCC
from .vc_clothes import VCClothes

__all__ = [
    'MASK_EXTENSION', 'ClothChangingDataset', 'DeepChange', 'LTCC', 'PRCC',
    'RawSample', 'VCClothes'
]
