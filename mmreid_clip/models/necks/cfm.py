"""Old path of :mod:`mmreid_clip.models.heads.cfm_head`.

CFM owns its losses, the clothes prompt learner and the examiner's
optimizer step, so it is a head in mmpretrain's terms and lives in
``models/heads/``. Kept so that code importing ``models.necks.cfm`` still
works; ``CFM`` is registered once, by the new module.
"""
from ..heads.cfm_head import CFM  # noqa: F401

__all__ = ['CFM']
