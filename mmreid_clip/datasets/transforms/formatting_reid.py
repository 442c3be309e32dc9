"""Old path of :mod:`mmreid_clip.datasets.transforms.reid_formatting`.

Kept so that code importing ``...transforms.formatting_reid`` still works;
the transform is registered once, by the new module.
"""
from .reid_formatting import DEFAULT_VIEW_KEYS, PackReIDInputs  # noqa: F401

__all__ = ['DEFAULT_VIEW_KEYS', 'PackReIDInputs']
