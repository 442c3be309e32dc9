"""The last block's attention rows beside the fused attention.

``attention_rows`` must give exactly the rows of the head-averaged map that
``nn.MultiheadAttention(need_weights=True)`` returns, with the causal mask,
in both layouts, with the same gradients; the towers' ``attn`` outputs are
those rows (the [CLS] query of the image, the EOT query of the text).
"""
import pytest
import torch

from mmreid_clip.models.backbones.openclip_attention import \
    forward_block_with_attn
from mmreid_clip.registry import MODELS
from mmreid_clip.utils import register_all_modules

register_all_modules()


def tower(kind):
    torch.manual_seed(0)
    if kind == 'vision':
        return MODELS.build(
            dict(type='OpenCLIPVisionTransformer', arch='clip-micro',
                 img_size=(32, 16), output_attn=True))
    return MODELS.build(
        dict(type='OpenCLIPTextTransformer', arch='clip-micro',
             context_length=16, output_attn=True))


@pytest.mark.parametrize('causal', [False, True])
@pytest.mark.parametrize('batch_first', [True, False])
def test_rows_equal_the_full_map(causal, batch_first):
    block = tower('text').transformer.resblocks[-1]
    # open_clip >= 2.24 builds batch-first stacks; older ones sequence-first
    block.attn.batch_first = batch_first
    g = torch.Generator().manual_seed(1)
    x = torch.randn(3, 7, block.attn.embed_dim, generator=g)
    if not batch_first:
        x = x.transpose(0, 1)
    mask = (torch.full((7, 7), float('-inf')).triu(1) if causal else None)
    query = torch.tensor([6, 0, 3])
    x1 = x.clone().requires_grad_(True)
    x2 = x.clone().requires_grad_(True)
    out_full, full = forward_block_with_attn(block, x1, mask, None,
                                             batch_first)
    out_rows, rows = forward_block_with_attn(block, x2, mask, query,
                                             batch_first)
    torch.testing.assert_close(rows, full[torch.arange(3), query],
                               rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(out_rows, out_full, rtol=1e-5, atol=1e-6)
    # the same gradient through both outputs
    w = torch.randn(rows.shape, generator=g)
    ((out_full**2).sum() + (full[torch.arange(3), query] * w).sum()
     ).backward()
    ((out_rows**2).sum() + (rows * w).sum()).backward()
    torch.testing.assert_close(x2.grad, x1.grad, rtol=1e-4, atol=1e-5)
    if causal:  # nothing after the query position
        assert rows[1, 1:].abs().max() == 0


def test_towers_return_the_query_rows():
    vision = tower('vision').eval()
    images = torch.randn(2, 3, 32, 16)
    out = vision(images)
    assert out['attn'].shape == (2, out['tokens'].shape[1])
    torch.testing.assert_close(out['attn'].sum(-1), torch.ones(2))

    text = tower('text').eval()
    ids = torch.zeros(2, 16, dtype=torch.long)
    ids[:, 0] = 49406
    ids[0, 1:4], ids[0, 4] = 7, 49407
    ids[1, 1:9], ids[1, 9] = 11, 49407
    out = text(ids)
    assert out['attn'].shape == (2, 16)
    # the EOT query attends to itself and what precedes it only
    assert out['attn'][0, 5:].abs().max() == 0
    assert out['attn'][1, 10:].abs().max() == 0
    assert float(out['attn'][0, :5].sum()) == pytest.approx(1.0, abs=1e-6)
