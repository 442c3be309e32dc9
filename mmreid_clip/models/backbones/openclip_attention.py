"""Running an open_clip ``Transformer`` and keeping its last attention map.

open_clip's blocks call ``nn.MultiheadAttention`` with
``need_weights=False``; the towers need the last block's head-averaged
attention (CFine's token selection), so that block's forward is replayed
here with the weights requested.
"""
from typing import Optional, Tuple

import torch
import torch.nn as nn

__all__ = [
    'forward_block_with_attn', 'run_transformer', 'supports_attn_output'
]


def forward_block_with_attn(
    block: nn.Module,
    x: torch.Tensor,
    attn_mask: Optional[torch.Tensor] = None
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Run an open_clip ``ResidualAttentionBlock`` and keep its attention.

    open_clip calls ``nn.MultiheadAttention`` with ``need_weights=False``;
    this replays the block's forward with the weights requested.

    Args:
        block: A ``ResidualAttentionBlock`` (self-attention).
        x: Tokens in the layout of the block's attention (``batch_first``
            or not).
        attn_mask: Additive ``L x L`` mask (e.g. causal), or None.

    Returns:
        ``(x, attn)``: the block output, and the attention probabilities
        averaged over heads, ``B x L x L`` (query x key) in either layout.
    """
    y = block.ln_1(x)
    mask = attn_mask.to(y.dtype) if attn_mask is not None else None
    out, attn = block.attn(
        y, y, y, need_weights=True, average_attn_weights=True, attn_mask=mask)
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
    return_last_attn: bool = False
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

    Returns:
        ``(x, attn)``: ``B x L x W`` and ``B x L x L`` (or None).
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
        x, attn = forward_block_with_attn(blocks[-1], x, attn_mask)
    if not batch_first:
        x = x.transpose(0, 1)
    return x, attn
