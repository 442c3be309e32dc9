"""Old path of :mod:`mmreid_clip.models.utils.text_image_data_preprocessor`.

Kept so that code importing ``...models.utils.data_preprocessor`` still
works; the class is registered once, by the new module.
"""
from .text_image_data_preprocessor import (CLIP_MEAN, CLIP_STD,  # noqa: F401
                                           TextImageDataPreprocessor)

__all__ = ['CLIP_MEAN', 'CLIP_STD', 'TextImageDataPreprocessor']
