"""CFine's Cross-Grained Feature Refinement
(arXiv 2210.10276; ``docs/methods/cfine.md`` §5)."""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_clip.registry import MODELS

__all__ = ['CFR', 'soft_max_pool']


def soft_max_pool(logits: torch.Tensor,
                  valid: Optional[torch.Tensor] = None) -> torch.Tensor:
    """sum_m softmax_m(a)_m * a_m over the last axis: a soft maximum.

    Args:
        logits (Tensor): ... x M scaled similarities a.
        valid (Tensor, optional): Broadcastable ... x M bool; False entries
            are left out of both the softmax and the sum. A row with no
            valid entry pools to 0 (never NaN).

    Returns:
        Tensor: The pooled values, shape ``logits.shape[:-1]``.
    """
    if valid is None:
        return (logits.softmax(dim=-1) * logits).sum(dim=-1)
    valid = valid.expand_as(logits)
    # A finite fill keeps all-invalid rows NaN-free; their weights are then
    # zeroed explicitly.
    weights = logits.masked_fill(~valid, torch.finfo(logits.dtype).min)
    weights = weights.softmax(dim=-1) * valid
    return (weights * logits.masked_fill(~valid, 0.)).sum(dim=-1)


@MODELS.register_module()
class CFR(nn.Module):
    """Cross-grained similarity S_c between every image and text (cfine.md §5).

    On L2-normalised *raw* encoder outputs (not BN'd, not MGF'd), with
    tau_c = ``temperature``::

        a_ijm = cos(v_cls^i, W^j_m) / tau_c     (image global vs words)
        b_ijn = cos(P^i_n, t_cls^j) / tau_c     (patches vs text global)
        S_iw(i, j) = sum_m softmax_m(a_ij)_m a_ijm
        S_ps(i, j) = sum_n softmax_n(b_ij)_n b_ijn
        S_c(i, j) = (S_iw(i, j) + S_ps(i, j)) / 2

    W^j is the union U of text j's selected tokens (2K_t = 40 words) and P^i
    that of image i (2K_v = 38 patches). Rows of S_c are images, columns
    texts; |S_c| <= 1/tau_c. Swapping the roles of the two modalities gives
    S_c transposed. Parameter-free and training-only: it feeds the triplet
    loss (cfine.md §7.4) and is not used at inference. Computed with two
    einsums,
    no loop over pairs.

    Args:
        temperature (float): tau_c (``scale_cs``). Defaults to 0.07.

    Call ``cfr(img_global, img_patches, text_global, text_words,
    img_valid=None, text_valid=None) -> Tensor (B_img x B_txt)``:

    - ``img_global``: B_img x W raw image global features v_cls.
    - ``img_patches``: B_img x N_p x W raw selected patches (U).
    - ``text_global``: B_txt x W raw text global features t_cls.
    - ``text_words``: B_txt x N_w x W raw selected words (U).
    - ``img_valid`` / ``text_valid``: optional B x N_p / B x N_w bool slot
      validity (``TokenGroups.union_valid``); None (the faithful default:
      the official code does not mask PAD tokens, cfine.md §5) uses every slot.
    """

    def __init__(self, temperature: float = 0.07) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        self.temperature = temperature

    def forward(self,
                img_global: torch.Tensor,
                img_patches: torch.Tensor,
                text_global: torch.Tensor,
                text_words: torch.Tensor,
                img_valid: Optional[torch.Tensor] = None,
                text_valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        v = F.normalize(img_global.float(), dim=-1)
        p = F.normalize(img_patches.float(), dim=-1)
        t = F.normalize(text_global.float(), dim=-1)
        w = F.normalize(text_words.float(), dim=-1)
        a = torch.einsum('id,jmd->ijm', v, w) / self.temperature
        b = torch.einsum('ind,jd->ijn', p, t) / self.temperature
        s_iw = soft_max_pool(
            a, None if text_valid is None else text_valid[None, :, :])
        s_ps = soft_max_pool(
            b, None if img_valid is None else img_valid[:, None, :])
        return (s_iw + s_ps) / 2

    def extra_repr(self) -> str:
        return f'temperature={self.temperature}'
