"""Old path of :mod:`mmreid_clip.datasets.text_image_collate`.

Kept so that code importing ``mmreid_clip.datasets.collate`` still works;
the function is registered once, by the new module.
"""
from .text_image_collate import text_image_collate  # noqa: F401

__all__ = ['text_image_collate']
