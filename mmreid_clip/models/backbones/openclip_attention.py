"""Running an open_clip ``Transformer`` and keeping its last attention map.

open_clip's blocks call ``nn.MultiheadAttention`` with
``need_weights=False`` (the fused ``scaled_dot_product_attention``); the
towers need the last block's head-averaged attention of one query per
sample (CFine's token selection reads the [CLS] row of the image and the
EOT row of the text, ``docs/methods/cfine.md`` §3), so that block's forward
is replayed here: still fused, plus the probabilities of the wanted rows
(:func:`attention_rows`), never the whole ``L x L`` map.
"""
import math
from typing import Optional, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F

__all__ = [
    'attention_rows', 'forward_block_with_attn', 'run_transformer',
    'supports_attn_output'
]


def _rows_supported(attn: nn.MultiheadAttention) -> bool:
    """Packed q/k/v projection, no extra key/value, no dropout at work."""
    return (attn.in_proj_weight is not None and attn.bias_k is None
            and not attn.add_zero_attn
            and (attn.dropout == 0 or not attn.training))


def attention_rows(attn: nn.MultiheadAttention, y: torch.Tensor,
                   query: torch.Tensor,
                   attn_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
    """Head-averaged attention probabilities of one query per sample.

    What ``attn(y, y, y, need_weights=True, average_attn_weights=True)``
    returns in row ``query[b]`` of sample ``b``: with the packed
    projections, ``q = y[b, query[b]] W_q + b_q``, ``K = y[b] W_k + b_k``,
    per head ``softmax(q_h K_h^T / sqrt(d) + mask[query[b]])``, averaged
    over the heads. Costs ``B x L x W`` instead of ``B x L x L x heads``.

    Args:
        attn: The block's ``nn.MultiheadAttention`` (see
            :func:`_rows_supported`).
        y: ``B x L x W`` (batch first) inputs of the attention.
        query: ``B`` query positions.
        attn_mask: Additive ``L x L`` mask, or None.

    Returns:
        ``B x L`` probabilities (rows sum to 1).
    """
    b, length, width = y.shape
    heads = attn.num_heads
    dim = width // heads
    w_q, w_k, _ = attn.in_proj_weight.chunk(3)
    b_q = b_k = None
    if attn.in_proj_bias is not None:
        b_q, b_k, _ = attn.in_proj_bias.chunk(3)
    rows = torch.arange(b, device=y.device)
    q = F.linear(y[rows, query], w_q, b_q).view(b, heads, dim)
    k = F.linear(y, w_k, b_k).view(b, length, heads, dim)
    scores = torch.einsum('bhd,blhd->bhl', q / math.sqrt(dim), k)
    if attn_mask is not None:
        scores = scores + attn_mask[query].unsqueeze(1).to(scores.dtype)
    return scores.softmax(dim=-1).mean(dim=1)


def forward_block_with_attn(
    block: nn.Module,
    x: torch.Tensor,
    attn_mask: Optional[torch.Tensor] = None,
    query: Optional[torch.Tensor] = None,
    batch_first: bool = True
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run an open_clip ``ResidualAttentionBlock`` and keep its attention.

    open_clip calls ``nn.MultiheadAttention`` with ``need_weights=False``;
    this replays the block's forward with the attention kept.

    Args:
        block: A ``ResidualAttentionBlock`` (self-attention).
        x: Tokens in the layout of the block's attention (``batch_first``
            or not).
        attn_mask: Additive ``L x L`` mask (e.g. causal), or None.
        query: ``B`` query positions: return only their rows, computed
            beside the fused attention (:func:`attention_rows`). None
            returns the whole map (the non-fused path).
        batch_first: The layout of ``x``.

    Returns:
        ``(x, attn)``: the block output, and the attention probabilities
        averaged over heads: ``B x L`` (with ``query``) or ``B x L x L``
        (query x key).
    """
    y = block.ln_1(x)
    mask = attn_mask.to(y.dtype) if attn_mask is not None else None
    if query is not None and _rows_supported(block.attn):
        out = block.attn(y, y, y, need_weights=False, attn_mask=mask)[0]
        attn = attention_rows(block.attn,
                              y if batch_first else y.transpose(0, 1),
                              query, mask)
    else:
        out, attn = block.attn(
            y, y, y, need_weights=True, average_attn_weights=True,
            attn_mask=mask)
        if query is not None:
            attn = attn[torch.arange(len(query), device=attn.device), query]
    x = x + block.ls_1(out)
    x = x + block.ls_2(block.mlp(block.ln_2(x)))
    return x, attn


def supports_attn_output(transformer: nn.Module) -> bool:
    """Whether :func:`run_transformer` can return this stack's attention."""
    block = transformer.resblocks[-1]
    return (isinstance(getattr(block, 'attn', None), nn.MultiheadAttention)
            and not hasattr(block, 'ln_1_kv'))


def run_transformer(
    transformer: nn.Module,
    x: torch.Tensor,
    attn_mask: Optional[torch.Tensor] = None,
    return_last_attn: bool = False,
    attn_query: Optional[torch.Tensor] = None
) -> Tuple[torch.Tensor, Optional[torch.Tensor]]:
    """Run an open_clip ``Transformer`` on batch-first tokens.

    Args:
        transformer: open_clip ``Transformer`` (``resblocks``,
            ``batch_first``).
        x: ``B x L x W``.
        attn_mask: Additive ``L x L`` mask passed to every block. It is not
            taken from the module: ``Transformer.forward`` applies no mask
            unless given one, so the caller must pass the causal mask.
        return_last_attn: Also return the head-averaged attention of the
            last block (see :func:`forward_block_with_attn`).
        attn_query: ``B`` query positions: the attention is returned for
            these rows only, ``B x L``, and the block stays fused.

    Returns:
        ``(x, attn)``: ``B x L x W`` and ``B x L x L``, ``B x L`` with
        ``attn_query``, or None.
    """
    batch_first = getattr(transformer, 'batch_first', True)
    if not batch_first:
        x = x.transpose(0, 1)
    blocks = transformer.resblocks
    n_plain = len(blocks) - 1 if return_last_attn else len(blocks)
    for block in blocks[:n_plain]:
        x = block(x, attn_mask=attn_mask)
    attn = None
    if return_last_attn:
        x, attn = forward_block_with_attn(blocks[-1], x, attn_mask,
                                          attn_query, batch_first)
    if not batch_first:
        x = x.transpose(0, 1)
    return x, attn
