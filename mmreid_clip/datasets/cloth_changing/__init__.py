"""Cloth-changing person ReID datasets (PRCC, LTCC, VC-Clothes, DeepChange)
with optional human-parsing masks; see :class:`ClothChangingDataset`."""
from .base import (IMG_EXTENSIONS, MASK_EXTENSION, ClothChangingDataset,
                   RawSample, is_image_file)
from .deepchange import DeepChange
from .ltcc import LTCC
from .prcc import PRCC
from .vc_clothes import VCClothes

__all__ = [
    'IMG_EXTENSIONS', 'MASK_EXTENSION', 'ClothChangingDataset', 'DeepChange',
    'LTCC', 'PRCC', 'RawSample', 'VCClothes', 'is_image_file'
]
