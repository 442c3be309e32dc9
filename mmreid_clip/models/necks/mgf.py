"""CFine's Multi-grained Global Feature learning (arXiv 2210.10276;
``docs/methods/cfine.md`` §4).

One residual cross-attention block (:class:`MGFBlock`) is shared by both
modalities and both token groups; its output at the global query position
is an "enhanced" global feature per group. The raw global feature and the
two enhanced ones go through a per-modality BNNeck and form the 3-level
features V^g, T^g used by the CMPM/CMPC/diversity losses and, concatenated,
at inference (cfine.md §9).
"""
from typing import Dict, Optional, Union

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from open_clip.transformer import QuickGELU

from mmreid_clip.models.utils.token_selection import TokenGroups, TokenSelector
from mmreid_clip.registry import MODELS

__all__ = ['MGF', 'MGFBlock', 'LayerNormFp32']


class LayerNormFp32(nn.LayerNorm):
    """LayerNorm computed in fp32 and cast back (cfine.md §4), as in CLIP."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.layer_norm(
            x.float(), self.normalized_shape,
            None if self.weight is None else self.weight.float(),
            None if self.bias is None else self.bias.float(), self.eps)
        return out.to(x.dtype)


@MODELS.register_module()
class MGFBlock(nn.Module):
    """Residual self- then cross-attention block of MGF (cfine.md §4).

    With queries X (L_q x W) and the full token sequence Y (L_y x W) of the
    same modality::

        X <- X + MHA_self(LN_0(X), LN_0(X), LN_0(X), key_padding_mask=Mq)
        X <- X + MHA_cross(LN_1(X), Y, Y, key_padding_mask=My)
        X <- X + MLP(LN_2(X))        # W -> 4W -> W, QuickGELU

    Keys and values of the cross-attention are the raw Y: Y already went
    through the encoder's final norm, and the official block does not
    normalise it again. No dropout; PyTorch default initialisation.

    Args:
        embed_dims (int): Width W (768 in CFine).
        num_heads (int): Attention heads (12 in CFine).
        mlp_ratio (int): Hidden width of the MLP as a multiple of W.
            Defaults to 4.
    """

    def __init__(self,
                 embed_dims: int,
                 num_heads: int,
                 mlp_ratio: int = 4) -> None:
        super().__init__()
        self.ln_0 = LayerNormFp32(embed_dims)
        self.self_attn = nn.MultiheadAttention(
            embed_dims, num_heads, batch_first=True)
        self.ln_1 = LayerNormFp32(embed_dims)
        self.cross_attn = nn.MultiheadAttention(
            embed_dims, num_heads, batch_first=True)
        self.ln_2 = LayerNormFp32(embed_dims)
        hidden = embed_dims * mlp_ratio
        self.mlp = nn.Sequential(
            nn.Linear(embed_dims, hidden), QuickGELU(),
            nn.Linear(hidden, embed_dims))

    def forward(
            self,
            query: torch.Tensor,
            context: torch.Tensor,
            context_padding_mask: Optional[torch.Tensor] = None,
            query_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Run the block.

        Args:
            query (Tensor): B x L_q x W queries X.
            context (Tensor): B x L_y x W keys/values Y.
            context_padding_mask (Tensor, optional): B x L_y bool, True at
                positions of Y to ignore (PAD), PyTorch's convention.
            query_padding_mask (Tensor, optional): B x L_q bool, True at
                query slots that must not be attended to in the
                self-attention (invalid selection slots, cfine.md §3).

        Returns:
            Tensor: B x L_q x W updated queries.
        """
        return self.forward_groups(
            query[:, None], context, context_padding_mask,
            None if query_padding_mask is None else
            query_padding_mask[:, None])[:, 0]

    def forward_groups(
            self,
            queries: torch.Tensor,
            context: torch.Tensor,
            context_padding_mask: Optional[torch.Tensor] = None,
            query_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Run the block on G query groups that share one context.

        The same as G calls of :meth:`forward` (one per group), in one pass:
        the self-attention must stay within a group, so the groups are
        stacked along the batch; the cross-attention rows are independent
        of each other, so the groups are laid side by side along the query
        length and Y's keys and values are projected once, not G times
        (they are most of the block's cost: L_y >> L_q).

        Args:
            queries (Tensor): B x G x L_q x W.
            context (Tensor): B x L_y x W keys/values Y.
            context_padding_mask (Tensor, optional): B x L_y bool, True at
                positions of Y to ignore.
            query_padding_mask (Tensor, optional): B x G x L_q bool, True at
                query slots to ignore in the self-attention.

        Returns:
            Tensor: B x G x L_q x W updated queries.
        """
        b, g, lq, w = queries.shape
        x = queries.reshape(b * g, lq, w)
        h = self.ln_0(x)
        pad = (None if query_padding_mask is None else
               query_padding_mask.reshape(b * g, lq))
        x = x + self.self_attn(
            h, h, h, key_padding_mask=pad, need_weights=False)[0]
        x = x.reshape(b, g * lq, w)
        x = x + self.cross_attn(
            self.ln_1(x),
            context,
            context,
            key_padding_mask=context_padding_mask,
            need_weights=False)[0]
        x = x + self.mlp(self.ln_2(x))
        return x.reshape(b, g, lq, w)


def _frozen_zero_bias_bn(num_features: int) -> nn.BatchNorm1d:
    """BNNeck: weight 1, bias 0 and frozen (cfine.md §4)."""
    bn = nn.BatchNorm1d(num_features)
    nn.init.ones_(bn.weight)
    nn.init.zeros_(bn.bias)
    bn.bias.requires_grad_(False)
    return bn


@MODELS.register_module()
class MGF(BaseModule):
    """Token selection + shared MGF block + BNNecks of CFine (cfine.md §3, §4).

    Per modality, the tokens are ranked by the global token's attention
    (:class:`TokenSelector`); for each group j the query
    X_j = [global ; G_j tokens] goes through the *one* shared
    :class:`MGFBlock` with keys/values = all tokens of that modality, and
    the output at query position 0 is the enhanced global e_j. The levels
    are then ``[BN(global), BN(e_1), ..., BN(e_G)]`` with one BatchNorm1d per
    modality (``bn_img``, ``bn_txt``) shared by its levels. Each level is
    normalised by its own BN call, in that order, as in the official code:
    in training every level is standardised with its own batch statistics,
    and the running statistics average over the three.

    Interface (B = batch, N = sequence length, W = ``embed_dims``,
    L = 1 + ``num_groups`` levels):

    - :meth:`forward_image` ``(tokens B x N x W, attn B x N) -> dict``
    - :meth:`forward_text` ``(tokens B x N x W, attn B x N,
      mask B x N bool (True = real token) = None,
      global_index B int64 = None) -> dict``
    - :meth:`forward` ``(img_tokens, img_attn, text_tokens, text_attn,
      text_mask=None, text_global_index=None) -> {'img': dict,
      'text': dict}``
    - :meth:`inference_feature` ``(levels B x L x W) -> B x (L*W)``

    Each per-modality dict holds

    - ``'levels'``: B x L x W BN-necked features f^0..f^G (CMPM, CMPC,
      diversity loss, inference),
    - ``'global'``: B x W raw global token (the CFR input; not BN'd),
    - ``'enhanced'``: B x G x W raw MGF outputs e_1..e_G (before BN),
    - ``'selection'``: :class:`TokenGroups` (G1 -> FCD, U -> CFR).

    Images carry their global token at position 0 (design.md); for text
    it is position 0 ([CLS], BERT) unless ``global_index`` says otherwise
    (EOT of an open_clip text tower, cfine.md §2).

    Args:
        embed_dims (int): Token width W. Defaults to 768.
        num_heads (int): Heads of the block's attentions. Defaults to 12.
        img_ratio (float): Image selection ratio (K_v = floor(0.1 * 197) =
            19). Defaults to 0.1.
        text_ratio (float): Text selection ratio (K_t = floor(0.2 * 100) =
            20). Defaults to 0.2.
        num_groups (int): Token groups per modality G. Defaults to 2.
        exclude_padding (bool): Alternative of cfine.md §3: never select the
            global or PAD tokens; invalid slots are masked in the block's
            self-attention. Defaults to False (faithful: PAD/global may be
            selected for short captions).
        mlp_ratio (int): MLP expansion of the block. Defaults to 4.
        init_cfg (dict, optional): Defaults to None (PyTorch default init,
            as the official block).
    """

    def __init__(self,
                 embed_dims: int = 768,
                 num_heads: int = 12,
                 img_ratio: float = 0.1,
                 text_ratio: float = 0.2,
                 num_groups: int = 2,
                 exclude_padding: bool = False,
                 mlp_ratio: int = 4,
                 init_cfg: Optional[Union[dict, list]] = None) -> None:
        super().__init__(init_cfg=init_cfg)
        self.embed_dims = embed_dims
        self.num_groups = num_groups
        if num_groups < 0:
            raise ValueError(f'num_groups must be >= 0, got {num_groups}')
        # num_groups=0 is the ablation without MGF: BN(global) only
        self.img_selector = TokenSelector(
            img_ratio, num_groups, exclude_padding) if num_groups else None
        self.text_selector = TokenSelector(
            text_ratio, num_groups, exclude_padding) if num_groups else None
        # Named mgf_block / bn_* so that the optimizer keys of cfine.md §8
        # ('mgf', 'bn_') match whatever the retriever calls this neck.
        self.mgf_block = MGFBlock(embed_dims, num_heads,
                                  mlp_ratio) if num_groups else None
        self.bn_img = _frozen_zero_bias_bn(embed_dims)
        self.bn_txt = _frozen_zero_bias_bn(embed_dims)

    @property
    def num_levels(self) -> int:
        return 1 + self.num_groups

    def _encode(
        self, tokens: torch.Tensor, attn: torch.Tensor,
        selector: TokenSelector, bn: nn.BatchNorm1d,
        mask: Optional[torch.Tensor], global_index: Optional[torch.Tensor]
    ) -> Dict[str, Union[torch.Tensor, TokenGroups]]:
        b, _, w = tokens.shape
        if w != self.embed_dims:
            raise ValueError(
                f'tokens have width {w}, MGF expects {self.embed_dims}')
        sel = None if selector is None else selector(
            tokens, attn, mask=mask, global_index=global_index)
        if global_index is None:
            global_feat = tokens[:, 0]
        else:
            global_feat = tokens[torch.arange(b, device=tokens.device),
                                 global_index.long()]
        # PAD keys are ignored in the cross-attention in both modes
        # (cfine.md §4).
        context_pad = None if mask is None else ~mask.bool()

        enhanced = []
        if self.num_groups:
            # X_j = [global ; G_j] for every group j: B x G x (1 + K) x W,
            # through the shared block in one pass (the groups share Y)
            g, k = self.num_groups, sel.k
            queries = torch.cat([
                global_feat[:, None, None].expand(b, g, 1, w),
                sel.tokens[:, :g * k].reshape(b, g, k, w)
            ], 2)
            query_pad = None
            if sel.valid is not None:
                slot_valid = sel.valid[:, :g * k].reshape(b, g, k)
                query_pad = torch.cat(
                    [slot_valid.new_zeros(b, g, 1), ~slot_valid], dim=2)
            out = self.mgf_block.forward_groups(
                queries,
                tokens,
                context_padding_mask=context_pad,
                query_padding_mask=query_pad)
            enhanced = list(out[:, :, 0].unbind(1))
        # One BN call per level (not one on the stacked 3B batch): each
        # level gets its own batch statistics, as in the official code.
        levels = [bn(global_feat)] + [bn(e) for e in enhanced]
        return {
            'levels':
            torch.stack(levels, dim=1),
            'global':
            global_feat,
            'enhanced':
            torch.stack(enhanced, dim=1)
            if enhanced else global_feat.new_zeros(b, 0, w),
            'selection':
            sel,
        }

    def forward_image(
            self, tokens: torch.Tensor,
            attn: torch.Tensor) -> Dict[str, Union[torch.Tensor, TokenGroups]]:
        """Image branch: V (B x N x W, CLS first), A_v (B x N) -> dict."""
        return self._encode(tokens, attn, self.img_selector, self.bn_img, None,
                            None)

    def forward_text(
        self,
        tokens: torch.Tensor,
        attn: torch.Tensor,
        mask: Optional[torch.Tensor] = None,
        global_index: Optional[torch.Tensor] = None
    ) -> Dict[str, Union[torch.Tensor, TokenGroups]]:
        """Text branch: T (B x N x W), A_t (B x N), mask (True = real)."""
        return self._encode(tokens, attn, self.text_selector, self.bn_txt,
                            mask, global_index)

    def forward(
        self,
        img_tokens: torch.Tensor,
        img_attn: torch.Tensor,
        text_tokens: torch.Tensor,
        text_attn: torch.Tensor,
        text_mask: Optional[torch.Tensor] = None,
        text_global_index: Optional[torch.Tensor] = None
    ) -> Dict[str, Dict[str, Union[torch.Tensor, TokenGroups]]]:
        """Both branches; returns ``{'img': ..., 'text': ...}`` (see class
        docstring for the per-modality dict)."""
        return dict(
            img=self.forward_image(img_tokens, img_attn),
            text=self.forward_text(text_tokens, text_attn, text_mask,
                                   text_global_index))

    @staticmethod
    def inference_feature(levels: torch.Tensor) -> torch.Tensor:
        """Retrieval feature of cfine.md §9: L2norm(concat of the L levels).

        Args:
            levels (Tensor): B x L x W (``'levels'`` of the output dict).

        Returns:
            Tensor: B x (L*W), unit norm (2304-d at W=768, L=3). The levels
            are not normalised one by one, so no level is up-weighted.
        """
        return F.normalize(levels.flatten(1), dim=-1)
