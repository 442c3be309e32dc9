"""Data transforms of mmreid_clip.

Image transforms come from mmcv / mmpretrain (``Resize``, ``RandomFlip``,
``RandomCrop``, ``RandomErasing``, ``TransformBroadcaster``, ...), which are
reachable from our ``TRANSFORMS`` registry through its parents; this package
adds the caption and packing transforms (``text_image_formatting``,
``reid_formatting``), mmcv's ``LoadImageFromFile`` with a pixel limit (under
the same name), the cloth-changing mask transforms (``LoadParsingMask``,
``JointRandomCrop``, ``ShieldClothes``) and a ``RandomErasing`` that is
mmpretrain's by default and timm's with ``impl='timm'`` (CLIP-ReID's).
Per-view random erasing: wrap it in mmcv's ``TransformBroadcaster`` with
``share_random_params=False``.
"""
from .loading import (DEFAULT_MAX_PIXELS, ImageTooLargeError,
                      LoadImageFromFile, check_image_pixels)
from .parsing_mask import JointRandomCrop, LoadParsingMask
from .random_erasing import RandomErasing
from .reid_formatting import PackReIDInputs
from .shielding import (CLOTHES_LABEL_PRESETS, ShieldClothes,
                        resolve_clothes_labels)
from .text_image_formatting import PackTextImageInputs
from .tokenize import TokenizeCaption

__all__ = [
    'CLOTHES_LABEL_PRESETS', 'DEFAULT_MAX_PIXELS', 'ImageTooLargeError',
    'JointRandomCrop', 'LoadImageFromFile', 'LoadParsingMask',
    'check_image_pixels',
    'PackReIDInputs', 'PackTextImageInputs', 'RandomErasing', 'ShieldClothes',
    'TokenizeCaption', 'resolve_clothes_labels'
]
