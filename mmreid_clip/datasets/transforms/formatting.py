"""Old path of :mod:`mmreid_clip.datasets.transforms.text_image_formatting`.

Kept so that code importing ``...transforms.formatting`` still works; the
transform is registered once, by the new module.
"""
from .text_image_formatting import PackTextImageInputs  # noqa: F401

__all__ = ['PackTextImageInputs']
