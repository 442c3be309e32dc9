"""Data transforms of mmreid_clip.

Image transforms come from mmcv / mmpretrain (``LoadImageFromFile``,
``Resize``, ``RandomFlip``, ``RandomCrop``, ``RandomErasing``,
``TransformBroadcaster``, ...), which are reachable from our ``TRANSFORMS``
registry through its parents; this package adds the caption and packing
transforms and the cloth-changing mask transforms (``LoadParsingMask``,
``JointRandomCrop``, ``ShieldClothes``). Per-view random erasing needs no
class of ours: wrap mmpretrain's ``RandomErasing`` in mmcv's
``TransformBroadcaster`` with ``share_random_params=False``.
"""
from .formatting import PackTextImageInputs
from .formatting_reid import PackReIDInputs
from .parsing_mask import JointRandomCrop, LoadParsingMask
from .shielding import (CLOTHES_LABEL_PRESETS, ShieldClothes,
                        resolve_clothes_labels)
from .tokenize import TokenizeCaption

__all__ = [
    'CLOTHES_LABEL_PRESETS', 'JointRandomCrop', 'LoadParsingMask',
    'PackReIDInputs', 'PackTextImageInputs', 'ShieldClothes',
    'TokenizeCaption', 'resolve_clothes_labels'
]
