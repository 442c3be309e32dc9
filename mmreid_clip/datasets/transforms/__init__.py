"""Data transforms of mmreid_clip.

Image transforms come from mmcv / mmpretrain (``LoadImageFromFile``,
``Resize``, ``RandomFlip``, ``RandomCrop``, ``RandomErasing``, ...), which
are reachable from our ``TRANSFORMS`` registry through its parents; this
package adds the caption and packing transforms.
"""
from .formatting import PackTextImageInputs
from .tokenize import TokenizeCaption

__all__ = ['PackTextImageInputs', 'TokenizeCaption']
