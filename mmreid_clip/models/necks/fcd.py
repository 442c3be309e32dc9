"""CFine's Fine-grained Correspondence Discovery
(arXiv 2210.10276; ``docs/methods/cfine.md`` §6)."""
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from mmreid_clip.registry import MODELS

__all__ = ['FCD']


def _topk_mean_operator(scores: torch.Tensor, k: int, dim: int,
                        valid: Optional[torch.Tensor]) -> torch.Tensor:
    """Averaging matrix of the top-k entries of ``scores`` along ``dim``.

    Returns M (same shape as ``scores``) with M = 1/k at the top-k positions
    along ``dim`` and 0 elsewhere, so that a batched matmul with M turns
    "gather the top-k features and average them" into one ``bmm`` instead
    of materialising B x K x k x W gathers. With ``valid`` (broadcastable
    bool, False = padding slot) invalid positions are never picked; when
    fewer than k are valid, the mean runs over the valid picks only.
    """
    if valid is not None:
        scores = scores.masked_fill(~valid, float('-inf'))
    idx = scores.topk(k, dim=dim).indices
    if valid is None:
        picked = torch.ones_like(idx, dtype=scores.dtype)
    else:
        picked = valid.expand_as(scores).gather(dim, idx).to(scores.dtype)
    op = torch.zeros_like(scores).scatter_(dim, idx, picked)
    return op / op.sum(dim=dim, keepdim=True).clamp(min=1.)


def _slot_mean(sims: torch.Tensor, valid_rows: Optional[torch.Tensor],
               valid_cols: Optional[torch.Tensor]) -> torch.Tensor:
    """Mean over the last (slot) axis of an I x J x S tensor, restricted to
    slots valid on both sides when validity is given."""
    if valid_rows is None and valid_cols is None:
        return sims.mean(dim=-1)
    shape = sims.shape
    rows = (
        torch.ones(shape[0], shape[2], dtype=torch.bool, device=sims.device)
        if valid_rows is None else valid_rows)
    cols = (
        torch.ones(shape[1], shape[2], dtype=torch.bool, device=sims.device)
        if valid_cols is None else valid_cols)
    weight = (rows[:, None, :] & cols[None, :, :]).to(sims.dtype)
    return (sims * weight).sum(-1) / weight.sum(-1).clamp(min=1.)


@MODELS.register_module()
class FCD(nn.Module):
    """Fine-grained similarity S_f between every image and text (cfine.md §6).

    Inputs are the *raw* (not BN'd) group-1 tokens in attention-rank order:
    P^b (K_v = 19 patches) and W^b (K_t = 20 words) for each pair b.

    Step 1, within each ground-truth pair b only:
    C^b = P_hat^b (W_hat^b)^T (cosines, K_v x K_t) and R^b = softmax of C^b
    over the word axis (no temperature).

    Step 2, prototypes: posWord^b_n = L2norm(mean of the raw words at the
    top-``k_w`` entries of row n of R^b) for every patch slot n, and
    posPatch^b_m = L2norm(mean of the raw patches at the top-``k_p``
    entries of column m of R^b) for every word slot m (top-k over patches
    of the *word-softmaxed* R, as coded).

    Step 3, rank-slot similarity with tau_f = ``temperature`` (rows images
    i, columns texts j)::

        S_pw(i, j) = mean_n cos(P_hat^i_n, posWord^j_n) / tau_f
        S_wp(i, j) = mean_m cos(posPatch^i_m, W_hat^j_m) / tau_f
        S_f = (S_pw + S_wp) / 2

    Slot n of image i meets the prototype built for slot n of pair j (both
    are "the n-th most attended patch"), the faithful reading of the official
    code
    (cfine.md §6). |S_f| <= 1/tau_f. The top-k indices carry no gradient; the
    features do. Unlike CFR, swapping the modalities does *not* transpose
    S_f (the softmax of step 1 runs over words). Parameter-free and
    training-only. Einsum-based, no loop over pairs.

    Args:
        temperature (float): tau_f (``scale_cd``). Defaults to 0.01.
        k_w (int): Words per patch prototype (``pos_kw``). Defaults to 3.
        k_p (int): Patches per word prototype (``pos_kp``). Defaults to 3.

    Call ``fcd(img_patches, text_words, img_valid=None, text_valid=None)
    -> Tensor (B x B)``:

    - ``img_patches``: B x K_v x W raw group-1 patches (``group1``).
    - ``text_words``: B x K_t x W raw group-1 words of the *paired* captions
      (row b of both is ground-truth pair b).
    - ``img_valid`` / ``text_valid``: optional B x K_v / B x K_t bool slot
      validity (``TokenGroups.group_valid(0)``, cfine.md §3); invalid slots
      are never picked for a prototype and left out of the slot means.
      None (the faithful default) uses every slot.
    """

    def __init__(self,
                 temperature: float = 0.01,
                 k_w: int = 3,
                 k_p: int = 3) -> None:
        super().__init__()
        if temperature <= 0:
            raise ValueError(f'temperature must be > 0, got {temperature}')
        if k_w < 1 or k_p < 1:
            raise ValueError(f'k_w and k_p must be >= 1, got {k_w}, {k_p}')
        self.temperature = temperature
        self.k_w = k_w
        self.k_p = k_p

    def prototypes(
        self,
        img_patches: torch.Tensor,
        text_words: torch.Tensor,
        img_valid: Optional[torch.Tensor] = None,
        text_valid: Optional[torch.Tensor] = None
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Steps 1-2: per-pair positive prototypes.

        Returns:
            tuple[Tensor, Tensor]: posWord (B x K_v x W) and posPatch
            (B x K_t x W), both L2-normalised.
        """
        _, kv, _ = img_patches.shape
        kt = text_words.shape[1]
        if self.k_w > kt or self.k_p > kv:
            raise ValueError(
                f'k_w={self.k_w} / k_p={self.k_p} exceed the {kt} words / '
                f'{kv} patches of group 1')
        p_raw, w_raw = img_patches.float(), text_words.float()
        p = F.normalize(p_raw, dim=-1)
        w = F.normalize(w_raw, dim=-1)
        word_mask = None if text_valid is None else text_valid[:, None, :]
        patch_mask = None if img_valid is None else img_valid[:, :, None]
        with torch.no_grad():  # R only chooses indices
            cos = torch.einsum('bnd,bmd->bnm', p, w)
            if word_mask is not None:
                # finite fill: a caption without valid words stays NaN-free
                cos = cos.masked_fill(~word_mask, torch.finfo(cos.dtype).min)
            r = cos.softmax(dim=2)  # over words, no temperature
            word_op = _topk_mean_operator(r, self.k_w, 2, word_mask)
            patch_op = _topk_mean_operator(r, self.k_p, 1, patch_mask)
        pos_word = F.normalize(torch.bmm(word_op, w_raw), dim=-1)
        pos_patch = F.normalize(
            torch.bmm(patch_op.transpose(1, 2), p_raw), dim=-1)
        return pos_word, pos_patch

    def forward(self,
                img_patches: torch.Tensor,
                text_words: torch.Tensor,
                img_valid: Optional[torch.Tensor] = None,
                text_valid: Optional[torch.Tensor] = None) -> torch.Tensor:
        if img_patches.shape[0] != text_words.shape[0]:
            raise ValueError('FCD needs paired batches (row b of both '
                             'inputs is one ground-truth pair)')
        pos_word, pos_patch = self.prototypes(img_patches, text_words,
                                              img_valid, text_valid)
        p = F.normalize(img_patches.float(), dim=-1)
        w = F.normalize(text_words.float(), dim=-1)
        # A prototype exists where its own slot is valid and the pair has
        # at least one token of the other modality to average.
        pw_valid = pp_valid = None
        if img_valid is not None or text_valid is not None:
            b, kv, kt = p.shape[0], p.shape[1], w.shape[1]
            iv = (
                torch.ones(b, kv, dtype=torch.bool, device=p.device)
                if img_valid is None else img_valid.bool())
            tv = (
                torch.ones(b, kt, dtype=torch.bool, device=p.device)
                if text_valid is None else text_valid.bool())
            pw_valid = iv & tv.any(1, keepdim=True)
            pp_valid = tv & iv.any(1, keepdim=True)
            img_valid, text_valid = iv, tv
        s_pw = _slot_mean(
            torch.einsum('ind,jnd->ijn', p, pos_word), img_valid, pw_valid)
        s_wp = _slot_mean(
            torch.einsum('imd,jmd->ijm', pos_patch, w), pp_valid, text_valid)
        return (s_pw + s_wp) / (2 * self.temperature)

    def extra_repr(self) -> str:
        return (f'temperature={self.temperature}, k_w={self.k_w}, '
                f'k_p={self.k_p}')
