"""IFP: Invariant Feature Prompting (CCAF's cloth-agnostic positive path).

A head in mmpretrain's terms: it owns the I2I loss and computes the
shielding branch's loss terms (it was under ``models/necks/`` before).
"""
from typing import Callable, Dict, Optional, Sequence

import torch
from mmengine.model import BaseModule

from mmreid_clip.registry import MODELS

LossFn = Callable[..., torch.Tensor]


@MODELS.register_module()
class IFP(BaseModule):
    """Invariant Feature Prompting: shielding images, cloth-agnostic prompts.

    arXiv 2406.09198; ``docs/methods/ccaf.md`` §7. IFP changes three things of
    the
    CLIP-ReID baseline, all at training time only:

    * **GCATP** (ccaf.md §4, §7): the identity prompts are learnt in stage 1 on
      the
      frozen features of *shielding* images ``x^s`` (clothes pixels
      filled, built by the ``ShieldClothes`` transform), so the text
      features ``T_id`` that stage 2 aligns to are cloth-agnostic.
      :attr:`prompt_view` tells the retriever which view to cache.
    * **I2T** (ccaf.md §5, §7): ``L_I2T = CE_ls(fp · T_idᵀ, y)``, computed by
      the
      retriever as in CLIP-ReID, but against the cloth-agnostic ``T_id``;
      optionally also on the shielding branch (``shield_i2t``, off).
    * **I2I** (reconstructed choice, ccaf.md §12 row 9): the raw and shielding
      images go through the
      *shared* encoder and heads; for every feature space ``g`` in
      ``i2i_keys`` (default the BN outputs of ``f12`` and ``fp``)
      ``L_I2I = Σ_g (1/P) Σ_p MSE(c_p, c^s_p)`` with ``c_p`` the batch
      centroid of identity ``p`` (``i2i_loss``, e.g.
      ``CentroidAlignLoss``; its ``detach_target`` makes the
      shielding branch a stop-gradient teacher).
    * Shielding-branch supervision (switch ``shield_id_tri``, default on,
      reconstructed choice, ccaf.md §12 row 10): ``L_ID^s`` and ``L_Tri^s``
      with the raw branch's heads and
      loss functions.

    Args:
        i2i_loss: Config of the raw↔shielding alignment loss; None turns
            I2I off.
        i2i_keys: Feature names (backbone outputs ``f11``/``f12``/``fp`` or
            head outputs ``bn_f12``/``bn_fp``) aligned by ``i2i_loss``.
        shield_id_tri: Add the ID and triplet losses on the shielding
            branch.
        shield_i2t: Add ``L_I2T`` on the shielding branch.
        prompt_view: Input view whose frozen features learn the identity
            prompts in stage 1 (``'shield_images'``: GCATP;
            ``'images'``: CLIP-ReID's raw-image prompts).
        bn_stats: Batch statistics of the BNNeck in stage 2.
            ``'joint'`` (default): one batch over the raw and the shielding
            images (they share encoder and heads, and are encoded as one
            batch), so the running statistics used at inference mix both
            views. ``'raw'``: statistics of the raw images only, the
            shielding images normalised with them, so the inference
            statistics are those of the raw images that are tested. The
            paper does not say; see docs/methods/fidelity.md.
        init_cfg: mmengine init config.
    """

    def __init__(self,
                 i2i_loss: Optional[dict] = dict(
                     type='CentroidAlignLoss', loss_weight=1.0),
                 i2i_keys: Sequence[str] = ('bn_f12', 'bn_fp'),
                 shield_id_tri: bool = True,
                 shield_i2t: bool = False,
                 prompt_view: str = 'shield_images',
                 bn_stats: str = 'joint',
                 init_cfg: Optional[dict] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        if prompt_view not in ('shield_images', 'images'):
            raise ValueError("prompt_view must be 'shield_images' or "
                             f"'images', got {prompt_view!r}")
        self.i2i_loss = MODELS.build(i2i_loss) if i2i_loss else None
        self.i2i_keys = tuple(i2i_keys)
        self.shield_id_tri = shield_id_tri
        self.shield_i2t = shield_i2t
        self.prompt_view = prompt_view
        if bn_stats not in ('joint', 'raw'):
            raise ValueError("bn_stats must be 'joint' or 'raw', got "
                             f'{bn_stats!r}')
        self.bn_stats = bn_stats

    @property
    def needs_shield_branch(self) -> bool:
        """Whether stage 2 must encode the shielding images."""
        return bool(self.i2i_loss is not None or self.shield_id_tri
                    or self.shield_i2t)

    def loss(self, raw: Dict[str, torch.Tensor],
             shield: Dict[str, torch.Tensor], pids: torch.Tensor,
             id_loss: LossFn, triplet_loss: LossFn,
             i2t_loss: LossFn) -> Dict[str, torch.Tensor]:
        """IFP's stage-2 losses.

        Args:
            raw: Backbone and head outputs of the raw images.
            shield: The same for the shielding images (same order).
            pids: ``B`` identity labels.
            id_loss: ``id_loss(outputs, pids)``, the raw branch's ID loss.
            triplet_loss: ``triplet_loss(outputs, pids)``, likewise.
            i2t_loss: ``i2t_loss(fp, pids)``, likewise.

        Returns:
            dict of weighted loss terms (``loss_i2i``, ``loss_id_shield``,
            ``loss_tri_shield``, ``loss_i2t_shield``).
        """
        losses = {}
        if self.i2i_loss is not None:
            total = 0.
            for key in self.i2i_keys:
                if key not in raw or key not in shield:
                    raise KeyError(f'IFP i2i_keys names {key!r}; available: '
                                   f'{sorted(raw)}')
                total = total + self.i2i_loss(raw[key], shield[key], pids)
            losses['loss_i2i'] = total
        if self.shield_id_tri:
            losses['loss_id_shield'] = id_loss(shield, pids)
            losses['loss_tri_shield'] = triplet_loss(shield, pids)
        if self.shield_i2t:
            losses['loss_i2t_shield'] = i2t_loss(shield['fp'], pids)
        return losses
