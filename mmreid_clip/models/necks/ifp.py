"""Old path of :mod:`mmreid_clip.models.heads.ifp_head`.

IFP owns its I2I loss and computes the shielding branch's loss terms, so it
is a head in mmpretrain's terms and lives in ``models/heads/``. Kept so that
code importing ``models.necks.ifp`` still works; ``IFP`` is registered once,
by the new module.
"""
from ..heads.ifp_head import IFP  # noqa: F401

__all__ = ['IFP']
